#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# After the job: asks the instance deleter to delete this VM from its managed instance group (a VM may
# delete only itself). Deleting through the MIG, not the instance API, keeps the MIG from recreating it.
#
# Instance attributes:
#   instance-deleter-url  (required) the instance deleter's URL; also the identity token's audience
# Environment: the retry settings in lib.sh.
#
# Prints the deleter's answer and exits 0; 1 when the deleter failed or refused, 2 on a configuration
# problem. The VM usually shuts down while this runs or right after.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

require_tools curl jq

deleter_url=$(attribute instance-deleter-url)
[[ -n $deleter_url ]] || die_config "$(missing_attribute instance-deleter-url)"

auth=$(identity_token_header "$deleter_url")
# The deleter waits for the MIG's operation before it answers.
http_request DELETE "$deleter_url" --auth "$auth" --timeout 300 \
  --what "asking the instance deleter to delete this VM"
echo "instance deleter: $(tr -d '\r' <"$HTTP_BODY_FILE")"
