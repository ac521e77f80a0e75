#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# Stand-in for actions/runner's run.sh (see README.md). Loads the runner root's .env as the listener does,
# starts from a JIT config (ACTIONS_RUNNER_INPUT_JITCONFIG or --jitconfig) or from the registration config.sh
# left in .runner, tells the fake GitHub the runner is online and runs one job: the job-started hook, the
# job's "steps" (busy for RUNNER_STANDIN_JOB_SECONDS, default 0, leaving files behind as jobs do) unless the
# hook refused the job, then the job-completed hook. Reports its exit and exits as actions/runner's run.sh
# would for the listener exit code RUNNER_STANDIN_LISTENER_EXIT_CODE (default 0). Records what it got and
# what the hooks did in the stand-in log, secrets as hashes.
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

# The listener sets every KEY=VALUE line of <root>/.env in its environment, as it is, before anything else
# (actions/runner, Runner.Listener Program.LoadAndSetEnv); jobs and their hooks inherit it.
if [[ -f $STANDIN_ROOT/.env ]]; then
  while IFS= read -r line || [[ -n $line ]]; do
    [[ ${line%%=*} =~ ^[A-Za-z_][A-Za-z0-9_]*$ && $line == *=* ]] || continue
    export "${line%%=*}=${line#*=}"
  done <"$STANDIN_ROOT/.env"
fi

# The listener's exit code, and what actions/runner's run.sh makes of it (src/Misc/layoutroot/run.sh and
# run-helper.sh.template): 0 for everything but a deprecated version, when asked to say so.
listener_code=${RUNNER_STANDIN_LISTENER_EXIT_CODE:-0}
case $listener_code in
  2 | 3 | 4) standin_die "listener exit code $listener_code restarts the real runner; the stand-in does not emulate it" ;;
  7) [[ ${ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE:-} == 1 ]] && status=7 || status=0 ;;
  [0-9] | [0-9][0-9] | [0-9][0-9][0-9]) status=0 ;;
  *) standin_die "RUNNER_STANDIN_LISTENER_EXIT_CODE must be a number, got '$listener_code'" ;;
esac

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

# hook NAME: runs the hook the environment names for NAME (`started`, `completed`) as the runner does,
# `bash -e <path>`, and prints a JSON object with its exit status and output (as the job log would show
# it), or `null` when no hook is configured.
hook() {
  local variable="ACTIONS_RUNNER_HOOK_JOB_${1^^}" output status=0
  local path=${!variable:-}
  [[ -n $path ]] || {
    echo null
    return 0
  }
  output=$(bash -e "$path" 2>&1) || status=$?
  jq -cn --arg path "$path" --argjson status "$status" --arg output "${output:0:4000}" \
    '{path: $path, status: $status, output: $output}'
}

