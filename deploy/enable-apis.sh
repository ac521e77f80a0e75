#!/usr/bin/env bash
# Enables the Google Cloud APIs the deployment uses.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/enable-apis.sh [--dry-run] [--env-file FILE] [--help]

Enables, in PROJECT_ID: Compute Engine, Cloud Run, Cloud Functions, Cloud Build (image and function
builds), Artifact Registry (images), Cloud Storage (the build bucket), Secret Manager and IAM.

Variables: PROJECT_ID, REGION (required).
  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults

run gcloud services enable --project="$PROJECT_ID" compute.googleapis.com run.googleapis.com \
  cloudfunctions.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com \
  storage.googleapis.com secretmanager.googleapis.com iam.googleapis.com
