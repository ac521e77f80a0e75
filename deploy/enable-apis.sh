#!/usr/bin/env bash
# Enables the Google Cloud APIs the deployment uses.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/enable-apis.sh [--dry-run] [--env-file FILE] [--help]

Enables, in PROJECT_ID: Compute Engine, Cloud Run, Cloud Functions, Cloud Build (image and function
builds), Artifact Registry (images), Cloud Storage (the build bucket), Secret Manager and IAM; with
RUNNER_SCALING=autoscaler-service (the default) also Cloud Scheduler (the autoscaler's reconciliation),
Cloud Logging and Cloud Monitoring (its log-based metrics and alerts).

Variables: PROJECT_ID, REGION (required).
  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults

apis=(compute.googleapis.com run.googleapis.com cloudfunctions.googleapis.com cloudbuild.googleapis.com
  artifactregistry.googleapis.com storage.googleapis.com secretmanager.googleapis.com iam.googleapis.com)
if [[ "$RUNNER_SCALING" == autoscaler-service ]]; then
  apis+=(cloudscheduler.googleapis.com logging.googleapis.com monitoring.googleapis.com)
fi
run gcloud services enable --project="$PROJECT_ID" "${apis[@]}"
