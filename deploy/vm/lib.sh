# shellcheck shell=bash
#
# Shared helpers for the runner VM scripts: logging, the metadata server, identity tokens and an HTTP helper
# that retries. Sourced, never run. Needs bash 4.4+, curl 7.55+ and jq; everything else is coreutils.
#
# Secrets (identity tokens, registration tokens, JIT configs) never reach argv, stdout or stderr:
# - an identity token is written to a header file in a private temporary directory (mode 0700) and handed
#   to curl as `-H @file`, so it never shows in `ps` or /proc/PID/cmdline, which every user can read;
# - request bodies go to curl on stdin;
# - response bodies are written to files in the same directory and read back with jq or a bash builtin;
# - failure messages quote the service's `{"error": ...}` text, never a request or a successful response.
# Nothing here uses `set -x`; do not add it, it would print every secret.
#
# Environment (all optional):
#   GCE_METADATA_HOST        metadata server host[:port] (default metadata.google.internal), as the Google
#                            client libraries read it
#   RETRY_MAX_ATTEMPTS       attempts per request, first one included (default 20: the time budget is
#                            what normally ends the retries)
#   RETRY_BASE_SECONDS       first backoff delay; doubles per attempt, with jitter (default 1)
#   RETRY_MAX_DELAY_SECONDS  longest single backoff delay (default 30)
#   RETRY_DEADLINE_SECONDS   time budget for one request and all its retries (default 300)

# Command substitutions (`x=$(f)`) keep `set -e`, so a failure inside a helper stops it there too.
shopt -s inherit_errexit

# Exit statuses shared by the scripts (README.md lists them).
readonly EXIT_FAILURE=1 # a service refused the request, or kept failing until the retries ran out
readonly EXIT_CONFIG=2  # missing or invalid configuration: an instance attribute, an env variable, a tool

GCR_SCRIPT=$(basename -- "$0")
# Where these scripts are, as an absolute path without symlinks (the hooks' paths are written from it).
# shellcheck disable=SC2034 # used by the scripts that source this file
GCR_SCRIPT_DIR=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

# Writes a line to stderr, prefixed with the script's name (journald shows it as is).
log() {
  printf '%s: %s\n' "$GCR_SCRIPT" "$*" >&2
}

# Prints an error and exits with EXIT_FAILURE.
die() {
  log "error: $*"
  exit "$EXIT_FAILURE"
}

# Prints an error and exits with EXIT_CONFIG.
die_config() {
  log "error: $*"
  exit "$EXIT_CONFIG"
}

# Dies unless every named command is on PATH.
require_tools() {
  local tool missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || die_config "required tools not found on PATH: ${missing[*]}"
}

