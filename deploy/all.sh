#!/usr/bin/env bash
# Runs the deploy scripts in order, from an empty project to an instance template that points at both
# services. Each step is idempotent; run it again after a change (see docs/deploy.md, "Upgrading").
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/all.sh [--dry-run] [--env-file FILE] [--skip-template] [--help]

Runs, with the same variables and options:
  deploy/enable-apis.sh, deploy/service-accounts.sh, deploy/github-secret.sh, deploy/build-image.sh,
  deploy/token-proxy.sh, deploy/instance-deleter.sh, deploy/instance-template.sh
The service URLs printed by token-proxy.sh and instance-deleter.sh are passed on to instance-template.sh.
Every variable those scripts take applies (see each script's --help); deploy/config.example.env lists them.

  --skip-template  stop after the services
  --dry-run        print the commands instead of running them; gcloud is not needed
USAGE
}

args=()
skip_template=false
for arg in "$@"; do
  case "$arg" in
    --skip-template) skip_template=true ;;
    -h | --help) usage; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done

step() {
  local script="$1" line out
  if [[ " ${args[*]-} " == *" --dry-run "* ]]; then
    printf '\n# ---- deploy/%s\n' "$script"
    "$DEPLOY_DIR/$script" "${args[@]+"${args[@]}"}"
    return
  fi
  out="$(mktemp)"
  # set -e and pipefail stop here when the script fails.
  "$DEPLOY_DIR/$script" "${args[@]+"${args[@]}"}" | tee "$out"
  # Pass on the URLs the script printed (NAME=VALUE lines) to the scripts after it.
  while IFS= read -r line; do
    case "$line" in
      TOKEN_PROXY_URL=* | INSTANCE_DELETER_URL=*) export "${line?}" ;;
    esac
  done <"$out"
  rm -f "$out"
}

step enable-apis.sh
step service-accounts.sh
step github-secret.sh
step build-image.sh
step token-proxy.sh
step instance-deleter.sh
if [[ "$skip_template" != true ]]; then
  step instance-template.sh
fi
