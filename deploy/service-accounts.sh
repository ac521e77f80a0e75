#!/usr/bin/env bash
# Creates the three service accounts, each holding nothing yet; the other scripts grant each only what
# its piece needs:
#   proxy   (PROXY_SA_NAME):   runs the token proxy; may read the GitHub credential secret, nothing else.
#   deleter (DELETER_SA_NAME): runs the instance deleter; holds the custom role of
#                              deploy/deleter-role-permissions.txt at project level.
#   runner  (RUNNER_SA_NAME):  the runner VMs' identity; may invoke the two services, nothing else.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/service-accounts.sh [--dry-run] [--env-file FILE] [--help]

Creates, when absent, the service accounts of the token proxy, the instance deleter and the runner VMs.
They are created without roles; deploy/github-secret.sh, deploy/token-proxy.sh and
deploy/instance-deleter.sh grant each exactly what it needs.

Variables (environment or --env-file):
  PROJECT_ID       required
  REGION           required (not used here; every script takes the same variables)
  PROXY_SA_NAME    default gh-token-proxy
  DELETER_SA_NAME  default gh-instance-deleter
  RUNNER_SA_NAME   default gh-runner (skipped when RUNNER_SA_EMAIL names an account of your own)

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults

create_account() {
  local name="$1" title="$2" description="$3"
  ensure gcloud iam service-accounts describe "${name}@${PROJECT_ID}.iam.gserviceaccount.com" \
    --project="$PROJECT_ID" -- \
    gcloud iam service-accounts create "$name" --project="$PROJECT_ID" --display-name="$title" \
    --description="$description"
}

note "service accounts: each starts with no role"
create_account "$PROXY_SA_NAME" "GitHub runner token proxy" \
  "Runs the token proxy (Cloud Run). Reads the GitHub credential secret."
create_account "$DELETER_SA_NAME" "GitHub runner instance deleter" \
  "Runs the instance deleter. Holds the ${DELETER_ROLE_ID} custom role."
if [[ "$RUNNER_SA_EMAIL" == "${RUNNER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com" ]]; then
  create_account "$RUNNER_SA_NAME" "GitHub runner VMs" \
    "Identity of ephemeral runner VMs. May invoke the token proxy and the instance deleter only."
fi
