#!/usr/bin/env bash
# Builds the services' container image (Dockerfile) with Cloud Build and pushes it to Artifact Registry.
# Only the files deploy/container/gcloudignore allows are uploaded: never a key or .env file that happens
# to sit in the working tree. The source goes to a bucket these scripts create and name (BUILD_BUCKET),
# not to the gs://PROJECT_cloudbuild bucket gcloud would otherwise create, so the Storage permissions a
# deployment needs are known.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/build-image.sh [--service-account EMAIL] [--dry-run] [--env-file FILE] [--help]

Creates, when absent, the Docker repository AR_REPOSITORY in REGION and the Cloud Storage bucket
BUILD_BUCKET in REGION (uniform bucket-level access, public access prevented), then builds and pushes IMAGE
with `gcloud builds submit`, staging the source in gs://BUILD_BUCKET/source and writing the build log to
gs://BUILD_BUCKET/logs. With Docker at hand, `docker build -t IMAGE . && docker push IMAGE` does the same.

With a build service account (--service-account, BUILD_SERVICE_ACCOUNT or BUILD_SA_NAME), Cloud Build runs
the build as that account instead of picking one (new projects may pick the Compute Engine default account,
with too few or too many permissions). The script grants it what this build needs and no more:
roles/storage.objectAdmin on BUILD_BUCKET (read the source, write the log), roles/artifactregistry.writer
on AR_REPOSITORY (push the image) and roles/logging.logWriter on the project.

Variables (environment or --env-file):
  PROJECT_ID, REGION     required
  AR_REPOSITORY          default gce-github-runners
  BUILD_BUCKET           default PROJECT_ID-gh-runners-build
  BUILD_SERVICE_ACCOUNT  optional: the build's service account (email); default: BUILD_SA_NAME's
  IMAGE_TAG              default: the current git commit (short)
  IMAGE                  default REGION-docker.pkg.dev/PROJECT_ID/AR_REPOSITORY/gce-github-runners:IMAGE_TAG

  --service-account EMAIL  same as BUILD_SERVICE_ACCOUNT
  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
set -- "${REMAINING_ARGS[@]+"${REMAINING_ARGS[@]}"}"
while (($# > 0)); do
  case "$1" in
    --service-account) BUILD_SERVICE_ACCOUNT="${2:-}"; shift ;;
    --service-account=*) BUILD_SERVICE_ACCOUNT="${1#--service-account=}" ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
load_defaults

note "the container image for both services: $IMAGE"
ensure gcloud artifacts repositories describe "$AR_REPOSITORY" --project="$PROJECT_ID" --location="$REGION" -- \
  gcloud artifacts repositories create "$AR_REPOSITORY" --project="$PROJECT_ID" --location="$REGION" \
  --repository-format=docker "--description=GitHub runner token proxy and instance deleter images"
note "the build bucket: uploaded sources and build logs"
ensure gcloud storage buckets describe "gs://$BUILD_BUCKET" --project="$PROJECT_ID" -- \
  gcloud storage buckets create "gs://$BUILD_BUCKET" --project="$PROJECT_ID" --location="$REGION" \
  --uniform-bucket-level-access --public-access-prevention

build_flags=()
if [[ -n "$BUILD_SERVICE_ACCOUNT" ]]; then
  member="serviceAccount:$BUILD_SERVICE_ACCOUNT"
  note "the build runs as $BUILD_SERVICE_ACCOUNT: it may read and write the build bucket, push to $AR_REPOSITORY, write logs"
  run gcloud storage buckets add-iam-policy-binding "gs://$BUILD_BUCKET" --project="$PROJECT_ID" \
    --member="$member" --role=roles/storage.objectAdmin
  run gcloud artifacts repositories add-iam-policy-binding "$AR_REPOSITORY" --project="$PROJECT_ID" \
    --location="$REGION" --member="$member" --role=roles/artifactregistry.writer
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="$member" --role=roles/logging.logWriter \
    --condition=None
  # A user-specified build service account needs the logs in Cloud Logging or in a bucket of one's own
  # (https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts).
  build_flags=(--service-account="projects/${PROJECT_ID}/serviceAccounts/${BUILD_SERVICE_ACCOUNT}")
fi
run gcloud builds submit "$REPO_DIR" --project="$PROJECT_ID" --region="$REGION" --tag="$IMAGE" \
  --ignore-file="$REPO_DIR/deploy/container/gcloudignore" \
  --gcs-source-staging-dir="gs://$BUILD_BUCKET/source" --gcs-log-dir="gs://$BUILD_BUCKET/logs" \
  "${build_flags[@]+"${build_flags[@]}"}"
