#!/usr/bin/env bash
# Deploys the autoscaler service (services/autoscaler) to Cloud Run, with the Cloud Scheduler job that calls
# its reconciliation every minute. Unlike the token proxy and the instance deleter, it is reachable from the
# internet: GitHub delivers the App's webhook to it and cannot present a Google identity. It verifies every
# request itself and serves nothing else (README, "Autoscaler").
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/autoscaler.sh [--dry-run] [--env-file FILE] [--help]

  1. Creates or updates the custom role AUTOSCALER_ROLE_ID with exactly the permissions listed in
     deploy/autoscaler-role-permissions.txt (read the MIGs, createInstances, deleteInstances, wait for the
     operations) and binds it to the autoscaler's service account on the project, with an IAM condition:
     on instance group managers, only names starting with RUNNER_MIG_PREFIX
     (AUTOSCALER_ROLE_CONDITION=none binds it without one).
  2. Lets the autoscaler's service account read the two secrets it mounts, and no other: the GitHub App's
     key (GITHUB_SECRET_NAME, deploy/github-secret.sh) and its webhook secret (WEBHOOK_SECRET_NAME,
     deploy/webhook-secret.sh).
  3. Deploys IMAGE with SERVICE=autoscaler as the Cloud Run service AUTOSCALER_SERVICE:
       --ingress=all --allow-unauthenticated   GitHub calls POST /webhook from the internet, without a
                                 Google identity; the service checks the signature of every delivery, the
                                 identity token on /reconcile and /fleet, and serves nothing else;
       --min-instances=1 --max-instances=1     the cap on each pool (maxRunners) and what the service
                                 remembers hold within one process only;
       --no-cpu-throttling       CPU outside requests too: a Compute call that outlives the request that
                                 started it (a webhook answered 503 at its deadline) still holds the pool's
                                 lock and must finish, not wait for the next request;
       --concurrency=1000        a burst of deliveries is answered by the one instance;
       the two secrets at pinned versions, AUTH_AUDIENCE = the service URL, RECONCILE_CALLERS = the Cloud
       Scheduler job's service account, FLEET_VIEWERS, and POOLS: one pool per trust level
       (deploy/autoscaler-pools.sh prints them), or POOLS_FILE.
  4. Creates or updates the Cloud Scheduler job RECONCILE_JOB_NAME: POST <service URL>/reconcile every
     minute, with an OIDC identity token of the scheduler's service account whose audience is set to the
     service URL (not the default, the full /reconcile URL). That account holds no role: the service is
     public, so Cloud Run checks no invoker; the service checks the token and the account itself.
Then set the GitHub App's webhook to <service URL>/webhook (docs/deploy.md, "The autoscaler").