# Converts a decimal number of seconds ("0.1", "30") to milliseconds; dies naming `name` otherwise.
gcr_seconds_to_ms() {
  local value=$1 name=$2
  [[ $value =~ ^([0-9]{1,9})(\.([0-9]+))?$ ]] ||
    die_config "$name must be a number of seconds, got '$value'"
  local whole=${BASH_REMATCH[1]} fraction="${BASH_REMATCH[3]}000"
  printf '%d\n' $((10#$whole * 1000 + 10#${fraction:0:3}))
}

# Milliseconds as an argument for sleep(1): 1500 -> 1.500
gcr_ms_to_seconds() {
  printf '%d.%03d\n' $(($1 / 1000)) $(($1 % 1000))
}

# Milliseconds since the epoch (bash 5's EPOCHREALTIME; whole seconds on older shells).
gcr_now_ms() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    # The separator follows the locale, so strip whatever it is: microseconds remain.
    local micros=${EPOCHREALTIME//[!0-9]/}
    printf '%d\n' $((10#$micros / 1000))
  else
    printf '%d\n' $((SECONDS * 1000))
  fi
}

GCR_RETRY_MAX_ATTEMPTS=${RETRY_MAX_ATTEMPTS:-20}
[[ $GCR_RETRY_MAX_ATTEMPTS =~ ^[1-9][0-9]{0,3}$ ]] ||
  die_config "RETRY_MAX_ATTEMPTS must be a whole number from 1, got '$GCR_RETRY_MAX_ATTEMPTS'"
GCR_RETRY_BASE_MS=$(gcr_seconds_to_ms "${RETRY_BASE_SECONDS:-1}" RETRY_BASE_SECONDS)
GCR_RETRY_MAX_DELAY_MS=$(gcr_seconds_to_ms "${RETRY_MAX_DELAY_SECONDS:-30}" RETRY_MAX_DELAY_SECONDS)
GCR_RETRY_DEADLINE_MS=$(gcr_seconds_to_ms "${RETRY_DEADLINE_SECONDS:-300}" RETRY_DEADLINE_SECONDS)

# A private directory for tokens and response bodies, removed on exit (bash runs the EXIT trap on SIGTERM
# too). mktemp -d creates it with mode 0700 and files in it with 0600.
GCR_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gce-github-runners.XXXXXXXX") ||
  die_config "cannot create a temporary directory in ${TMPDIR:-/tmp}"
gcr_cleanup() {
  if [[ -n ${GCR_TMP:-} ]]; then
    rm -rf -- "$GCR_TMP"
    GCR_TMP=
  fi
}
trap gcr_cleanup EXIT

# The result of the last http_request: the status code and a file holding the response body.
HTTP_STATUS=
HTTP_BODY_FILE=
GCR_REQUESTS=0

# Backoff before attempt `n + 1` after `n` failed attempts, in ms: doubling from RETRY_BASE_SECONDS up to
# RETRY_MAX_DELAY_SECONDS, then "equal jitter" (half fixed, half random) so VMs booting together spread out.
gcr_backoff_ms() {
  local attempts=$1 delay=$GCR_RETRY_BASE_MS i
  for ((i = 1; i < attempts && delay < GCR_RETRY_MAX_DELAY_MS; i++)); do
    delay=$((delay * 2))
  done
  ((delay <= GCR_RETRY_MAX_DELAY_MS)) || delay=$GCR_RETRY_MAX_DELAY_MS
  local half=$((delay / 2))
  printf '%d\n' $((half + (RANDOM * 32768 + RANDOM) % (delay - half + 1)))
}

# The Retry-After of a response headers file in ms (delta-seconds or an HTTP date), or nothing.
gcr_retry_after_ms() {
  local line value when now
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ ${line,,} == retry-after:* ]] || continue
    value=${line#*:}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    if [[ $value =~ ^[0-9]{1,6}$ ]]; then
      printf '%d\n' $((10#$value * 1000))
    elif when=$(date -d "$value" +%s 2>/dev/null) && now=$(date +%s); then
      printf '%d\n' $(((when > now ? when - now : 0) * 1000))
    fi
    return 0
  done <"$1"
}

# What a failed response says: the `error` field of a JSON body, else the body's first line, shortened and
# stripped of control characters. Never used on a successful response.
gcr_error_detail() {
  local file=$1 message=
  message=$(jq -r 'if type == "object" and (.error | type) == "string" then .error else empty end' \
    <"$file" 2>/dev/null) || message=
  if [[ -z $message && -s $file ]]; then
    IFS= read -r message <"$file" || true
  fi
  message=${message//[[:cntrl:]]/ }
  ((${#message} <= 300)) || message="${message:0:300}..."
  [[ -z $message ]] || printf ': %s' "$message"
}

# http_request METHOD URL [--what TEXT] [--auth HEADER_FILE] [--json BODY] [--timeout SECONDS]
#                         [--accept STATUS]... [--transient STATUS]... [--metadata]
#
# Sends one request and sorts the answer:
# - success: a 2xx, or a status given with --accept. Returns with HTTP_STATUS and HTTP_BODY_FILE set.
# - transient: network errors, 429, every 5xx (the token proxy answers 502 when GitHub failed, 503 with
#   Retry-After for GitHub's rate limits, 504 when GitHub did not answer in time), and any status given
#   with --transient (e.g. 409 from /jitconfig while GitHub still lists an earlier runner of this VM's
#   name as online). Retried with exponential backoff and jitter, waiting at least the response's
#   Retry-After, within RETRY_MAX_ATTEMPTS and the RETRY_DEADLINE_SECONDS budget. A wait longer than
#   what is left of the budget is cut to it, and one last attempt is made at its end: a Retry-After of
#   60 s (GitHub's secondary rate limit) is waited out when the budget allows and never makes the script
#   give up at once.
# - final: any other 4xx (400, 401, 403, 404, ...): asking again cannot change the answer.
# On a final answer, or when the retries run out, dies with a message that starts with --what and ends
# with the service's error.
#   --auth FILE   a header file with the Authorization line (see identity_token_header)
#   --json BODY   sent as application/json on curl's stdin
#   --metadata    a metadata server request: adds Metadata-Flavor and never goes through a proxy
http_request() {
  local method=$1 url=$2
  shift 2
  local what="$method $url" auth_file='' json='' has_json=false timeout=60 metadata=false
  local -a accept=() transient=()
  while (($#)); do
    case $1 in
      --what) what=$2 ;;
      --auth) auth_file=$2 ;;
      --json) json=$2 has_json=true ;;
      --timeout) timeout=$2 ;;
      --accept) accept+=("$2") ;;
      --transient) transient+=("$2") ;;
      --metadata)
        metadata=true
        shift
        continue
        ;;
      *) die "http_request: unknown option $1" ;;
    esac
    shift 2
  done

  local -a args=(--silent --show-error --url "$url" --request "$method" --max-time "$timeout"
    --connect-timeout 10 --user-agent "gce-github-runners/$GCR_SCRIPT" --write-out '%{http_code}')
  if $metadata; then
    # The metadata server refuses proxied requests, and a token must not pass through a proxy anyway.
    args+=(--header 'Metadata-Flavor: Google' --noproxy '*')
  fi
  [[ -z $auth_file ]] || args+=(--header "@$auth_file")
  if $has_json; then
    args+=(--header 'Content-Type: application/json' --data-binary @-)
  fi

  local started attempt=0 rc status reason body_file headers_file error_file elapsed remaining wait_ms
  local retry_after wait_note
  started=$(gcr_now_ms)
  while :; do
    attempt=$((attempt + 1))
    # The directory is private, so plain numbered names will do (no mktemp process per attempt).
    GCR_REQUESTS=$((GCR_REQUESTS + 1))
    body_file=$GCR_TMP/body.$BASHPID.$GCR_REQUESTS
    headers_file=$GCR_TMP/headers.$BASHPID.$GCR_REQUESTS
    error_file=$GCR_TMP/curl.$BASHPID.$GCR_REQUESTS
    rc=0
    if $has_json; then
      status=$(curl "${args[@]}" --output "$body_file" --dump-header "$headers_file" \
        2>"$error_file" <<<"$json") || rc=$?
    else
      status=$(curl "${args[@]}" --output "$body_file" --dump-header "$headers_file" \
        2>"$error_file" </dev/null) || rc=$?
    fi
    retry_after=
    if ((rc != 0)); then
      local curl_message=
      IFS= read -r curl_message <"$error_file" || true
      curl_message=${curl_message#curl: }
      case $rc in
        # Usage errors: the URL or options are wrong and will stay wrong.
        1 | 2 | 3 | 4 | 43) die "$what failed: ${curl_message:-curl exit status $rc}" ;;
      esac
      reason="network error (${curl_message:-curl exit status $rc})"
    elif [[ $status =~ ^2[0-9][0-9]$ ]] || gcr_status_in "$status" "${accept[@]}"; then
      # shellcheck disable=SC2034 # read by the scripts that source this file
      HTTP_STATUS=$status
      HTTP_BODY_FILE=$body_file
      rm -f -- "$headers_file" "$error_file"
      return 0
    elif [[ $status == 429 || $status =~ ^5[0-9][0-9]$ ]] || gcr_status_in "$status" "${transient[@]}"; then
      reason="HTTP $status$(gcr_error_detail "$body_file")"
      retry_after=$(gcr_retry_after_ms "$headers_file")
    else
      die "$what failed: HTTP $status$(gcr_error_detail "$body_file")"
    fi
    rm -f -- "$body_file" "$headers_file" "$error_file"

    if ((attempt >= GCR_RETRY_MAX_ATTEMPTS)); then
      die "$what failed after $attempt attempts: $reason"
    fi
    elapsed=$(($(gcr_now_ms) - started))
    remaining=$((GCR_RETRY_DEADLINE_MS - elapsed))
    if ((remaining <= 0)); then
      die "$what failed after $attempt attempts in $((elapsed / 1000))s: $reason" \
        "(the ${RETRY_DEADLINE_SECONDS:-300}s budget is used up)"
    fi
    wait_ms=$(gcr_backoff_ms "$attempt")
    wait_note=
    if [[ -n $retry_after ]] && ((retry_after > wait_ms)); then
      wait_ms=$retry_after
      wait_note=" as Retry-After asks"
    fi
    if ((wait_ms > remaining)); then
      # Waiting less than asked and trying once more beats giving up now: the answer may have changed.
      wait_ms=$remaining
      wait_note=", all that is left of the ${RETRY_DEADLINE_SECONDS:-300}s budget${wait_note:+ (Retry-After $((retry_after / 1000))s)}"
    fi
    log "$what: $reason; retrying in $(gcr_ms_to_seconds "$wait_ms")s$wait_note (attempt $((attempt + 1)) of $GCR_RETRY_MAX_ATTEMPTS)"
    sleep "$(gcr_ms_to_seconds "$wait_ms")"
  done
}

# gcr_status_in STATUS [LISTED]...: whether STATUS is one of the LISTED statuses.
gcr_status_in() {
  local status=$1 listed
  shift
  for listed in "$@"; do
    [[ $status != "$listed" ]] || return 0
  done
  return 1
}

# The metadata server's base URL. Like the Google client libraries, GCE_METADATA_HOST may be host[:port]
# or a URL.
metadata_base_url() {
  local host=${GCE_METADATA_HOST:-metadata.google.internal}
  [[ $host == *://* ]] || host="http://$host"
  printf '%s/computeMetadata/v1\n' "${host%/}"
}

# Reads a metadata value (e.g. `instance/name`) that must exist, and prints it.
metadata_value() {
  http_request GET "$(metadata_base_url)/$1" --metadata --timeout 10 \
    --what "reading $1 from the metadata server"
  cat -- "$HTTP_BODY_FILE"
  rm -f -- "$HTTP_BODY_FILE"
}

# attribute NAME [DEFAULT]: prints the instance attribute NAME with surrounding whitespace trimmed, or
# DEFAULT (or nothing) when it is not set or empty. The first call reads all attributes in one request and
# keeps them in the private temporary directory, so later calls (in command substitutions too) reuse them.
attribute() {
  local name=$1 value cache=$GCR_TMP/attributes.json
  if [[ ! -s $cache ]]; then
    http_request GET "$(metadata_base_url)/instance/attributes/?recursive=true" --metadata --timeout 10 \
      --what "reading the instance attributes from the metadata server"
    jq -e 'type == "object"' <"$HTTP_BODY_FILE" >/dev/null 2>&1 ||
      die "the metadata server's instance attributes are not a JSON object"
    mv -- "$HTTP_BODY_FILE" "$cache"
  fi
  value=$(jq -r --arg name "$name" '.[$name] // empty | tostring' <"$cache")
  value=${value#"${value%%[![:space:]]*}"}
  value=${value%"${value##*[![:space:]]}"}
  printf '%s\n' "${value:-${2-}}"
}

# Prints the text to describe a missing attribute; scripts collect these and die once with all of them.
missing_attribute() {
  printf 'instance attribute %s is required but not set (add it to the instance template metadata)' "$1"
}

# identity_token_header AUDIENCE: fetches a Google-signed identity token for AUDIENCE with the instance's
# Compute Engine claims (format=full), writes `Authorization: Bearer <token>` to a 0600 file in the private
# temporary directory and prints the file's path, for http_request's --auth.
identity_token_header() {
  local audience=$1 encoded token file
  encoded=$(jq -rn --arg v "$audience" '$v | @uri')
  http_request GET "$(metadata_base_url)/instance/service-accounts/default/identity?audience=$encoded&format=full" \
    --metadata --timeout 10 --what "getting an identity token for $audience from the metadata server"
  token=$(<"$HTTP_BODY_FILE")
  rm -f -- "$HTTP_BODY_FILE"
  [[ $token =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] ||
    die "the metadata server's answer for an identity token is not a JWT"
  file=$(mktemp "$GCR_TMP/auth.XXXXXXXX")
  # printf is a builtin: the token goes straight into the file, never into a process's argv.
  printf 'Authorization: Bearer %s\n' "$token" >"$file"
  printf '%s\n' "$file"
}

# A URL without its trailing slashes, for joining paths to it.
url_base() {
  local url=$1
  while [[ $url == */ ]]; do url=${url%/}; done
  printf '%s\n' "$url"
}

# The command prefix that runs the runner's scripts as RUNNER_USER (unset: as the current user). The
# actions/runner scripts refuse to run as root, so the systemd units set RUNNER_USER. runuser (util-linux,
# essential on Debian and Ubuntu) keeps the environment apart from HOME, SHELL, USER and LOGNAME, so the
# ACTIONS_RUNNER_INPUT_* variables reach the runner. Sets the array RUNNER_AS_USER.
# shellcheck disable=SC2034 # used by the scripts that source this file
RUNNER_AS_USER=()
runner_user_prefix() {
  local user=${RUNNER_USER:-}
  RUNNER_AS_USER=()
  [[ -n $user ]] || return 0
  id -u -- "$user" >/dev/null 2>&1 || die_config "RUNNER_USER $user does not exist"
  [[ $(id -un) != "$user" ]] || return 0
  ((EUID == 0)) || die_config "RUNNER_USER is $user but this script runs as $(id -un), not root"
  require_tools runuser
  # shellcheck disable=SC2034 # used by the scripts that source this file
  RUNNER_AS_USER=(runuser -u "$user" --)
}
