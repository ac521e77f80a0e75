#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# Stand-in for actions/runner's run.sh (see README.md). Starts from a JIT config (ACTIONS_RUNNER_INPUT_JITCONFIG
# or --jitconfig) or from the registration config.sh left in .runner, tells the fake GitHub the runner is
# online, "runs a job" (busy for RUNNER_STANDIN_JOB_SECONDS, default 0), reports its exit and exits with
# RUNNER_STANDIN_EXIT_CODE (default 0). Records what it got in RUNNER_STANDIN_LOG, secrets as hashes.
set -euo pipefail

# shellcheck source=standin-lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/standin-lib.sh"

jit_config=${ACTIONS_RUNNER_INPUT_JITCONFIG:-}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ ${args[i]} == --jitconfig ]]; then
    jit_config=${args[i + 1]:-}
  fi
done

standin_record invoked "{\"jit_config\": $([[ -n $jit_config ]] && echo true || echo false)}" "$@"

runner_id=
if [[ -n $jit_config ]]; then
  # Lay out the JIT config's .runner file, as the real runner does: base64 of a map of file names to
  # base64 contents.
  runner_file=$(printf '%s' "$jit_config" | base64 -d 2>/dev/null | jq -r '.[".runner"] // empty' 2>/dev/null |
    base64 -d 2>/dev/null) || runner_file=
  [[ -z $runner_file ]] || printf '%s\n' "$runner_file" >"$STANDIN_STATE_FILE"
  if [[ -n ${SANDBOX_GITHUB_URL:-} ]]; then
    runner=$(standin_post /runners/jit "$(jq -cn --arg c "$jit_config" '{encoded_jit_config: $c}')")
    runner_id=$(jq -r '.id' <<<"$runner")
    standin_log "runner $(jq -r '.name' <<<"$runner") (id $runner_id) is online"
  fi
elif [[ -f $STANDIN_STATE_FILE ]]; then
  runner_id=$(jq -r '.AgentId // empty' <"$STANDIN_STATE_FILE")
else
  # The real runner's words.
  standin_die "Not configured. Run config.sh to configure the runner."
fi

job_seconds=${RUNNER_STANDIN_JOB_SECONDS:-0}
if [[ -n ${SANDBOX_GITHUB_URL:-} && -n $runner_id ]]; then
  standin_post "/runners/$runner_id/busy" '{"busy": true}' >/dev/null
  sleep "$job_seconds"
  standin_post "/runners/$runner_id/busy" '{"busy": false}' >/dev/null
  standin_post "/runners/$runner_id/exit" '{}' >/dev/null
else
  sleep "$job_seconds"
fi

# An ephemeral runner deletes its local registration after its job.
if [[ -f $STANDIN_STATE_FILE ]] && [[ $(jq -r '.Ephemeral // false' <"$STANDIN_STATE_FILE") == true ]]; then
  rm -f -- "$STANDIN_STATE_FILE"
fi

status=${RUNNER_STANDIN_EXIT_CODE:-0}
standin_record exited "{\"status\": $status, \"runner_id\": $(jq -n --arg id "$runner_id" '$id | tonumber? // null')}"
exit "$status"
