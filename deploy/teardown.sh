#!/usr/bin/env bash
# Deletes what the deploy scripts created, in the order that leaves nothing dangling: the autoscaler and its
# scheduler job first, so nothing creates VMs any more, then the runner MIGs (and their VMs), so no VM is
# left calling services that are gone, then templates, services, the secrets, IAM, service accounts,
# monitoring and the build artifacts.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/teardown.sh (--yes | --dry-run) [--include-baked-images] [--env-file FILE] [--help]

Deletes, each only when it exists, with the same variables as the deploy scripts:
  1. the autoscaler's Cloud Scheduler job and the autoscaler service, so nothing creates VMs any more, and
     the fleet status service (its IAP access goes with it);
  2. the MIG of each trust level (a zonal one with RUNNER_ZONE), with its autoscaler and VMs: jobs running
     on them are cancelled, and their runners stay listed on GitHub as offline until GitHub removes them;
  3. the instance templates labelled app=gce-github-runners;
  4. the instance deleter (function and Cloud Run service) and the token proxy service;
  5. the GitHub credential secret and the webhook secret, all their versions;
  6. the project bindings and the custom roles DELETER_ROLE_ID, AUTOSCALER_ROLE_ID and FLEET_VIEWER_ROLE_ID
     (undeletable for 7
     days; their ids stay taken for 37: https://cloud.google.com/iam/docs/creating-custom-roles#deleting-custom-role);
  7. the build service account's project bindings (with BUILD_SA_NAME), then the service accounts: proxy,
     deleter, runners of each level, autoscaler, scheduler, fleet status, and BUILD_SA_NAME's;
  8. the alerting policies labelled app=gce-github-runners and the log-based metrics of
     deploy/monitoring/metrics/;
  9. the Artifact Registry repository AR_REPOSITORY (all images) and the bucket BUILD_BUCKET (all objects);
  10. with --include-baked-images, the images of family BAKE_IMAGE_FAMILY (default gh-runner).
The APIs stay enabled; the network, router and Cloud NAT, which the scripts do not create, stay.
Delete the GitHub App (or its key), or turn off its webhook, and the runner groups on GitHub yourself.

  --yes                   needed to delete anything: there is no undo
  --include-baked-images  also delete the images deploy/bake-image.sh made
  --dry-run               print the commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
yes=false
images=false
for arg in "${REMAINING_ARGS[@]+"${REMAINING_ARGS[@]}"}"; do
  case "$arg" in
    --yes) yes=true ;;
    --include-baked-images) images=true ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done
[[ "$DRY_RUN" == true || "$yes" == true ]] || die "this deletes the deployment: pass --yes (or --dry-run to read it first)"
load_defaults

if [[ -n "${RUNNER_ZONE:-}" ]]; then where=(--zone="$RUNNER_ZONE"); else where=(--region="$REGION"); fi

note "1. the autoscaler's scheduler job, the autoscaler service and the fleet status service"
if_exists gcloud scheduler jobs describe "$RECONCILE_JOB_NAME" --project="$PROJECT_ID" --location="$REGION" -- \
  gcloud scheduler jobs delete "$RECONCILE_JOB_NAME" --project="$PROJECT_ID" --location="$REGION" --quiet
if_exists gcloud run services describe "$AUTOSCALER_SERVICE" --project="$PROJECT_ID" --region="$REGION" -- \
  gcloud run services delete "$AUTOSCALER_SERVICE" --project="$PROJECT_ID" --region="$REGION" --quiet
if_exists gcloud run services describe "$FLEET_STATUS_SERVICE" --project="$PROJECT_ID" --region="$REGION" -- \
  gcloud run services delete "$FLEET_STATUS_SERVICE" --project="$PROJECT_ID" --region="$REGION" --quiet

note "2. runner MIGs, with their autoscalers and VMs"
for level in "${LEVELS[@]}"; do
  mig="$(runner_mig_name "$level")"
  if_exists gcloud compute instance-groups managed describe "$mig" --project="$PROJECT_ID" "${where[@]}" -- \
    gcloud compute instance-groups managed delete "$mig" --project="$PROJECT_ID" "${where[@]}" --quiet
done

note "3. instance templates"
capture TEMPLATES gcloud compute instance-templates list --project="$PROJECT_ID" \
  --filter=properties.labels.app=gce-github-runners '--format=value(name)'
for_each TEMPLATES gcloud compute instance-templates delete @@ITEM@@ --project="$PROJECT_ID" --quiet

