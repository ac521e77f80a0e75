#!/usr/bin/env bash
# Creates the service accounts, each holding nothing yet; the other scripts grant each only what its piece
# needs:
#   proxy   (PROXY_SA_NAME):   runs the token proxy; may read the GitHub credential secret, nothing else.
#   deleter (DELETER_SA_NAME): runs the instance deleter; holds the custom role of
#                              deploy/deleter-role-permissions.txt, narrowed to the runner MIGs.
#   runners (one per trust level, gh-runner-<level>): the runner VMs' identities; may invoke the two
#                              services, nothing else. The token proxy's caller policy tells them apart.
#   build   (BUILD_SA_NAME, optional): runs the Cloud Build builds of the image and of the function.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/service-accounts.sh [--dry-run] [--env-file FILE] [--help]

Creates, when absent, the service accounts of the token proxy, the instance deleter, the runner VMs of each
trust level and, with BUILD_SA_NAME, of Cloud Build. They are created without roles; deploy/github-secret.sh,
deploy/build-image.sh, deploy/token-proxy.sh and deploy/instance-deleter.sh grant each exactly what it needs.

Variables (environment or --env-file):
  PROJECT_ID               required
  REGION                   required (not used here; every script takes the same variables)
  TRUST_LEVELS             default "presubmit postsubmit": one runner service account per level
  RUNNER_SA_NAME_<LEVEL>   default gh-runner-<level> (e.g. RUNNER_SA_NAME_PRESUBMIT)
  PROXY_SA_NAME            default gh-token-proxy
  DELETER_SA_NAME          default gh-instance-deleter
  BUILD_SA_NAME            optional: a service account for Cloud Build to run the builds as (new projects
                           may otherwise build as the Compute Engine default account); see docs/deploy.md

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
for level in "${LEVELS[@]}"; do
  create_account "$(runner_sa_name "$level")" "GitHub runner VMs: $level" \
    "Identity of ephemeral $level runner VMs. May invoke the token proxy and the instance deleter only."
done
if [[ -n "${BUILD_SA_NAME:-}" ]]; then
  create_account "$BUILD_SA_NAME" "GitHub runners: Cloud Build" \
    "Runs the Cloud Build builds of the token proxy image and the instance deleter function."
fi
