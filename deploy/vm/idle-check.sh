#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# Timer: when the runner is not running a job, asks the instance deleter to delete this VM if, and only
# if, its managed instance group wants to shrink (`DELETE /?if=scale-down`: the check and the deletion
# happen in one request, so idle VMs asking at the same moment do not all leave). When busy, does nothing.
#
# Instance attributes:
#   instance-deleter-url  (required) the instance deleter's URL; also the identity token's audience
# Environment:
#   RUNNER_BUSY_CHECK  a bash command that exits 0 when the runner is running a job and 1 when it is not;
#                      default: look for a Runner.Worker process, which the runner starts for each job
#   and the retry settings in lib.sh.
#
# Exits 0 after reporting what happened (busy, kept or deleted); 1 when the busy check or the deleter
# failed, 2 on a configuration problem. A busy check that fails counts as busy: when in doubt, keep the VM.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require_tools curl jq

# Exit status 0 when the runner is running a job, 1 when it is not, anything else when it cannot tell.
runner_busy() {
  if [[ -n ${RUNNER_BUSY_CHECK:-} ]]; then
    bash -c "$RUNNER_BUSY_CHECK"
  elif command -v pgrep >/dev/null 2>&1; then
    pgrep -x Runner.Worker >/dev/null
  else
    local comm
    for comm in /proc/[0-9]*/comm; do
      [[ $(cat -- "$comm" 2>/dev/null) != Runner.Worker ]] || return 0
    done
    return 1
  fi
}

deleter_url=$(attribute instance-deleter-url)
[[ -n $deleter_url ]] || die_config "$(missing_attribute instance-deleter-url)"

busy=0
runner_busy || busy=$?
case $busy in
  0)
    echo "busy: the runner is running a job; nothing to do"
    exit 0
    ;;
  1) ;;
  *) die "could not tell whether the runner is running a job (busy check exit status $busy); keeping this VM" ;;
esac

# The deleter serves only its root path; keep a path the URL already has (a Cloud Function's name).
base=$(url_base "$deleter_url")
if [[ $base =~ ^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+$ ]]; then
  base="$base/"
fi
auth=$(identity_token_header "$deleter_url")
http_request DELETE "$base?if=scale-down" --auth "$auth" --timeout 300 \
  --what "asking the instance deleter whether this idle VM should go"
echo "idle: instance deleter: $(tr -d '\r' <"$HTTP_BODY_FILE")"