note "4. the instance deleter and the token proxy"
if_exists gcloud functions describe "$INSTANCE_DELETER_NAME" --gen2 --project="$PROJECT_ID" --region="$REGION" -- \
  gcloud functions delete "$INSTANCE_DELETER_NAME" --gen2 --project="$PROJECT_ID" --region="$REGION" --quiet
if_exists gcloud run services describe "$INSTANCE_DELETER_NAME" --project="$PROJECT_ID" --region="$REGION" -- \
  gcloud run services delete "$INSTANCE_DELETER_NAME" --project="$PROJECT_ID" --region="$REGION" --quiet
if_exists gcloud run services describe "$TOKEN_PROXY_SERVICE" --project="$PROJECT_ID" --region="$REGION" -- \
  gcloud run services delete "$TOKEN_PROXY_SERVICE" --project="$PROJECT_ID" --region="$REGION" --quiet

note "5. the GitHub credential secret and the webhook secret"
for secret in "$GITHUB_SECRET_NAME" "$WEBHOOK_SECRET_NAME"; do
  if_exists gcloud secrets describe "$secret" --project="$PROJECT_ID" -- \
    gcloud secrets delete "$secret" --project="$PROJECT_ID" --quiet
done

note "6. the deleter's, the autoscaler's and the status page's custom roles and their bindings (with or without condition)"
for role_and_member in "$DELETER_ROLE_ID $DELETER_SA_EMAIL" "$AUTOSCALER_ROLE_ID $AUTOSCALER_SA_EMAIL" \
  "$FLEET_VIEWER_ROLE_ID $STATUS_SA_EMAIL"; do
  read -r role_id member <<<"$role_and_member"
  if_exists gcloud iam roles describe "$role_id" --project="$PROJECT_ID" -- \
    gcloud projects remove-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$member" \
    --role="projects/${PROJECT_ID}/roles/${role_id}" --all
  if_exists gcloud iam roles describe "$role_id" --project="$PROJECT_ID" -- \
    gcloud iam roles delete "$role_id" --project="$PROJECT_ID" --quiet
done

note "7. service accounts"
accounts=("$PROXY_SA_EMAIL" "$DELETER_SA_EMAIL")
for level in "${LEVELS[@]}"; do accounts+=("$(runner_sa_email "$level")"); done
accounts+=("$AUTOSCALER_SA_EMAIL" "$SCHEDULER_SA_EMAIL" "$STATUS_SA_EMAIL")
if [[ -n "$BUILD_SA_EMAIL" ]]; then
  for build_role in roles/logging.logWriter roles/run.builder; do
    if_exists gcloud iam service-accounts describe "$BUILD_SA_EMAIL" --project="$PROJECT_ID" -- \
      gcloud projects remove-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$BUILD_SA_EMAIL" \
      --role="$build_role" --all
  done
  accounts+=("$BUILD_SA_EMAIL")
fi
for account in "${accounts[@]}"; do
  if_exists gcloud iam service-accounts describe "$account" --project="$PROJECT_ID" -- \
    gcloud iam service-accounts delete "$account" --project="$PROJECT_ID" --quiet
done

note "8. the autoscaler's alerting policies and log-based metrics"
capture_optional ALERT_POLICIES gcloud monitoring policies list --project="$PROJECT_ID" \
  --filter=userLabels.app=gce-github-runners '--format=value(name)'
for_each ALERT_POLICIES gcloud monitoring policies delete @@ITEM@@ --project="$PROJECT_ID" --quiet
for file in "$DEPLOY_DIR"/monitoring/metrics/*.json; do
  metric="$(basename "$file" .json)"
  if_exists gcloud logging metrics describe "$metric" --project="$PROJECT_ID" -- \
    gcloud logging metrics delete "$metric" --project="$PROJECT_ID" --quiet
done

note "9. images and build bucket"
if_exists gcloud artifacts repositories describe "$AR_REPOSITORY" --project="$PROJECT_ID" --location="$REGION" -- \
  gcloud artifacts repositories delete "$AR_REPOSITORY" --project="$PROJECT_ID" --location="$REGION" --quiet
if_exists gcloud storage buckets describe "gs://$BUILD_BUCKET" --project="$PROJECT_ID" -- \
  gcloud storage rm --recursive "gs://$BUILD_BUCKET" --project="$PROJECT_ID"

if [[ "$images" == true ]]; then
  note "10. baked runner images"
  capture BAKED_IMAGES gcloud compute images list --project="$PROJECT_ID" --no-standard-images \
    "--filter=family=${BAKE_IMAGE_FAMILY:-gh-runner}" '--format=value(name)'
  for_each BAKED_IMAGES gcloud compute images delete @@ITEM@@ --project="$PROJECT_ID" --quiet
fi
