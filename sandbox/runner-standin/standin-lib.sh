# shellcheck shell=bash
#
# Shared by the runner stand-in's run.sh and config.sh: recording invocations and calling the fake
# GitHub's sandbox routes. Sourced, never run.
#
# Environment:
#   RUNNER_STANDIN_LOG        append one JSON line per event here (default: _diag/runner-standin.jsonl in
#                             the state directory, as the real runner keeps its logs in _diag)
#   RUNNER_STANDIN_VERBOSE    1: write the JSON lines to stderr as well
#   SANDBOX_GITHUB_URL        base URL of the fake GitHub; unset: record only, talk to nobody
#   RUNNER_STANDIN_STATE_DIR  where the registration is kept as `.runner`, like the real runner keeps it in
#                             its root, and the work folder (default: the runner's root, below)

STANDIN_SCRIPT=$(basename -- "$0")
# The runner's root: the directory the script was started from, where the real runner has its .env. Links
# are not followed, so one stand-in can serve many runner directories of links.
STANDIN_ROOT=$(cd -- "$(dirname -- "$0")" && pwd)
STANDIN_STATE_DIR=${RUNNER_STANDIN_STATE_DIR:-$STANDIN_ROOT}
# shellcheck disable=SC2034 # used by run.sh and config.sh
STANDIN_STATE_FILE=$STANDIN_STATE_DIR/.runner
STANDIN_LOG=${RUNNER_STANDIN_LOG:-$STANDIN_STATE_DIR/_diag/runner-standin.jsonl}

# Variables the real runner treats as secrets (its CommandLine.Args.Secrets): recorded as hashes only.
readonly STANDIN_SECRET_INPUTS=(ACTIONS_RUNNER_INPUT_JITCONFIG ACTIONS_RUNNER_INPUT_TOKEN ACTIONS_RUNNER_INPUT_PAT)
readonly STANDIN_SECRET_FLAGS=(--jitconfig --token --pat)

standin_log() {
  printf '%s (stand-in): %s\n' "$STANDIN_SCRIPT" "$*" >&2
}

standin_die() {
  standin_log "error: $*"
  exit 1
}

# sha256 of a value, read from stdin (printf is a builtin, so the value never reaches an argv).
standin_sha256() {
  local digest
  digest=$(printf '%s' "$1" | sha256sum)
  printf '%s\n' "${digest%% *}"
}

# JSON describing a secret without its value.
standin_secret_json() {
  jq -cn --arg sha "$(standin_sha256 "$1")" --argjson length "${#1}" \
    '{present: true, sha256: $sha, length: $length}'
}

# standin_record EVENT EXTRA_JSON ARG...: appends one JSON line: the event, the script, the arguments with
# secret flag values replaced by their hashes, every ACTIONS_RUNNER_INPUT_* variable (secrets as hashes),
# user, working directory and pid.
standin_record() {
  local event=$1 extra=$2
  shift 2
  local -a args=() secret_args=()
  local redact_next=false arg name env_json='{}' value
  for arg in "$@"; do
    if $redact_next; then
      args+=("<redacted sha256:$(standin_sha256 "$arg")>")
      redact_next=false
      continue
    fi
    args+=("$arg")
    if [[ " ${STANDIN_SECRET_FLAGS[*]} " == *" $arg "* ]]; then
      redact_next=true
      secret_args+=("$arg")
    fi
  done
  while IFS= read -r name; do
    [[ $name == ACTIONS_RUNNER_INPUT_* ]] || continue
    value=${!name}
    if [[ " ${STANDIN_SECRET_INPUTS[*]} " == *" $name "* ]]; then
      env_json=$(jq -c --arg k "$name" --argjson v "$(standin_secret_json "$value")" '.[$k] = $v' <<<"$env_json")
    else
      env_json=$(jq -c --arg k "$name" --arg v "$value" '.[$k] = $v' <<<"$env_json")
    fi
  done < <(compgen -e)
  # `--args --` ends jq's options, so arguments like --name stay positional (jq 1.6 and later).
  local line secret_args_json
  secret_args_json=$(jq -cn '$ARGS.positional' --args -- "${secret_args[@]}")
  line=$(jq -cn --arg event "$event" --arg script "$STANDIN_SCRIPT" --argjson env "$env_json" \
    --argjson secret_args "$secret_args_json" --argjson extra "$extra" \
    --arg user "$(id -un)" --arg cwd "$PWD" \
    --argjson pid "$$" --arg time "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" \
    '{time: $time, script: $script, event: $event, args: $ARGS.positional, env: $env,
      secret_args: $secret_args, user: $user, cwd: $cwd, pid: $pid} + $extra' --args -- "${args[@]}")
  mkdir -p -- "$(dirname -- "$STANDIN_LOG")"
  printf '%s\n' "$line" >>"$STANDIN_LOG"
  if [[ ${RUNNER_STANDIN_VERBOSE:-} == 1 ]]; then
    printf '%s\n' "$line" >&2
  fi
}

# standin_post PATH BODY: POSTs BODY to the fake GitHub's /_sandbox PATH and prints the answer; dies on a
# failure. The body goes on stdin, never in argv.
standin_post() {
  local path=$1 body=$2 response status
  response=$(mktemp)
  status=$(curl --silent --show-error --request POST --url "${SANDBOX_GITHUB_URL%/}/_sandbox$path" \
    --header 'Content-Type: application/json' --data-binary @- --output "$response" \
    --write-out '%{http_code}' <<<"$body") || {
    rm -f -- "$response"
    standin_die "POST /_sandbox$path: could not reach the fake GitHub at $SANDBOX_GITHUB_URL"
  }
  if [[ ! $status =~ ^2 ]]; then
    local message
    message=$(jq -r '.message // empty' <"$response" 2>/dev/null) || message=
    rm -f -- "$response"
    standin_die "POST /_sandbox$path: HTTP $status${message:+: $message}"
  fi
  cat -- "$response"
  rm -f -- "$response"
}