Variables (environment or --env-file):
  PROJECT_ID, REGION             required
  GITHUB_APP_ID                  required: the App whose webhook this is (GITHUB_AUTH=pat cannot be used)
  RUNNER_SCOPE                   required: the org or owner/repo where the VMs register
  GITHUB_SECRET_VERSION          the App key's secret version (default: the newest enabled one, pinned now)
  GITHUB_WEBHOOK_SECRET_VERSION  the webhook secret's version (deploy/webhook-secret.sh prints it; default:
                                 the newest enabled one, pinned now)
  GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION
                                 optional, during a rotation: the previous version, also accepted
  POOLS_FILE                     optional: a pools JSON file used instead of the generated pools
  POOL_SCOPES, POOL_SCOPES_<LEVEL>
                                 orgs and owner/repo (or match:REGEX) whose jobs each pool serves,
                                 ';'-separated; default ALLOWED_SCOPES
  POOL_MAX_RUNNERS, POOL_MAX_RUNNERS_<LEVEL>
                                 the most VMs of a pool at once; default RUNNER_MIG_MAX, else 10
  TRUST_LEVELS, RUNNER_GROUP_<LEVEL>, RUNNER_LABELS_<LEVEL>, RUNNER_MIG_PREFIX, RUNNER_ZONE
                                 what the generated pools are made of
  FLEET_VIEWERS                  optional: emails that may read GET /fleet (comma-separated)
  GITHUB_INSTALLATION_ID, GITHUB_API_URL, LOG_LEVEL, BATCH_WINDOW_MS, STUCK_CREATING_SECONDS,
  MAX_REDELIVERIES_PER_RUN, RUNNER_RELEASES_API_URL, RUNNER_RELEASES_CACHE_MINUTES
                                 optional, passed to the service as they are (see README)
  GITHUB_POINTS_AUTOSCALER       its share of GitHub's 900 points a minute (default 150; with
                                 GITHUB_POINTS_PROXY and GITHUB_POINTS_READS at most 900): its writes are
                                 spaced ceil(300000 / share) ms apart (deploy/lib.sh, github_write_budget)
  AUTOSCALER_PUBLIC_ACCESS       allow-unauthenticated (default) or no-invoker-iam-check, for
                                 organizations whose policy refuses allUsers (domain restricted sharing)
  AUTOSCALER_ROLE_CONDITION      mig-prefix (default) or none
  AUTOSCALER_MEMORY              default 1Gi         AUTOSCALER_TIMEOUT_SECONDS  default 300 (also the
                                                     scheduler job's attempt deadline)
  RECONCILE_SCHEDULE             default "* * * * *" (every minute, UTC)
  AUTOSCALER_SERVICE             default gh-autoscaler
  AUTOSCALER_SA_NAME             default gh-autoscaler
  SCHEDULER_SA_NAME              default gh-autoscaler-scheduler
  AUTOSCALER_ROLE_ID             default ghRunnerAutoscaler
  RECONCILE_JOB_NAME             default gh-autoscaler-reconcile
  GITHUB_SECRET_NAME             default gh-runner-github-credential
  WEBHOOK_SECRET_NAME            default gh-runner-webhook-secret
  IMAGE, IMAGE_TAG               see deploy/token-proxy.sh --help

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults
[[ "$RUNNER_SCALING" == autoscaler-service ]] ||
  die "RUNNER_SCALING=$RUNNER_SCALING: the MIGs are sized by a Compute autoscaler, not by this service"
[[ "${GITHUB_AUTH:-app}" == app ]] ||
  die "the autoscaler needs a GitHub App (GITHUB_APP_ID and its key): webhooks and their delivery log" \
    "belong to an App; with GITHUB_AUTH=pat, set RUNNER_SCALING=cpu"
require GITHUB_APP_ID

case "${AUTOSCALER_PUBLIC_ACCESS:-allow-unauthenticated}" in
  allow-unauthenticated) access=public ;;
  no-invoker-iam-check) access=public-no-invoker-check ;;
  *) die "AUTOSCALER_PUBLIC_ACCESS must be allow-unauthenticated or no-invoker-iam-check" ;;
esac
condition_kind="${AUTOSCALER_ROLE_CONDITION:-mig-prefix}"
[[ "$condition_kind" == mig-prefix || "$condition_kind" == none ]] ||
  die "AUTOSCALER_ROLE_CONDITION must be mig-prefix or none"
timeout="${AUTOSCALER_TIMEOUT_SECONDS:-300}"
# Cloud Scheduler's attempt deadline for HTTP targets is 15 s to 30 min
# (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs).
if ! [[ "$timeout" =~ ^[1-9][0-9]*$ ]] || ((timeout < 15 || timeout > 1800)); then
  die "AUTOSCALER_TIMEOUT_SECONDS must be a whole number from 15 to 1800"
fi
schedule="${RECONCILE_SCHEDULE:-* * * * *}"
[[ "$schedule" =~ ^[-0-9*/,]+( [-0-9*/,A-Za-z]+){4}$ ]] ||
  die "RECONCILE_SCHEDULE '$schedule' is not a five-field cron schedule"

# Who may call what. RECONCILE_CALLERS is the scheduler's account only; FLEET_VIEWERS whoever is named.
env=(SERVICE=autoscaler "GOOGLE_CLOUD_PROJECT=$PROJECT_ID" "GITHUB_APP_ID=$GITHUB_APP_ID"
  "RECONCILE_CALLERS=$SCHEDULER_SA_EMAIL")
