#!/usr/bin/env bash
# Deploys the token proxy to Cloud Run: reachable from the project's VPC networks only, callable only by the
# runner VMs' service accounts, with a caller policy that separates the trust levels and the GitHub
# credential mounted from Secret Manager at a pinned version.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/token-proxy.sh [--dry-run] [--env-file FILE] [--help]

Deploys IMAGE (SERVICE=token-proxy) as the Cloud Run service TOKEN_PROXY_SERVICE with
  --ingress=internal, --no-allow-unauthenticated, --service-account=<proxy SA>,
  the credential secret at one pinned version as an environment variable (--set-secrets=...:N),
  the caller policy as POLICY, and AUTH_AUDIENCE = the service URL,
and grants roles/run.invoker on it to the runner VMs' service accounts only. Run
deploy/service-accounts.sh, deploy/github-secret.sh and deploy/build-image.sh first.

The proxy always gets a caller policy: POLICY_FILE when set, else the policy deploy/caller-policy.sh prints
for TRUST_LEVELS (one rule per level: its service account, its MIG's instance names, its runner group and
labels, JIT configs only). The proxy is never left open to any verified caller.

Variables (environment or --env-file):
  PROJECT_ID, REGION             required
  ALLOWED_SCOPES                 required: scopes the proxy serves, ';'-separated (literal or match:REGEX)
  GITHUB_APP_ID                  the GitHub App's id (App mode), or
  GITHUB_AUTH=pat                the secret holds a personal access token
  GITHUB_INSTALLATION_ID         optional: the App's installation (found per scope when unset)
  GITHUB_SECRET_VERSION          the secret version to use, a number (deploy/github-secret.sh prints it);
                                 default: the newest enabled version, read now and pinned
  POLICY_FILE                    optional: a caller-policy JSON file used instead of the generated one
  TRUST_LEVELS, RUNNER_SA_NAME_<LEVEL>, RUNNER_GROUP_<LEVEL>, RUNNER_LABELS_<LEVEL>, RUNNER_MIG_PREFIX
                                 what the generated policy is made of (see deploy/caller-policy.sh --help)
  DENIED_SCOPES, GITHUB_API_URL, LOG_LEVEL, TOKEN_REUSE_MIN_REMAINING_SECONDS,
  GITHUB_DEADLINE_SECONDS        optional, passed to the service as they are (see README)
  GITHUB_POINTS_PROXY, GITHUB_POINTS_AUTOSCALER, GITHUB_POINTS_READS
                                 the split of GitHub's 900 points a minute (default 600, 150, 150); the
                                 proxy's GITHUB_WRITE_INTERVAL_MS follows from its share and
                                 PROXY_MAX_INSTANCES (deploy/lib.sh, github_write_budget)
  GITHUB_WRITE_INTERVAL_MS       optional: a longer spacing than its share allows
  TOKEN_PROXY_SERVICE            default gh-token-proxy
  IMAGE                          default REGION-docker.pkg.dev/PROJECT_ID/AR_REPOSITORY/gce-github-runners:IMAGE_TAG
  IMAGE_TAG                      default: the current git commit
  GITHUB_SECRET_NAME             default gh-runner-github-credential
  PROXY_SA_NAME                  default gh-token-proxy
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
for name in DENIED_SCOPES GITHUB_API_URL LOG_LEVEL TOKEN_REUSE_MIN_REMAINING_SECONDS GITHUB_DEADLINE_SECONDS; do
  if [[ -n "${!name:-}" ]]; then env+=("$name=${!name}"); fi
done
# The proxy's share of the installation's write budget, spread over its instances (deploy/lib.sh).
github_write_budget
env+=("GITHUB_WRITE_INTERVAL_MS=$PROXY_WRITE_INTERVAL_MS")
note "GitHub writes: ${GITHUB_POINTS_PROXY:-600} points a minute for ${PROXY_MAX_INSTANCES:-3} instances, each spacing its writes $PROXY_WRITE_INTERVAL_MS ms apart"


# The caller policy: configuration, not a secret; it travels inline, one line of JSON.
if [[ -n "${POLICY_FILE:-}" ]]; then
  [[ -r "$POLICY_FILE" ]] || die "POLICY_FILE: cannot read $POLICY_FILE"
  policy="$(tr -d '\n' <"$POLICY_FILE")"
  [[ "$policy" == *'"rules"'* ]] || die "POLICY_FILE: $POLICY_FILE is not a caller policy (no \"rules\")"
  policy_from="$POLICY_FILE"
else
  policy="$(caller_policy_json)"
  policy_from="the trust levels (${LEVELS[*]}): deploy/caller-policy.sh prints it"
fi
env+=("POLICY=$policy")

# The secret version the revision pins. Cloud Run resolves a secret passed as an environment variable when
# each instance starts, so `latest` would let a new version reach running revisions unannounced; Google
# recommends pinning (https://cloud.google.com/run/docs/configuring/services/secrets).
if [[ -z "${GITHUB_SECRET_VERSION:-}" ]]; then
  capture GITHUB_SECRET_VERSION gcloud secrets versions list "$GITHUB_SECRET_NAME" --project="$PROJECT_ID" \
    --filter=state=ENABLED --sort-by=~createTime --limit=1 '--format=value(name.basename())'
fi
if ! is_placeholder "$GITHUB_SECRET_VERSION"; then
  [[ -n "$GITHUB_SECRET_VERSION" ]] || die "$GITHUB_SECRET_NAME has no enabled version: run deploy/github-secret.sh"
  [[ "$GITHUB_SECRET_VERSION" =~ ^[1-9][0-9]*$ ]] ||
    die "GITHUB_SECRET_VERSION '$GITHUB_SECRET_VERSION' is not a version number (latest is not pinned)"
fi

note "token proxy on Cloud Run: internal ingress, IAM-checked, caller policy from $policy_from"
note "GitHub credential: secret $GITHUB_SECRET_NAME, pinned version"
deploy_run_service "$TOKEN_PROXY_SERVICE" "$PROXY_SA_EMAIL" TOKEN_PROXY_URL \
  --min-instances="${PROXY_MIN_INSTANCES:-0}" --max-instances="${PROXY_MAX_INSTANCES:-3}" \
  --set-secrets="${secret_env}=${GITHUB_SECRET_NAME}:${GITHUB_SECRET_VERSION}" -- "${env[@]}"

note "only the runner VMs' service accounts may invoke the token proxy"
grant_run_invoker "$TOKEN_PROXY_SERVICE"

if [[ "$DRY_RUN" != true ]]; then
  printf 'TOKEN_PROXY_URL=%s\n' "$TOKEN_PROXY_URL"
fi