# One job, with the default variables the runner gives it and its hooks.
run_job() {
  local work repository=${RUNNER_STANDIN_JOB_REPOSITORY:-my-org/app} started steps=skipped completed dir
  local name=${repository#*/}
  work=$STANDIN_STATE_DIR/$(jq -r '.WorkFolder // "_work"' "$STANDIN_STATE_FILE" 2>/dev/null || echo _work)
  export GITHUB_EVENT_NAME=${RUNNER_STANDIN_JOB_EVENT:-push}
  export GITHUB_REPOSITORY=$repository
  export GITHUB_REF=${RUNNER_STANDIN_JOB_REF:-refs/heads/main}
  export RUNNER_NAME
  RUNNER_NAME=$(jq -r '.AgentName // "runner-standin"' "$STANDIN_STATE_FILE" 2>/dev/null || echo runner-standin)
  export RUNNER_WORKSPACE=$work/$name
  export GITHUB_WORKSPACE=$work/$name/$name
  export RUNNER_TEMP=$work/_temp
  export RUNNER_TOOL_CACHE=$work/_tool
  export GITHUB_EVENT_PATH=$RUNNER_TEMP/_github_workflow/event.json
  # A simulation never cleans the machine's own /tmp: the completed hook gets a directory of its own.
  export JOB_CLEANUP_TEMP_DIRS=${JOB_CLEANUP_TEMP_DIRS:-$STANDIN_STATE_DIR/_tmp}
  mkdir -p -- "$GITHUB_WORKSPACE" "$RUNNER_TEMP/_github_workflow" "$RUNNER_TEMP/_runner_file_commands" \
    "$RUNNER_TOOL_CACHE"
  if [[ -n ${RUNNER_STANDIN_JOB_PAYLOAD:-} ]]; then
    cp -- "$RUNNER_STANDIN_JOB_PAYLOAD" "$GITHUB_EVENT_PATH"
  else
    # The parts of the payload the hooks read: for a pull request or a workflow run, where its code comes
    # from (this repository, or a fork with RUNNER_STANDIN_JOB_FROM_FORK=1).
    jq -cn --arg event "$GITHUB_EVENT_NAME" --arg repository "$repository" --arg ref "$GITHUB_REF" \
      --argjson fork "$([[ ${RUNNER_STANDIN_JOB_FROM_FORK:-} == 1 ]] && echo true || echo false)" '
      {id: 1, full_name: $repository, fork: false} as $base
      | (if $fork then {id: 2, full_name: "outsider/\($repository | split("/") | last)", fork: true} else $base end) as $head
      | {ref: $ref, repository: $base}
        + if ($event | startswith("pull_request")) then {pull_request: {head: {repo: $head}, base: {repo: $base}}}
          elif $event == "workflow_run" then {workflow_run: {head_repository: $head, repository: $base}}
          else {} end' >"$GITHUB_EVENT_PATH"
  fi

  started=$(hook started)
  if [[ $(jq -r '.status // 0' <<<"$started") == 0 ]]; then
    steps=ran
    # What a job leaves behind: a build in the workspace, scratch files in its temp and in /tmp.
    mkdir -p -- "$GITHUB_WORKSPACE/build" "$RUNNER_TEMP/scratch"
    echo output >"$GITHUB_WORKSPACE/build/output.txt"
    echo scratch >"$RUNNER_TEMP/scratch/file.txt"
    for dir in $JOB_CLEANUP_TEMP_DIRS; do
      mkdir -p -- "$dir" && echo leftover >"$dir/job-leftover.$$"
    done
    sleep "${RUNNER_STANDIN_JOB_SECONDS:-0}"
  fi
  completed=$(hook completed)
  standin_record job "$(jq -cn --arg event "$GITHUB_EVENT_NAME" --arg repository "$repository" \
    --arg ref "$GITHUB_REF" --argjson started "$started" --arg steps "$steps" --argjson completed "$completed" \
    '{job: {event_name: $event, repository: $repository, ref: $ref}, started_hook: $started, steps: $steps,
      completed_hook: $completed,
      conclusion: (if $steps == "ran" and (($completed.status // 0) == 0) then "success" else "failure" end)}')"
}

if ((listener_code == 0)); then
  if [[ -n ${SANDBOX_GITHUB_URL:-} && -n $runner_id ]]; then
    standin_post "/runners/$runner_id/busy" '{"busy": true}' >/dev/null
    run_job
    standin_post "/runners/$runner_id/busy" '{"busy": false}' >/dev/null
    standin_post "/runners/$runner_id/exit" '{}' >/dev/null
  else
    run_job
  fi
fi

# An ephemeral runner deletes its local registration after its job.
if [[ -f $STANDIN_STATE_FILE ]] && [[ $(jq -r '.Ephemeral // false' <"$STANDIN_STATE_FILE") == true ]]; then
  rm -f -- "$STANDIN_STATE_FILE"
fi

standin_record exited "{\"status\": $status, \"listener_exit_code\": $listener_code, \"runner_id\": $(jq -n --arg id "$runner_id" '$id | tonumber? // null')}"
exit "$status"
