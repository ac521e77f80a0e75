#!/usr/bin/env bash
# Deploys the fleet status page to Cloud Run behind Identity-Aware Proxy: the people and Google Workspace
# domains in STATUS_VIEWERS sign in with their Google accounts; the service holds no GitHub key and reads
# the autoscaler's GET /fleet with its own identity token, and Compute Engine read-only.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/fleet-status.sh [--dry-run] [--env-file FILE] [--help]

Deploys IMAGE (SERVICE=fleet-status) as the Cloud Run service FLEET_STATUS_SERVICE with
  --iap (Identity-Aware Proxy enabled on the service), --no-allow-unauthenticated, --ingress=all,
  --service-account=<its own account>, which may only read MIGs and instance templates
  (custom role FLEET_VIEWER_ROLE_ID: compute.instanceGroupManagers.get/list, compute.instanceTemplates.get/list);
grants roles/run.invoker on it to IAP's service agent only, roles/iap.httpsResourceAccessor to each
STATUS_VIEWERS entry, and roles/run.invoker on the autoscaler to the status service's account. The page
checks IAP's signed header itself as well (IAP_AUDIENCE, STATUS_VIEWERS).

Then add the status service's account to the autoscaler's FLEET_VIEWERS (it prints the email), or GET /fleet
answers it 403 and the page says so.

