#!/usr/bin/env bash
# Creates the service accounts, each holding nothing yet; the other scripts grant each only what its piece
# needs:
#   proxy   (PROXY_SA_NAME):   runs the token proxy; may read the GitHub credential secret, nothing else.
#   deleter (DELETER_SA_NAME): runs the instance deleter; holds the custom role of
#                              deploy/deleter-role-permissions.txt, narrowed to the runner MIGs.
#   runners (one per trust level, gh-runner-<level>): the runner VMs' identities; may invoke the two
#                              services, nothing else. The token proxy's caller policy tells them apart.
#   build   (BUILD_SA_NAME, optional): runs the Cloud Build builds of the image and of the function.
#   autoscaler (AUTOSCALER_SA_NAME, with RUNNER_SCALING=autoscaler-service): runs the autoscaler service;
#                              holds the custom role of deploy/autoscaler-role-permissions.txt and reads
#                              the App key and the webhook secret.
#   scheduler  (SCHEDULER_SA_NAME, with the autoscaler): the identity of the Cloud Scheduler job's tokens
#                              for POST /reconcile; holds no role at all.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/service-accounts.sh [--dry-run] [--env-file FILE] [--help]

Creates, when absent, the service accounts of the token proxy, the instance deleter, the runner VMs of each
trust level, with RUNNER_SCALING=autoscaler-service (the default) of the autoscaler service and of its Cloud
Scheduler job, and, with BUILD_SA_NAME, of Cloud Build. They are created without roles;
deploy/github-secret.sh, deploy/build-image.sh, deploy/token-proxy.sh, deploy/instance-deleter.sh and
deploy/autoscaler.sh grant each exactly what it needs (the scheduler's account needs nothing).

Variables (environment or --env-file):
  PROJECT_ID               required
  REGION                   required (not used here; every script takes the same variables)
  TRUST_LEVELS             default "presubmit postsubmit": one runner service account per level
  RUNNER_SA_NAME_<LEVEL>   default gh-runner-<level> (e.g. RUNNER_SA_NAME_PRESUBMIT)
  PROXY_SA_NAME            default gh-token-proxy
  DELETER_SA_NAME          default gh-instance-deleter
  RUNNER_SCALING           autoscaler-service (default) or cpu (no autoscaler service, no accounts for it)
  AUTOSCALER_SA_NAME       default gh-autoscaler
  SCHEDULER_SA_NAME        default gh-autoscaler-scheduler
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
if [[ "$RUNNER_SCALING" == autoscaler-service ]]; then
  create_account "$AUTOSCALER_SA_NAME" "GitHub runner autoscaler" \
    "Runs the autoscaler service (Cloud Run). Holds the ${AUTOSCALER_ROLE_ID} custom role."
  create_account "$SCHEDULER_SA_NAME" "GitHub runner autoscaler: reconcile calls" \
    "Identity of the Cloud Scheduler job's tokens for the autoscaler's POST /reconcile. Holds no role."
fi
if [[ -n "${BUILD_SA_NAME:-}" ]]; then
  create_account "$BUILD_SA_NAME" "GitHub runners: Cloud Build" \
    "Runs the Cloud Build builds of the token proxy image and the instance deleter function."
fi
