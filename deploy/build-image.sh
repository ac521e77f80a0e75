#!/usr/bin/env bash
# Builds the services' container image (Dockerfile) with Cloud Build and pushes it to Artifact Registry.
# Only the files deploy/container/gcloudignore allows are uploaded: never a key or .env file that happens
# to sit in the working tree.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/build-image.sh [--dry-run] [--env-file FILE] [--help]

Creates the Docker repository AR_REPOSITORY in REGION when absent, then builds and pushes IMAGE with
`gcloud builds submit`. With Docker at hand, `docker build -t IMAGE . && docker push IMAGE` does the same.

Variables (environment or --env-file):
  PROJECT_ID, REGION  required
  AR_REPOSITORY       default gce-github-runners
  IMAGE_TAG           default: the current git commit (short)
  IMAGE               default REGION-docker.pkg.dev/PROJECT_ID/AR_REPOSITORY/gce-github-runners:IMAGE_TAG

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults

note "the container image for both services: $IMAGE"
ensure gcloud artifacts repositories describe "$AR_REPOSITORY" --project="$PROJECT_ID" --location="$REGION" -- \
  gcloud artifacts repositories create "$AR_REPOSITORY" --project="$PROJECT_ID" --location="$REGION" \
  --repository-format=docker "--description=GitHub runner token proxy and instance deleter images"
run gcloud builds submit "$REPO_DIR" --project="$PROJECT_ID" --region="$REGION" --tag="$IMAGE" \
  --ignore-file="$REPO_DIR/deploy/container/gcloudignore"
