#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# Shutdown: removes this VM's runner from GitHub. A runner that is not registered (the usual case: GitHub
# drops an ephemeral runner after its job) is success.
#
# Instance attributes:
#   github-runner-scope       (required) ORG, OWNER/REPO or enterprise:SLUG
#   token-proxy-url           (required) the token proxy's URL; also the identity token's audience
#   github-runner-deregister  delete-runner (default): DELETE /runner, the proxy removes the runner named
#                             after this instance and no token reaches the VM;
#                             remove-token: POST /remove, then `config.sh remove` with that token
# Environment: RUNNER_DIR (default /opt/actions-runner), RUNNER_USER, DEREGISTER_BUSY_RETRIES (default 3),
# DEREGISTER_BUSY_DELAY_SECONDS (default 5), and the retry settings in lib.sh. A shutdown leaves little
# time (30 s on preemption), so the retry budget defaults to 25 s here.
#
# Exits 0 when the runner is gone or was never registered, 1 when a service failed or refused, 2 on a
# configuration problem, 3 when the runner was still running a job after the retries.
set -euo pipefail

: "${RETRY_DEADLINE_SECONDS:=25}"
: "${RETRY_MAX_DELAY_SECONDS:=5}"
export RETRY_DEADLINE_SECONDS RETRY_MAX_DELAY_SECONDS

# shellcheck source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly EXIT_BUSY=3

require_tools curl jq

RUNNER_DIR=${RUNNER_DIR:-/opt/actions-runner}
# Absolute once, so `cd RUNNER_DIR` and `RUNNER_DIR/config.sh` below cannot join a relative path twice.
if runner_dir=$(cd -P -- "$RUNNER_DIR" 2>/dev/null && pwd); then
  RUNNER_DIR=$runner_dir
fi
busy_retries=${DEREGISTER_BUSY_RETRIES:-3}
[[ $busy_retries =~ ^[0-9]{1,3}$ ]] ||
  die_config "DEREGISTER_BUSY_RETRIES must be a whole number, got '$busy_retries'"
busy_delay=$(gcr_ms_to_seconds "$(gcr_seconds_to_ms "${DEREGISTER_BUSY_DELAY_SECONDS:-5}" DEREGISTER_BUSY_DELAY_SECONDS)")

scope=$(attribute github-runner-scope)
proxy_url=$(attribute token-proxy-url)
method=$(attribute github-runner-deregister delete-runner)

problems=()
[[ -n $scope ]] || problems+=("$(missing_attribute github-runner-scope)")
[[ -n $proxy_url ]] || problems+=("$(missing_attribute token-proxy-url)")
case $method in
  delete-runner) ;;
  remove-token)
    [[ -x $RUNNER_DIR/config.sh ]] || problems+=("$RUNNER_DIR/config.sh is missing or not executable (RUNNER_DIR)")
    ;;
  *) problems+=("instance attribute github-runner-deregister must be delete-runner or remove-token, got '$method'") ;;
esac
if ((${#problems[@]})); then
  for problem in "${problems[@]}"; do log "error: $problem"; done
  exit "$EXIT_CONFIG"
fi

proxy_url=$(url_base "$proxy_url")
body=$(jq -cn --arg scope "$scope" '{scope: $scope}')

if [[ $method == remove-token ]]; then
  # config.sh keeps the registration in RUNNER_DIR/.runner; an ephemeral runner deletes it after its job.
  if [[ ! -e $RUNNER_DIR/.runner ]]; then
    echo "no runner is configured in $RUNNER_DIR: nothing to deregister"
    exit 0
  fi
  runner_user_prefix
  auth=$(identity_token_header "$proxy_url")
  http_request POST "$proxy_url/remove" --auth "$auth" --json "$body" \
    --what "getting a remove token for $scope from the token proxy"
  remove_token=$(jq -er '.token | strings | select(length > 0)' <"$HTTP_BODY_FILE") ||
    die "the token proxy's /remove answer has no token"
  rm -f -- "$HTTP_BODY_FILE"
  status=0
  # The token reaches config.sh as --token, in the environment (ACTIONS_RUNNER_INPUT_TOKEN), never in
  # argv (see register.sh). `remove` takes --token, --pat and --local only (actions/runner,
  # CommandSettings validOptions): --unattended would only earn a warning, and with the token given there
  # is nothing to ask.
  (cd -- "$RUNNER_DIR" &&
    ACTIONS_RUNNER_INPUT_TOKEN=$remove_token exec "${RUNNER_AS_USER[@]}" "$RUNNER_DIR/config.sh" remove) ||
    status=$?
  unset remove_token
  ((status == 0)) || die "config.sh remove failed with status $status"
  echo "removed the runner configured in $RUNNER_DIR from $scope"
  exit 0
fi

auth=$(identity_token_header "$proxy_url")
for ((attempt = 1; ; attempt++)); do
  http_request DELETE "$proxy_url/runner" --auth "$auth" --json "$body" --accept 409 \
    --what "removing this VM's runner from $scope through the token proxy"
  if [[ $HTTP_STATUS != 409 ]]; then
    break
  fi
  detail=$(gcr_error_detail "$HTTP_BODY_FILE")
  rm -f -- "$HTTP_BODY_FILE"
  if ((attempt > busy_retries)); then
    log "error: the runner is still running a job after $attempt attempts; it stays registered until GitHub drops it (HTTP 409$detail)"
    exit "$EXIT_BUSY"
  fi
  log "the runner is running a job (HTTP 409$detail); trying again in ${busy_delay}s ($attempt of $busy_retries retries)"
  sleep "$busy_delay"
done

jq -r --arg scope "$scope" '
  if .deleted == true then "removed runner \(.runner.name // "?") (id \(.runner.id // "?")) from \($scope)"
  else "no runner to remove: \(.message // "this VM has no runner registered in \($scope)")" end' \
  <"$HTTP_BODY_FILE"
