#!/usr/bin/env bash
# Stores the GitHub App's webhook secret in Secret Manager for the autoscaler service, which checks the
# signature of every delivery with it. The secret goes to gcloud as a file path (--data-file): it never
# appears on a command line, in this script's output or in its dry run.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/webhook-secret.sh [--dry-run] [--env-file FILE] [--help]

Creates the Secret Manager secret WEBHOOK_SECRET_NAME when absent, adds the file GITHUB_WEBHOOK_SECRET_FILE
as a new version, and prints the new version's number (GITHUB_WEBHOOK_SECRET_VERSION=N), which
deploy/autoscaler.sh pins. deploy/autoscaler.sh grants the autoscaler's service account, and no other, the
right to read it. Enter the same secret in the GitHub App's settings (Webhook secret): GitHub signs every
delivery with it, and the autoscaler answers 401 to any delivery it cannot verify.

The file must hold the secret alone: at least 16 printable characters, no spaces and no newline (GitHub
signs with exactly what its field holds, and Secret Manager stores every byte of the file). Make one with:
  openssl rand -hex 32 | tr -d '\n' > ~/webhook-secret.txt && chmod 600 ~/webhook-secret.txt

Variables (environment or --env-file):
  PROJECT_ID, REGION            required
  GITHUB_WEBHOOK_SECRET_FILE    path of the file holding the webhook secret
  WEBHOOK_SECRET_NAME           default gh-runner-webhook-secret
  SECRET_LOCATIONS              comma-separated regions for user-managed replication
                                (default: automatic replication)

Every run adds a new secret version. To rotate the secret without losing deliveries, see docs/deploy.md
("The autoscaler", "Rotating the webhook secret").

  --dry-run  print the gcloud commands instead of running them; gcloud and the file are not needed (the
             file is not read in a dry run)
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults

secret_file="${GITHUB_WEBHOOK_SECRET_FILE:-}"
if [[ -z "$secret_file" ]]; then
  [[ "$DRY_RUN" == true ]] || die "set GITHUB_WEBHOOK_SECRET_FILE (see --help)"
  note "no GITHUB_WEBHOOK_SECRET_FILE set: the path below is a variable to fill in"
  secret_file=@@GITHUB_WEBHOOK_SECRET_FILE@@
elif [[ "$DRY_RUN" == true && ! -e "$secret_file" ]]; then
  note "GITHUB_WEBHOOK_SECRET_FILE ($secret_file) does not exist here; a dry run does not need it"
else
  # Only the shape is checked; the content is never printed.
  [[ -r "$secret_file" ]] || die "GITHUB_WEBHOOK_SECRET_FILE: cannot read $secret_file"
  size="$(wc -c <"$secret_file")"
  ((size >= 16)) || die "GITHUB_WEBHOOK_SECRET_FILE: $secret_file holds under 16 characters (the service refuses a shorter secret)"
  ((size <= 4096)) || die "GITHUB_WEBHOOK_SECRET_FILE: $secret_file is over 4096 bytes; is it the secret?"
  # A newline or space would become part of the secret the service checks, but not of the one pasted into
  # GitHub's field: every delivery would then fail its signature check.
  if LC_ALL=C grep -q '[^!-~]' "$secret_file" || [[ "$(wc -l <"$secret_file")" -ne 0 ]]; then
    die "GITHUB_WEBHOOK_SECRET_FILE: $secret_file holds a newline, a space or a non-printable character;" \
      "write the secret alone, e.g. openssl rand -hex 32 | tr -d '\\n' > FILE"
  fi
  if [[ -n "$(find "$secret_file" -perm /077 2>/dev/null)" ]]; then
    warn "$secret_file is readable by other users; chmod 600 it"
  fi
fi

if [[ -n "${SECRET_LOCATIONS:-}" ]]; then
  replication=(--replication-policy=user-managed --locations="$SECRET_LOCATIONS")
else
  replication=(--replication-policy=automatic)
fi

note "the GitHub App's webhook secret; deploy/autoscaler.sh lets the autoscaler's service account read it"
ensure gcloud secrets describe "$WEBHOOK_SECRET_NAME" --project="$PROJECT_ID" -- \
  gcloud secrets create "$WEBHOOK_SECRET_NAME" --project="$PROJECT_ID" "${replication[@]}" \
  --labels=app=gce-github-runners
capture GITHUB_WEBHOOK_SECRET_VERSION gcloud secrets versions add "$WEBHOOK_SECRET_NAME" --project="$PROJECT_ID" \
  --data-file="$secret_file" '--format=value(name.basename())'

if [[ "$DRY_RUN" != true ]]; then
  [[ "$GITHUB_WEBHOOK_SECRET_VERSION" =~ ^[1-9][0-9]*$ ]] ||
    die "gcloud secrets versions add did not print a version number ('$GITHUB_WEBHOOK_SECRET_VERSION')"
  printf 'GITHUB_WEBHOOK_SECRET_VERSION=%s\n' "$GITHUB_WEBHOOK_SECRET_VERSION"
fi
