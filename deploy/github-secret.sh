#!/usr/bin/env bash
# Stores the token proxy's GitHub credential (a GitHub App private key, or a PAT) in Secret Manager and lets
# the proxy's service account, and no other, read it. The credential goes to gcloud as a file path
# (--data-file): it never appears on a command line, in this script's output or in its dry run.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/github-secret.sh [--dry-run] [--env-file FILE] [--help]

Creates the Secret Manager secret GITHUB_SECRET_NAME when absent, adds the credential file as its newest
version, and grants roles/secretmanager.secretAccessor on that secret (not the project) to the token
proxy's service account only. Run deploy/service-accounts.sh first.

Variables (environment or --env-file):
  PROJECT_ID, REGION            required
  GITHUB_APP_PRIVATE_KEY_FILE   path of the GitHub App's private key (.pem), or
  GITHUB_TOKEN_FILE             path of a file holding a personal access token (PAT mode)
  GITHUB_SECRET_NAME            default gh-runner-github-credential
  SECRET_LOCATIONS              comma-separated regions for user-managed replication
                                (default: automatic replication)
  PROXY_SA_NAME                 default gh-token-proxy

Every run adds a new secret version; the proxy reads "latest" when a revision starts, so redeploy it
(deploy/token-proxy.sh) after rotating the key.

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults

key_file="${GITHUB_APP_PRIVATE_KEY_FILE:-}"
pat_file="${GITHUB_TOKEN_FILE:-}"
if [[ -n "$key_file" && -n "$pat_file" ]]; then
  die "set GITHUB_APP_PRIVATE_KEY_FILE or GITHUB_TOKEN_FILE, not both"
elif [[ -n "$key_file" ]]; then
  credential_file="$key_file"
  [[ -r "$credential_file" ]] || die "GITHUB_APP_PRIVATE_KEY_FILE: cannot read $credential_file"
  # Shape checks only; the content is never printed.
  grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$credential_file" ||
    die "GITHUB_APP_PRIVATE_KEY_FILE: $credential_file is not a PEM private key"
elif [[ -n "$pat_file" ]]; then
  credential_file="$pat_file"
  [[ -r "$credential_file" ]] || die "GITHUB_TOKEN_FILE: cannot read $credential_file"
  [[ -s "$credential_file" ]] || die "GITHUB_TOKEN_FILE: $credential_file is empty"
else
  die "set GITHUB_APP_PRIVATE_KEY_FILE (GitHub App) or GITHUB_TOKEN_FILE (PAT) (see --help)"
fi
if [[ -n "$(find "$credential_file" -perm /077 2>/dev/null)" ]]; then
  printf 'warning: %s is readable by other users; chmod 600 it\n' "$credential_file" >&2
fi

if [[ -n "${SECRET_LOCATIONS:-}" ]]; then
  replication=(--replication-policy=user-managed --locations="$SECRET_LOCATIONS")
else
  replication=(--replication-policy=automatic)
fi

note "the GitHub credential, readable by the token proxy's service account only"
ensure gcloud secrets describe "$GITHUB_SECRET_NAME" --project="$PROJECT_ID" -- \
  gcloud secrets create "$GITHUB_SECRET_NAME" --project="$PROJECT_ID" "${replication[@]}" \
  --labels=app=gce-github-runners
run gcloud secrets versions add "$GITHUB_SECRET_NAME" --project="$PROJECT_ID" --data-file="$credential_file"
run gcloud secrets add-iam-policy-binding "$GITHUB_SECRET_NAME" --project="$PROJECT_ID" \
  --member="serviceAccount:$PROXY_SA_EMAIL" --role=roles/secretmanager.secretAccessor --condition=None
