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

Creates the Secret Manager secret GITHUB_SECRET_NAME when absent, adds the credential file as a new
version, grants roles/secretmanager.secretAccessor on that secret (not the project) to the token proxy's
service account only, and prints the new version's number (GITHUB_SECRET_VERSION=N), which
deploy/token-proxy.sh pins. Run deploy/service-accounts.sh first.

Variables (environment or --env-file):
  PROJECT_ID, REGION            required
  GITHUB_APP_PRIVATE_KEY_FILE   path of the GitHub App's private key (.pem), or
  GITHUB_TOKEN_FILE             path of a file holding a personal access token (PAT mode)
  GITHUB_SECRET_NAME            default gh-runner-github-credential
  SECRET_LOCATIONS              comma-separated regions for user-managed replication
                                (default: automatic replication)
  PROXY_SA_NAME                 default gh-token-proxy

Every run adds a new secret version. The proxy uses the version its revision names, never "latest" (which
would be resolved again whenever an instance starts): run deploy/token-proxy.sh with the printed
GITHUB_SECRET_VERSION to switch (docs/deploy.md, "Key rotation").

  --dry-run  print the gcloud commands instead of running them; gcloud and the credential file are not
             needed (the file is not read in a dry run)
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults

key_file="${GITHUB_APP_PRIVATE_KEY_FILE:-}"
pat_file="${GITHUB_TOKEN_FILE:-}"
# check_credential_file VAR KIND: the file must be readable (a dry run lets a missing file pass, as it reads
# nothing) and have the credential's shape. Only its shape is checked; the content is never printed.
check_credential_file() {
  local var="$1" kind="$2" file="${!1}"
  if [[ "$DRY_RUN" == true && ! -e "$file" ]]; then
    note "$var ($file) does not exist here; a dry run does not need it"
    return
  fi
  [[ -r "$file" ]] || die "$var: cannot read $file"
  if [[ "$kind" == key ]]; then
    grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$file" || die "$var: $file is not a PEM private key"
  else
    [[ -s "$file" ]] || die "$var: $file is empty"
  fi
  if [[ -n "$(find "$file" -perm /077 2>/dev/null)" ]]; then
    warn "$file is readable by other users; chmod 600 it"
  fi
}
if [[ -n "$key_file" && -n "$pat_file" ]]; then
  die "set GITHUB_APP_PRIVATE_KEY_FILE or GITHUB_TOKEN_FILE, not both"
elif [[ -n "$key_file" ]]; then
  credential_file="$key_file"
  check_credential_file GITHUB_APP_PRIVATE_KEY_FILE key
elif [[ -n "$pat_file" ]]; then
  credential_file="$pat_file"
  check_credential_file GITHUB_TOKEN_FILE token
elif [[ "$DRY_RUN" == true ]]; then
  # Printed as a variable for the reader to set.
  if [[ "${GITHUB_AUTH:-app}" == pat ]]; then
    credential_file=@@GITHUB_TOKEN_FILE@@
  else
    credential_file=@@GITHUB_APP_PRIVATE_KEY_FILE@@
  fi
  note "no credential file set: the path below is a variable to fill in"
else
  die "set GITHUB_APP_PRIVATE_KEY_FILE (GitHub App) or GITHUB_TOKEN_FILE (PAT) (see --help)"
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
# The new version's number (the last part of its name), which deploy/token-proxy.sh pins.
capture GITHUB_SECRET_VERSION gcloud secrets versions add "$GITHUB_SECRET_NAME" --project="$PROJECT_ID" \
  --data-file="$credential_file" '--format=value(name.basename())'
run gcloud secrets add-iam-policy-binding "$GITHUB_SECRET_NAME" --project="$PROJECT_ID" \
  --member="serviceAccount:$PROXY_SA_EMAIL" --role=roles/secretmanager.secretAccessor --condition=None

if [[ "$DRY_RUN" != true ]]; then
  [[ "$GITHUB_SECRET_VERSION" =~ ^[1-9][0-9]*$ ]] ||
    die "gcloud secrets versions add did not print a version number ('$GITHUB_SECRET_VERSION')"
  printf 'GITHUB_SECRET_VERSION=%s\n' "$GITHUB_SECRET_VERSION"
fi
