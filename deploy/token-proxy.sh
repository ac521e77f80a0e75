#!/usr/bin/env bash
# Deploys the token proxy to Cloud Run: reachable from the project's VPC networks only, callable only by the
# runner VMs' service accounts, with the GitHub credential mounted from Secret Manager.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/token-proxy.sh [--dry-run] [--env-file FILE] [--help]

Deploys IMAGE (SERVICE=token-proxy) as the Cloud Run service TOKEN_PROXY_SERVICE with
  --ingress=internal, --no-allow-unauthenticated, --service-account=<proxy SA>,
  the credential secret as an environment variable (--set-secrets), AUTH_AUDIENCE = the service URL,
and grants roles/run.invoker on it to the runner VMs' service accounts only. Run
deploy/service-accounts.sh, deploy/github-secret.sh and deploy/build-image.sh first.

Variables (environment or --env-file):
  PROJECT_ID, REGION             required
  ALLOWED_SCOPES                 required: scopes the proxy serves, ';'-separated (literal or match:REGEX)
  GITHUB_APP_ID                  the GitHub App's id (App mode), or
  GITHUB_AUTH=pat                the secret holds a personal access token
  GITHUB_INSTALLATION_ID         optional: the App's installation (found per scope when unset)
  DENIED_SCOPES, GITHUB_API_URL, LOG_LEVEL, TOKEN_REUSE_MIN_REMAINING_SECONDS,
  GITHUB_DEADLINE_SECONDS, GITHUB_WRITE_INTERVAL_MS
                                 optional, passed to the service as they are (see README)
  POLICY_FILE                    optional: a local caller-policy JSON file, passed as POLICY
  TOKEN_PROXY_SERVICE            default gh-token-proxy
  IMAGE                          default REGION-docker.pkg.dev/PROJECT_ID/AR_REPOSITORY/gce-github-runners:IMAGE_TAG
  IMAGE_TAG                      default: the current git commit
  GITHUB_SECRET_NAME             default gh-runner-github-credential
  PROXY_SA_NAME                  default gh-token-proxy
  RUNNER_SA_EMAIL                default gh-runner@PROJECT_ID.iam.gserviceaccount.com
  RUNNER_INVOKER_SA_EMAILS       more runner service accounts that may call the proxy (comma-separated)
  PROXY_MIN_INSTANCES            default 0 (1 avoids cold starts, at a cost)
  PROXY_MAX_INSTANCES            default 3: tokens are cached per instance, so fewer instances share more

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults
require ALLOWED_SCOPES

env=(SERVICE=token-proxy "GOOGLE_CLOUD_PROJECT=$PROJECT_ID" "ALLOWED_SCOPES=$ALLOWED_SCOPES")
case "${GITHUB_AUTH:-app}" in
  app)
    require GITHUB_APP_ID
    secret_env=GITHUB_APP_PRIVATE_KEY
    env+=("GITHUB_APP_ID=$GITHUB_APP_ID")
    if [[ -n "${GITHUB_INSTALLATION_ID:-}" ]]; then env+=("GITHUB_INSTALLATION_ID=$GITHUB_INSTALLATION_ID"); fi
    ;;
  pat) secret_env=GITHUB_TOKEN ;;
  *) die "GITHUB_AUTH must be app or pat" ;;
esac
for name in DENIED_SCOPES GITHUB_API_URL LOG_LEVEL TOKEN_REUSE_MIN_REMAINING_SECONDS GITHUB_DEADLINE_SECONDS \
  GITHUB_WRITE_INTERVAL_MS; do
  if [[ -n "${!name:-}" ]]; then env+=("$name=${!name}"); fi
done
if [[ -n "${POLICY_FILE:-}" ]]; then
  [[ -r "$POLICY_FILE" ]] || die "POLICY_FILE: cannot read $POLICY_FILE"
  # The policy is configuration, not a secret; it travels inline, one line of JSON.
  env+=("POLICY=$(tr -d '\n' <"$POLICY_FILE")")
fi

note "token proxy on Cloud Run: internal ingress, IAM-checked, credential from Secret Manager"
deploy_run_service "$TOKEN_PROXY_SERVICE" "$PROXY_SA_EMAIL" TOKEN_PROXY_URL \
  --min-instances="${PROXY_MIN_INSTANCES:-0}" --max-instances="${PROXY_MAX_INSTANCES:-3}" \
  --set-secrets="${secret_env}=${GITHUB_SECRET_NAME}:latest" -- "${env[@]}"

note "only the runner VMs' service accounts may invoke the token proxy"
grant_run_invoker "$TOKEN_PROXY_SERVICE"

if [[ "$DRY_RUN" != true ]]; then
  printf 'TOKEN_PROXY_URL=%s\n' "$TOKEN_PROXY_URL"
fi
