#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# Boot: registers this VM's GitHub Actions runner through the token proxy, installs the job hooks that
# hold it to this VM's trust rule, and runs the runner for one job.
#
# Instance attributes:
#   github-runner-scope           (required) ORG, OWNER/REPO or enterprise:SLUG
#   token-proxy-url               (required) the token proxy's URL; also the identity token's audience
#   github-runner-allowed-events  (required) and the other trust-rule attributes of trust-rule.sh: checked
#                                 here so that a VM that would refuse every job registers no runner
#   github-runner-labels          comma-separated labels
#   github-runner-group           runner group name
#   github-runner-mode            jit (default): POST /jitconfig, then run.sh with the JIT config;
#                                 token: POST /register, then config.sh --ephemeral --replace and run.sh
#   github-url                    GitHub's web URL for config.sh --url in token mode (default https://github.com)
# Environment: RUNNER_DIR (default /opt/actions-runner; made absolute once, here), RUNNER_USER (run the
# runner as this user), and the retry settings described in lib.sh.
#
# Before the runner starts: exits 1 (a service failed or refused) or 2 (configuration). Once it has
# started: run.sh's exit status, which says little. actions/runner's run.sh exits 0 whatever the listener's
# outcome (a job done, a terminated error, a session conflict, an unknown code) and starts the listener
# again on codes 2 to 4 (src/Misc/layoutroot/run.sh and run-helper.sh.template in actions/runner). The one
# exception, which this script turns on with ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1: from
# runner 2.333.0, 7 when GitHub refuses the runner's version. Any other status (126, 127, 128+N) means
# run.sh could not run or was killed. The runner's own log is in RUNNER_DIR/_diag.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=trust-rule.sh
source "$GCR_SCRIPT_DIR/trust-rule.sh"

require_tools curl jq

readonly JOB_STARTED_HOOK=$GCR_SCRIPT_DIR/job-started.sh
readonly JOB_COMPLETED_HOOK=$GCR_SCRIPT_DIR/job-completed.sh

# Collect every problem before giving up, so one boot shows them all.
problems=()

# One absolute path from here on: a relative RUNNER_DIR would be joined twice below (`cd RUNNER_DIR`, then
# `RUNNER_DIR/run.sh`) and fail with 127 after the JIT config was spent. -P: the runner reads .env from its
# physical root (the parent of its bin/), so write it there.
RUNNER_DIR=${RUNNER_DIR:-/opt/actions-runner}
if runner_dir=$(cd -P -- "$RUNNER_DIR" 2>/dev/null && pwd); then
  RUNNER_DIR=$runner_dir
else
  problems+=("RUNNER_DIR $RUNNER_DIR is not a directory")
fi

