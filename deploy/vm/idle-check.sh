#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# Timer: when the runner is not running a job, asks the instance deleter to delete this VM if, and only
# if, its managed instance group wants to shrink (`DELETE /?if=scale-down`: the check and the deletion
# happen in one request, so idle VMs asking at the same moment do not all leave). When busy, does nothing.
#
# Whether the runner is busy is GitHub's answer, through the token proxy: `GET {proxy}/runner` with this
# VM's identity token returns `{"id", "name", "status": "online"|"offline", "busy": true|false}` for the
# runner bound to this instance, or 404 when there is none (GitHub drops an ephemeral runner after its
# job). A process name is no evidence: a job can start a process called Runner.Worker and keep its VM for
# ever, and a job cannot change what GitHub says. Any other answer, or none, counts as busy: a VM is never
# deleted on an answer it cannot read (a proxy without this endpoint answers 405, and the VM stays).
#
# Instance attributes:
#   instance-deleter-url       (required) the instance deleter's URL; also the identity token's audience
#   github-runner-idle-source  proxy (default): ask the token proxy as above;
#                              process: look at this VM's processes (RUNNER_BUSY_CHECK), a local fallback
#                              for a proxy without `GET /runner`, which a job can fool
#   token-proxy-url            (required with the proxy source) the token proxy's URL and audience
# Environment:
#   RUNNER_BUSY_CHECK  with the process source: a bash command that exits 0 when the runner is running a
#                      job and 1 when it is not; default: look for a Runner.Worker process, which the runner
#                      starts for each job
#   and the retry settings in lib.sh.
#
# Exits 0 after reporting what happened (busy, kept or deleted); 1 when the busy check or the deleter
# failed, 2 on a configuration problem. A busy check that fails counts as busy: when in doubt, keep the VM.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require_tools curl jq

deleter_url=$(attribute instance-deleter-url)
idle_source=$(attribute github-runner-idle-source proxy)
proxy_url=$(attribute token-proxy-url)

problems=()
[[ -n $deleter_url ]] || problems+=("$(missing_attribute instance-deleter-url)")
case $idle_source in
  proxy) [[ -n $proxy_url ]] || problems+=("$(missing_attribute token-proxy-url) (github-runner-idle-source is proxy)") ;;
  process) ;;
  *) problems+=("instance attribute github-runner-idle-source must be proxy or process, got '$idle_source'") ;;
esac
if ((${#problems[@]})); then
  for problem in "${problems[@]}"; do log "error: $problem"; done
  exit "$EXIT_CONFIG"
fi

# Prints `busy DETAIL` or `idle DETAIL` from GitHub's view of this VM's runner; dies on any other answer.
busy_from_proxy() {
  local base auth verdict
  base=$(url_base "$proxy_url")
  auth=$(identity_token_header "$base")
  http_request GET "$base/runner" --auth "$auth" --accept 404 \
    --what "asking the token proxy whether this VM's runner is running a job"
  if [[ $HTTP_STATUS == 404 ]]; then
    echo "idle GitHub lists no runner for this VM$(gcr_error_detail "$HTTP_BODY_FILE")"
    return 0
  fi
  verdict=$(jq -r 'if type == "object" and (.busy | type) == "boolean" then
      "\(if .busy then "busy" else "idle" end) runner \(.name // "?") (id \(.id // "?")) is \(.status // "of unknown status")\(if .busy then " and running a job" else " and not running a job" end)"
    else empty end' <"$HTTP_BODY_FILE" 2>/dev/null) || verdict=
  [[ -n $verdict ]] || die "the token proxy's /runner answer has no busy field"
  printf '%s\n' "$verdict"
}

# Prints `busy DETAIL` or `idle DETAIL` from this VM's processes; dies when the check cannot tell.
busy_from_processes() {
  local status=0 comm
  if [[ -n ${RUNNER_BUSY_CHECK:-} ]]; then
    bash -c "$RUNNER_BUSY_CHECK" || status=$?
  elif command -v pgrep >/dev/null 2>&1; then
    pgrep -x Runner.Worker >/dev/null || status=$?
  else
    status=1
    for comm in /proc/[0-9]*/comm; do
      [[ $(cat -- "$comm" 2>/dev/null) != Runner.Worker ]] || status=0
    done
  fi
  case $status in
    0) echo "busy a Runner.Worker process is running (github-runner-idle-source is process)" ;;
    1) echo "idle no Runner.Worker process is running (github-runner-idle-source is process)" ;;
    *) die "the local busy check exited with status $status" ;;
  esac
}

# The deleter's token first: nothing slow may stand between the busy check and the deleter's decision.
base=$(url_base "$deleter_url")
# The deleter serves only its root path; keep a path the URL already has (a Cloud Function's name).
if [[ $base =~ ^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+$ ]]; then
  base="$base/"
fi
auth=$(identity_token_header "$deleter_url")

# A subshell, so that whatever ends the check (a refusal, the retries running out) keeps the VM.
verdict=$(
  if [[ $idle_source == proxy ]]; then busy_from_proxy; else busy_from_processes; fi
) || die "could not tell whether the runner is running a job; keeping this VM"
case $verdict in
  busy\ *)
    echo "busy: ${verdict#busy }; nothing to do"
    exit 0
    ;;
  idle\ *) log "idle: ${verdict#idle }" ;;
  *) die "could not tell whether the runner is running a job ('$verdict'); keeping this VM" ;;
esac

# One attempt, never retried: a retry after a backoff would act on a stale busy check. The deleter decides
# and deletes in this one request, without waiting (`{"deleted", "reason", "message"}`); "not now"
# (`mig-unstable`, `mig-busy`) and every failure keep the VM until the next timer tick checks afresh. 429
# means this VM already has a request in flight.
GCR_RETRY_MAX_ATTEMPTS=1 http_request DELETE "$base?if=scale-down" --auth "$auth" --timeout 40 --accept 429 \
  --what "asking the instance deleter whether this idle VM should go"
if [[ $HTTP_STATUS == 429 ]]; then
  echo "idle: instance deleter: a request of this VM is already in flight; keeping this VM for now"
  exit 0
fi
decision=$(jq -r 'if type == "object" and (.deleted | type) == "boolean" then
    "\(if .deleted then "deleted" else "kept" end) \(.reason // "?"): \(.message // "")"
  else empty end' <"$HTTP_BODY_FILE" 2>/dev/null) || decision=
[[ -n $decision ]] || die "the instance deleter's answer has no deleted field; keeping this VM"
echo "idle: instance deleter: ${decision}"