if [[ -n "${FLEET_VIEWERS:-}" ]]; then
  for viewer in ${FLEET_VIEWERS//,/ }; do
    [[ "$viewer" =~ ^[^[:space:]@,]+@[^[:space:]@,]+$ ]] || die "FLEET_VIEWERS: '$viewer' is not an email"
  done
  env+=("FLEET_VIEWERS=$FLEET_VIEWERS")
fi
for name in GITHUB_INSTALLATION_ID GITHUB_API_URL LOG_LEVEL BATCH_WINDOW_MS STUCK_CREATING_SECONDS \
  MAX_REDELIVERIES_PER_RUN RUNNER_RELEASES_API_URL RUNNER_RELEASES_CACHE_MINUTES; do
  if [[ -n "${!name:-}" ]]; then env+=("$name=${!name}"); fi
done
# Its share of the installation's write budget (deploy/lib.sh): one instance, writes spaced to fit it.
github_write_budget
env+=("GITHUB_WRITE_INTERVAL_MS=$AUTOSCALER_WRITE_INTERVAL_MS")

# The pools: configuration, not a secret; inline, one line of JSON. (The service's own POOLS_FILE would have
# to name a file inside the container; a local POOLS_FILE is read here instead, as POLICY_FILE is.)
if [[ -n "${POOLS_FILE:-}" ]]; then
  [[ -r "$POOLS_FILE" ]] || die "POOLS_FILE: cannot read $POOLS_FILE"
  pools="$(tr -d '\n' <"$POOLS_FILE")"
  [[ "$pools" == *'"pools"'* ]] || die "POOLS_FILE: $POOLS_FILE is not a pools document (no \"pools\")"
  pools_from="$POOLS_FILE"
else
  pools="$(autoscaler_pools_json)"
  pools_from="the trust levels (${LEVELS[*]}): deploy/autoscaler-pools.sh prints them"
fi
env+=("POOLS=$pools")

# pin_version VAR SECRET SCRIPT: VAR as given, else the secret's newest enabled version, read now. Cloud Run
# resolves a secret passed as an environment variable when each instance starts, so `latest` would let a
# new version reach a running revision unannounced (https://cloud.google.com/run/docs/configuring/services/secrets).
pin_version() {
  local var="$1" secret="$2" script="$3"
  if [[ -z "${!var:-}" ]]; then
    capture "$var" gcloud secrets versions list "$secret" --project="$PROJECT_ID" --filter=state=ENABLED \
      --sort-by=~createTime --limit=1 '--format=value(name.basename())'
  fi
  if ! is_placeholder "${!var}"; then
    [[ -n "${!var}" ]] || die "$secret has no enabled version: run $script"
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var '${!var}' is not a version number (latest is not pinned)"
  fi
}
pin_version GITHUB_SECRET_VERSION "$GITHUB_SECRET_NAME" deploy/github-secret.sh
pin_version GITHUB_WEBHOOK_SECRET_VERSION "$WEBHOOK_SECRET_NAME" deploy/webhook-secret.sh
secrets="GITHUB_APP_PRIVATE_KEY=${GITHUB_SECRET_NAME}:${GITHUB_SECRET_VERSION}"
secrets+=",GITHUB_WEBHOOK_SECRET=${WEBHOOK_SECRET_NAME}:${GITHUB_WEBHOOK_SECRET_VERSION}"
if [[ -n "${GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION:-}" ]]; then
  [[ "$GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION" =~ ^[1-9][0-9]*$ ]] ||
    die "GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION '$GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION' is not a version number"
  [[ "$GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION" != "$GITHUB_WEBHOOK_SECRET_VERSION" ]] ||
    die "GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION is the current version; name the one before it"
  secrets+=",GITHUB_WEBHOOK_SECRET_PREVIOUS=${WEBHOOK_SECRET_NAME}:${GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION}"
fi

permissions="$(role_permissions "$DEPLOY_DIR/autoscaler-role-permissions.txt")"
role="projects/${PROJECT_ID}/roles/${AUTOSCALER_ROLE_ID}"
role_flags=(--project="$PROJECT_ID" --title="GitHub runner autoscaler"
  "--description=Exactly what the autoscaler service calls: see deploy/autoscaler-role-permissions.txt"
  --stage=GA --permissions="$permissions")
note "custom role $AUTOSCALER_ROLE_ID: exactly the permissions of deploy/autoscaler-role-permissions.txt"
create_or_update gcloud iam roles describe "$AUTOSCALER_ROLE_ID" --project="$PROJECT_ID" -- \
  gcloud iam roles update "$AUTOSCALER_ROLE_ID" "${role_flags[@]}" -- \
  gcloud iam roles create "$AUTOSCALER_ROLE_ID" "${role_flags[@]}"
if [[ "$condition_kind" == mig-prefix ]]; then
  note "bound on the project, but for MIGs only those named ${RUNNER_MIG_PREFIX}*"
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$AUTOSCALER_SA_EMAIL" \
    --role="$role" "$(env_vars_flag --condition "expression=$(autoscaler_role_condition_expression)" \
      "title=gce-github-runners MIGs only" \
      "description=Instance group managers named ${RUNNER_MIG_PREFIX}* (deploy/autoscaler.sh)")"
  remove_unconditional_binding "$role" "serviceAccount:$AUTOSCALER_SA_EMAIL"
else
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$AUTOSCALER_SA_EMAIL" \
    --role="$role" --condition=None
fi

note "the autoscaler's service account may read the App key and the webhook secret, nothing else"
for secret in "$GITHUB_SECRET_NAME" "$WEBHOOK_SECRET_NAME"; do
  run gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT_ID" \
    --member="serviceAccount:$AUTOSCALER_SA_EMAIL" --role=roles/secretmanager.secretAccessor --condition=None
done

note "autoscaler on Cloud Run: public (GitHub's webhook), one instance, CPU always allocated; pools from $pools_from"
deploy_run_service_with_access "$access" "$AUTOSCALER_SERVICE" "$AUTOSCALER_SA_EMAIL" AUTOSCALER_URL \
  --min-instances=1 --max-instances=1 --no-cpu-throttling --concurrency=1000 --cpu=1 \
  --memory="${AUTOSCALER_MEMORY:-1Gi}" --timeout="$timeout" --set-secrets="$secrets" -- "${env[@]}"

# Cloud Scheduler signs the token as the job's service account through its own service agent, which holds
# roles/cloudscheduler.serviceAgent once the API is enabled (https://cloud.google.com/scheduler/docs/http-target-auth).
# The audience is set explicitly: by default it would be the job's full URI, .../reconcile, which the service
# refuses (its AUTH_AUDIENCE is the service URL). No retries: the next minute's run is the retry.
note "Cloud Scheduler: POST /reconcile on schedule '$schedule', identity token of $SCHEDULER_SA_NAME for the service URL"
job_flags=(--project="$PROJECT_ID" --location="$REGION" --schedule="$schedule" --time-zone=Etc/UTC
  --uri="${AUTOSCALER_URL}/reconcile" --http-method=POST --oidc-service-account-email="$SCHEDULER_SA_EMAIL"
  --oidc-token-audience="$AUTOSCALER_URL" --attempt-deadline="${timeout}s" --max-retry-attempts=0
  "--description=Reconciles the runner autoscaler (deploy/autoscaler.sh)")
create_or_update gcloud scheduler jobs describe "$RECONCILE_JOB_NAME" --project="$PROJECT_ID" --location="$REGION" -- \
  gcloud scheduler jobs update http "$RECONCILE_JOB_NAME" "${job_flags[@]}" -- \
  gcloud scheduler jobs create http "$RECONCILE_JOB_NAME" "${job_flags[@]}"

if [[ "$DRY_RUN" == true ]]; then
  note "then set the GitHub App's webhook URL to \${AUTOSCALER_URL}/webhook (docs/deploy.md, \"The autoscaler\")"
else
  printf '== the GitHub App'"'"'s webhook URL: %s/webhook (docs/deploy.md, "The autoscaler")\n' "$AUTOSCALER_URL" >&2
  printf 'AUTOSCALER_URL=%s\n' "$AUTOSCALER_URL"
fi