scope=$(attribute github-runner-scope)
proxy_url=$(attribute token-proxy-url)
labels_csv=$(attribute github-runner-labels)
group=$(attribute github-runner-group)
mode=$(attribute github-runner-mode jit)
github_url=$(attribute github-url https://github.com)

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
# A VM whose rule refuses every job, or whose hooks are missing, must not take a job from the queue. (The
# attributes are cached by now, so the subshell reads no metadata.)
if ! rule_problems=$(trust_rule_load); then
  mapfile -t -O "${#problems[@]}" problems <<<"${rule_problems:-the trust rule could not be read}"
fi
for hook in "$JOB_STARTED_HOOK" "$JOB_COMPLETED_HOOK"; do
  [[ -r $hook ]] || problems+=("the job hook $hook is missing")
done
if ((${#problems[@]})); then
  for problem in "${problems[@]}"; do log "error: $problem"; done
  exit "$EXIT_CONFIG"
fi
runner_user_prefix

proxy_url=$(url_base "$proxy_url")
# Labels as a JSON array: split on commas, trimmed, empty ones dropped.
labels_json=$(jq -cn --arg csv "$labels_csv" \
  '$csv | split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(length > 0))')

# Points the runner at the job hooks in its .env, which the listener reads from its root when it starts
# (actions/runner, Runner.Listener Program.LoadAndSetEnv: KEY=VALUE lines, taken as they are) and passes
# on to each job (https://docs.github.com/en/actions/hosting-your-own-runners/managing-self-hosted-runners/running-scripts-before-or-after-a-job).
# Lines other than the two hooks (config.sh's env.sh writes LANG, JAVA_HOME and the like) are kept; the
# file is the runner user's, so that env.sh (token mode) can still add to it.
install_job_hooks() {
  local env_file=$RUNNER_DIR/.env kept='' line
  if [[ -f $env_file ]]; then
    while IFS= read -r line || [[ -n $line ]]; do
      case $line in
        ACTIONS_RUNNER_HOOK_JOB_STARTED=* | ACTIONS_RUNNER_HOOK_JOB_COMPLETED=*) ;;
        *) kept+=$line$'\n' ;;
      esac
    done <"$env_file"
  fi
  printf '%sACTIONS_RUNNER_HOOK_JOB_STARTED=%s\nACTIONS_RUNNER_HOOK_JOB_COMPLETED=%s\n' \
    "$kept" "$JOB_STARTED_HOOK" "$JOB_COMPLETED_HOOK" >"$env_file"
  # Readable by the runner whatever the umask: a runner that cannot read .env would not start.
  chmod 0644 -- "$env_file"
  if ((${#RUNNER_AS_USER[@]})); then
    chown -- "$RUNNER_USER" "$env_file"
  fi
  log "installed the job hooks in $env_file"
}

# Before anything is spent (a JIT config is good for one start): a runner without its hooks must not run.
install_job_hooks

auth=$(identity_token_header "$proxy_url")

# Runs the runner's run.sh (as RUNNER_USER) and exits with its status (see the top of this file). The
# caller passes any ACTIONS_RUNNER_INPUT_* variable as a prefix assignment, which reaches run.sh's
# environment only.
run_runner() {
  # Tokens are no longer needed; the runner may run for hours.
  gcr_cleanup
  log "starting the runner in $RUNNER_DIR${RUNNER_USER:+ as $RUNNER_USER}"
  local status=0
  (cd -- "$RUNNER_DIR" &&
    ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1 exec "${RUNNER_AS_USER[@]}" "$RUNNER_DIR/run.sh") ||
    status=$?
  case $status in
    0) log "run.sh exited with status 0: the runner has stopped (run.sh says 0 after a job and after most runner errors alike; see $RUNNER_DIR/_diag)" ;;
    7) log "error: GitHub refuses this runner's version (run.sh exited with status 7): update the runner in the image" ;;
    *) log "error: run.sh exited with status $status" ;;
  esac
  exit "$status"
}

if [[ $mode == jit ]]; then
  body=$(jq -cn --arg scope "$scope" --argjson labels "$labels_json" --arg group "$group" \
    '{scope: $scope}
     + (if ($labels | length) > 0 then {labels: $labels} else {} end)
     + (if $group != "" then {runner_group: $group} else {} end)')
  # 409: GitHub still lists an earlier runner of this VM's name (a reused instance name) as online; the
  # proxy cannot replace a runner that is online, and GitHub drops it within a minute or so. Transient.
  http_request POST "$proxy_url/jitconfig" --auth "$auth" --json "$body" --transient 409 \
    --what "getting a JIT runner config for $scope from the token proxy"
  jit_config=$(jq -er '.encoded_jit_config | strings | select(length > 0)' <"$HTTP_BODY_FILE") ||
    die "the token proxy's /jitconfig answer has no encoded_jit_config"
  summary=$(jq -r '.runner | "\(.name) (id \(.id)), labels \(.labels | map(if type == "object" then .name else . end) | join(","))"' \
    <"$HTTP_BODY_FILE" 2>/dev/null) || summary='(no runner details)'
  log "got a JIT config for runner $summary in $scope"

  # The JIT config goes to the runner in ACTIONS_RUNNER_INPUT_JITCONFIG rather than `run.sh --jitconfig`:
  # argv is world-readable in /proc/PID/cmdline for the runner's whole life, the environment only to its
  # user and root. The runner's CommandSettings constructor reads every ACTIONS_RUNNER_INPUT_<NAME> as the
  # argument --<name>, masks the secret ones in its logs and removes the variable from its own environment
  # block, so the worker and the jobs it starts do not inherit it (actions/runner,
  # src/Runner.Listener/CommandSettings.cs). Jobs run as the same user, though, and can still read the
  # listener's initial environment in /proc/<pid>/environ and the credentials the runner writes into its
  # root: README.md says what that exposes. GitHub's Actions Runner Controller starts JIT runners this way
  # too: it sets ACTIONS_RUNNER_INPUT_JITCONFIG on the runner container and runs plain run.sh
  # (actions-runner-controller, constant EnvVarRunnerJITConfig).
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
# --replace: instance names are reused, and GitHub may still list an offline runner of this name (a VM of
# that name that did not deregister). Without it config.sh stops with "A runner exists with the same name"
# (actions/runner, ConfigurationManager) and the VM would delete itself for nothing.
config_args=(--unattended --ephemeral --disableupdate --replace --url "$(url_base "$github_url")/$scope_path"
  --name "$instance_name")
# The label that binds the runner to this instance, which the token proxy's GET /runner and DELETE /runner
# look for (a JIT config gets it from the proxy, from the verified identity token). Here the VM sets it
# itself: a registration token lets its holder choose any label, which is why untrusted levels are jitOnly.
instance_id=$(metadata_value instance/id)
[[ $instance_id =~ ^[0-9]+$ ]] || die "the metadata server gave no numeric instance id ('$instance_id')"
labels_json=$(jq -c --arg binding "gce-instance-id-$instance_id" '. + [$binding]' <<<"$labels_json")
config_args+=(--labels "$(jq -r 'join(",")' <<<"$labels_json")")
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
