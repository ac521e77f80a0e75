#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# Boot: registers this VM's GitHub Actions runner through the token proxy and runs it for one job.
#
# Instance attributes:
#   github-runner-scope   (required) ORG, OWNER/REPO or enterprise:SLUG
#   token-proxy-url       (required) the token proxy's URL; also the identity token's audience
#   github-runner-labels  comma-separated labels
#   github-runner-group   runner group name
#   github-runner-mode    jit (default): POST /jitconfig, then run.sh with the JIT config;
#                         token: POST /register, then config.sh --ephemeral and run.sh
#   github-url            GitHub's web URL for config.sh --url in token mode (default https://github.com)
# Environment: RUNNER_DIR (default /opt/actions-runner), RUNNER_USER (run the runner as this user), and
# the retry settings described in lib.sh.
#
# Exits with the runner's own exit status once it has started; before that 1 (a service failed or refused)
# or 2 (configuration). See README.md.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require_tools curl jq

RUNNER_DIR=${RUNNER_DIR:-/opt/actions-runner}

scope=$(attribute github-runner-scope)
proxy_url=$(attribute token-proxy-url)
labels_csv=$(attribute github-runner-labels)
group=$(attribute github-runner-group)
mode=$(attribute github-runner-mode jit)
github_url=$(attribute github-url https://github.com)

# Collect every problem before giving up, so one boot shows them all.
problems=()
[[ -n $scope ]] || problems+=("$(missing_attribute github-runner-scope)")
[[ -n $proxy_url ]] || problems+=("$(missing_attribute token-proxy-url)")
case $mode in
  jit) [[ -x $RUNNER_DIR/run.sh ]] || problems+=("$RUNNER_DIR/run.sh is missing or not executable (RUNNER_DIR)") ;;
  token)
    [[ -x $RUNNER_DIR/config.sh && -x $RUNNER_DIR/run.sh ]] ||
      problems+=("$RUNNER_DIR/config.sh or run.sh is missing or not executable (RUNNER_DIR)")
    ;;
  *) problems+=("instance attribute github-runner-mode must be jit or token, got '$mode'") ;;
esac
if ((${#problems[@]})); then
  for problem in "${problems[@]}"; do log "error: $problem"; done
  exit "$EXIT_CONFIG"
fi
runner_user_prefix

proxy_url=$(url_base "$proxy_url")
# Labels as a JSON array: split on commas, trimmed, empty ones dropped.
labels_json=$(jq -cn --arg csv "$labels_csv" \
  '$csv | split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(length > 0))')

auth=$(identity_token_header "$proxy_url")

# Runs the runner's run.sh (as RUNNER_USER) and exits with its status. The caller passes any
# ACTIONS_RUNNER_INPUT_* variable as a prefix assignment, which reaches run.sh's environment only.
run_runner() {
  # Tokens are no longer needed; the runner may run for hours.
  gcr_cleanup
  log "starting the runner in $RUNNER_DIR${RUNNER_USER:+ as $RUNNER_USER}"
  local status=0
  (cd -- "$RUNNER_DIR" && exec "${RUNNER_AS_USER[@]}" "$RUNNER_DIR/run.sh") || status=$?
  log "the runner exited with status $status"
  exit "$status"
}

if [[ $mode == jit ]]; then
  body=$(jq -cn --arg scope "$scope" --argjson labels "$labels_json" --arg group "$group" \
    '{scope: $scope}
     + (if ($labels | length) > 0 then {labels: $labels} else {} end)
     + (if $group != "" then {runner_group: $group} else {} end)')
  http_request POST "$proxy_url/jitconfig" --auth "$auth" --json "$body" \
    --what "getting a JIT runner config for $scope from the token proxy"
  jit_config=$(jq -er '.encoded_jit_config | strings | select(length > 0)' <"$HTTP_BODY_FILE") ||
    die "the token proxy's /jitconfig answer has no encoded_jit_config"
  summary=$(jq -r '.runner | "\(.name) (id \(.id)), labels \(.labels | map(if type == "object" then .name else . end) | join(","))"' \
    <"$HTTP_BODY_FILE" 2>/dev/null) || summary='(no runner details)'
  log "got a JIT config for runner $summary in $scope"

  # The JIT config goes to the runner in ACTIONS_RUNNER_INPUT_JITCONFIG rather than `run.sh --jitconfig`:
  # argv is world-readable in /proc/PID/cmdline for the runner's whole life, the environment only to its
  # user and root. The runner's CommandSettings constructor reads every ACTIONS_RUNNER_INPUT_<NAME> as the
  # argument --<name>, masks the secret ones in its logs and deletes the variable from its own environment,
  # so jobs do not inherit it (actions/runner, src/Runner.Listener/CommandSettings.cs). GitHub's Actions
  # Runner Controller starts JIT runners this way: it sets ACTIONS_RUNNER_INPUT_JITCONFIG on the runner
  # container and runs plain run.sh (actions-runner-controller, constant EnvVarRunnerJITConfig).
  ACTIONS_RUNNER_INPUT_JITCONFIG=$jit_config run_runner
fi

# Token mode: a registration token, then config.sh and run.sh.
http_request POST "$proxy_url/register" --auth "$auth" --json "$(jq -cn --arg scope "$scope" '{scope: $scope}')" \
  --what "getting a registration token for $scope from the token proxy"
registration_token=$(jq -er '.token | strings | select(length > 0)' <"$HTTP_BODY_FILE") ||
  die "the token proxy's /register answer has no token"
rm -f -- "$HTTP_BODY_FILE"

instance_name=$(metadata_value instance/name)
case $scope in
  enterprise:*) scope_path="enterprises/${scope#enterprise:}" ;;
  *) scope_path=$scope ;;
esac
config_args=(--unattended --ephemeral --disableupdate --url "$(url_base "$github_url")/$scope_path"
  --name "$instance_name")
if [[ $labels_json != '[]' ]]; then
  config_args+=(--labels "$(jq -r 'join(",")' <<<"$labels_json")")
fi
[[ -z $group ]] || config_args+=(--runnergroup "$group")

log "configuring runner $instance_name for $scope"
# The token reaches config.sh in ACTIONS_RUNNER_INPUT_TOKEN, not --token, for the reason given above.
status=0
(cd -- "$RUNNER_DIR" &&
  ACTIONS_RUNNER_INPUT_TOKEN=$registration_token exec "${RUNNER_AS_USER[@]}" "$RUNNER_DIR/config.sh" \
    "${config_args[@]}") || status=$?
unset registration_token
((status == 0)) || die "config.sh failed with status $status"
run_runner