Variables (environment or --env-file):
  PROJECT_ID, REGION             required
  STATUS_VIEWERS                 required: who may see the page, comma-separated: emails (alice@example.com)
                                 and Google Workspace domains (domain:example.com, matched on the account's
                                 hosted domain, never on an email's suffix)
  AUTOSCALER_URL                 the autoscaler's URL; default: read from the Cloud Run service AUTOSCALER_SERVICE
  AUTOSCALER_AUDIENCE            the autoscaler's AUTH_AUDIENCE; default AUTOSCALER_URL
  AUTOSCALER_SERVICE             default gh-autoscaler
  FLEET_STATUS_SERVICE           default gh-fleet-status
  FLEET_STATUS_SA_NAME           default gh-fleet-status
  FLEET_VIEWER_ROLE_ID           default ghRunnerFleetViewer
  LOG_LEVEL, GITHUB_API_URL, RUNNER_RELEASES_CACHE_MINUTES, SNAPSHOT_TTL_SECONDS
                                 optional, passed to the service as they are (see docs/fleet-status.md)
  IMAGE, IMAGE_TAG               as for deploy/token-proxy.sh

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed

IAP on Cloud Run: https://cloud.google.com/iap/docs/enabling-cloud-run
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults
require STATUS_VIEWERS
# FLEET_STATUS_SERVICE, FLEET_STATUS_SA_NAME, FLEET_VIEWER_ROLE_ID and STATUS_SA_EMAIL come from lib.sh, as
# all.sh and teardown.sh read them.

# STATUS_VIEWERS → IAP members; the service parses the same list (and refuses to start on a bad entry).
members=()
IFS=',' read -r -a entries <<<"$STATUS_VIEWERS"
for entry in "${entries[@]}"; do
  entry="${entry//[[:space:]]/}"
  [[ -n "$entry" ]] || continue
  entry="${entry,,}"
  if [[ "$entry" =~ ^domain:([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}$ ]]; then
    members+=("$entry")
  elif [[ "$entry" =~ ^(user:)?[^@:[:space:]]+@[a-z0-9.-]+\.[a-z]{2,}$ ]]; then
    members+=("user:${entry#user:}")
  else
    die "STATUS_VIEWERS: '$entry' is neither an email nor domain:NAME"
  fi
done
((${#members[@]} > 0)) || die "STATUS_VIEWERS lists nobody"

note "the status service's own account: reads MIGs and instance templates, nothing else"
ensure gcloud iam service-accounts describe "$STATUS_SA_EMAIL" --project="$PROJECT_ID" -- \
  gcloud iam service-accounts create "$FLEET_STATUS_SA_NAME" --project="$PROJECT_ID" \
  --display-name="GitHub runners: fleet status page"
create_or_update gcloud iam roles describe "$FLEET_VIEWER_ROLE_ID" --project="$PROJECT_ID" -- \
  gcloud iam roles update "$FLEET_VIEWER_ROLE_ID" --project="$PROJECT_ID" \
  --permissions=compute.instanceGroupManagers.get,compute.instanceGroupManagers.list,compute.instanceTemplates.get,compute.instanceTemplates.list -- \
  gcloud iam roles create "$FLEET_VIEWER_ROLE_ID" --project="$PROJECT_ID" --title="GitHub runners fleet viewer" \
  --permissions=compute.instanceGroupManagers.get,compute.instanceGroupManagers.list,compute.instanceTemplates.get,compute.instanceTemplates.list
run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$STATUS_SA_EMAIL" \
  --role="projects/$PROJECT_ID/roles/$FLEET_VIEWER_ROLE_ID" --condition=None

capture PROJECT_NUMBER gcloud projects describe "$PROJECT_ID" '--format=value(projectNumber)'
if [[ -z "${AUTOSCALER_URL:-}" ]]; then
  capture AUTOSCALER_URL gcloud run services describe "$AUTOSCALER_SERVICE" --project="$PROJECT_ID" \
    --region="$REGION" '--format=value(status.url)'
fi
: "${AUTOSCALER_AUDIENCE:=$AUTOSCALER_URL}"

# The audience IAP puts in its signed header for a Cloud Run service
# (https://cloud.google.com/iap/docs/signed-headers-howto#verifying_the_jwt_payload).
env=(SERVICE=fleet-status "GOOGLE_CLOUD_PROJECT=$PROJECT_ID"
  "IAP_AUDIENCE=/projects/${PROJECT_NUMBER}/locations/${REGION}/services/${FLEET_STATUS_SERVICE}"
  "STATUS_VIEWERS=$STATUS_VIEWERS" "AUTOSCALER_URL=$AUTOSCALER_URL" "AUTOSCALER_AUDIENCE=$AUTOSCALER_AUDIENCE")
for name in LOG_LEVEL GITHUB_API_URL RUNNER_RELEASES_CACHE_MINUTES SNAPSHOT_TTL_SECONDS; do
  if [[ -n "${!name:-}" ]]; then env+=("$name=${!name}"); fi
done

note "fleet status on Cloud Run behind IAP: reachable from the internet, only through IAP"
run gcloud beta run deploy "$FLEET_STATUS_SERVICE" --project="$PROJECT_ID" --region="$REGION" --image="$IMAGE" \
  --service-account="$STATUS_SA_EMAIL" --ingress=all --no-allow-unauthenticated --iap \
  --min-instances=0 --max-instances=2 --cpu-boost "$(env_vars_flag --set-env-vars "${env[@]}")"

note "IAP calls the service with its own identity (X-Serverless-Authorization); nobody else may invoke it"
run gcloud run services add-iam-policy-binding "$FLEET_STATUS_SERVICE" --project="$PROJECT_ID" \
  --region="$REGION" "--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-iap.iam.gserviceaccount.com" \
  --role=roles/run.invoker --condition=None

note "the people and domains of STATUS_VIEWERS may pass IAP"
for member in "${members[@]}"; do
  run gcloud beta iap web add-iam-policy-binding --project="$PROJECT_ID" --resource-type=cloud-run \
    --service="$FLEET_STATUS_SERVICE" --region="$REGION" --member="$member" \
    --role=roles/iap.httpsResourceAccessor --condition=None
done

note "the status service may call the autoscaler's GET /fleet (the autoscaler also checks FLEET_VIEWERS)"
run gcloud run services add-iam-policy-binding "$AUTOSCALER_SERVICE" --project="$PROJECT_ID" \
  --region="$REGION" --member="serviceAccount:$STATUS_SA_EMAIL" --role=roles/run.invoker --condition=None

note "add $STATUS_SA_EMAIL to the autoscaler's FLEET_VIEWERS"
if [[ "$DRY_RUN" != true ]]; then
  printf 'FLEET_STATUS_SA_EMAIL=%s\n' "$STATUS_SA_EMAIL"
fi
