#!/usr/bin/env bash
# Runs the deploy scripts in order, from an empty project to a MIG of runner VMs per trust level. Each step
# is idempotent; run it again after a change (see docs/deploy.md, "Upgrading").
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/all.sh [--dry-run] [--env-file FILE] [--target function|run] [--skip-build]
                     [--skip-template | --runners-only] [--help]

Runs, with the same variables and options:
  deploy/enable-apis.sh, deploy/service-accounts.sh, deploy/github-secret.sh, deploy/build-image.sh,
  deploy/token-proxy.sh, deploy/instance-deleter.sh,
  with RUNNER_SCALING=autoscaler-service (the default): deploy/webhook-secret.sh (when
  GITHUB_WEBHOOK_SECRET_FILE is set; otherwise the newest version in Secret Manager is used),
  deploy/autoscaler.sh and deploy/autoscaler-alerts.sh, and, when STATUS_VIEWERS is set,
  deploy/fleet-status.sh (the status page behind IAP; its account is added to the autoscaler's FLEET_VIEWERS),
  then for each trust level (TRUST_LEVELS): deploy/instance-template.sh and deploy/runner-mig.sh.
What a step prints for the next (TOKEN_PROXY_URL, INSTANCE_DELETER_URL, GITHUB_SECRET_VERSION,
GITHUB_WEBHOOK_SECRET_VERSION, AUTOSCALER_URL) is passed on. all.sh names the templates itself (<RUNNER_MIG_PREFIX><level>-<UTC date and time>), whatever
TEMPLATE_NAME says. Every variable those scripts take applies (see each script's --help);
deploy/config.example.env lists them. Values set in the environment win over the --env-file's.

  --target function|run  where the instance deleter runs (deploy/instance-deleter.sh --target); also
                         DELETER_TARGET
  --skip-build           use the existing dist/ for the deleter function
  --skip-template        stop after the services: no templates, no MIGs
  --runners-only         only the templates and MIGs (after a change of deploy/vm/, the runner release,
                         RUNNER_IMAGE or the machine shape); the services' URLs are read from Cloud Run
  --dry-run              print the commands instead of running them; gcloud and the key file are not needed
USAGE
}

common=()
deleter_args=()
skip_template=false
runners_only=false
while (($# > 0)); do
  case "$1" in
    --skip-template) skip_template=true ;;
    --runners-only) runners_only=true ;;
    --skip-build) deleter_args+=(--skip-build) ;;
    --target) [[ -n "${2:-}" ]] || die "--target needs function or run"; DELETER_TARGET="$2"; shift ;;
    --target=*) DELETER_TARGET="${1#--target=}" ;;
    --env-file) common+=("$1" "${2:-}"); shift ;;
    *) common+=("$1") ;;
  esac
  shift
done
# The deleter's target decides the deleter's URL in the templates too, so every step sees it.
if [[ -n "${DELETER_TARGET:-}" ]]; then
  [[ "$DELETER_TARGET" == function || "$DELETER_TARGET" == run ]] || die "--target must be function or run"
  export DELETER_TARGET
fi
# Reads the env file (the environment wins) and checks the variables every step needs, so a mistake stops
# all.sh before the first step. The steps read the same file again.
parse_common_options "${common[@]+"${common[@]}"}"
reject_extra_args
load_defaults
if [[ "$RUNNER_SCALING" == autoscaler-service && "$runners_only" != true && "${GITHUB_AUTH:-app}" != app ]]; then
  die "the autoscaler service needs a GitHub App (its webhook); with GITHUB_AUTH=$GITHUB_AUTH set RUNNER_SCALING=cpu"
fi

# The status page reads the autoscaler's GET /fleet as its own account: the autoscaler lets it in by
# FLEET_VIEWERS, so the autoscaler is deployed knowing it (the account is created by fleet-status.sh after).
status_page=false
if [[ "$RUNNER_SCALING" == autoscaler-service && "$runners_only" != true && -n "${STATUS_VIEWERS:-}" ]]; then
  status_page=true
  if [[ ",${FLEET_VIEWERS:-}," != *",${STATUS_SA_EMAIL},"* ]]; then
    FLEET_VIEWERS="${FLEET_VIEWERS:+${FLEET_VIEWERS},}${STATUS_SA_EMAIL}"
  fi
  export FLEET_VIEWERS
fi

scratch=""
# step SCRIPT [ARGS...]: runs one script with the common options; in a real run, passes on the values it
# prints (NAME=VALUE lines) to the steps after it.
step() {
  local script="$1" line
  shift
  if [[ "$DRY_RUN" == true ]]; then
    printf '\n# ---- deploy/%s %s\n' "$script" "$*"
    "$DEPLOY_DIR/$script" "${common[@]+"${common[@]}"}" "$@"
    return
  fi
  [[ -n "$scratch" ]] || { scratch="$(mktemp "${TMPDIR:-/tmp}/gce-github-runners-all.XXXXXX")"; CLEANUP_PATHS+=("$scratch"); }
  # set -e and pipefail stop here when the script fails; the EXIT trap removes the scratch file.
  "$DEPLOY_DIR/$script" "${common[@]+"${common[@]}"}" "$@" | tee "$scratch"
  while IFS= read -r line; do
    case "$line" in
      TOKEN_PROXY_URL=* | INSTANCE_DELETER_URL=* | GITHUB_SECRET_VERSION=* | GITHUB_WEBHOOK_SECRET_VERSION=* | \
        AUTOSCALER_URL=*) export "${line?}" ;;
    esac
  done <"$scratch"
}

[[ "$skip_template" != true || "$runners_only" != true ]] || die "--skip-template and --runners-only exclude each other"
if [[ "$runners_only" != true ]]; then
  step enable-apis.sh
  step service-accounts.sh
  step github-secret.sh
  step build-image.sh
  step token-proxy.sh
  step instance-deleter.sh "${deleter_args[@]+"${deleter_args[@]}"}"
  if [[ "$RUNNER_SCALING" == autoscaler-service ]]; then
    if [[ -n "${GITHUB_WEBHOOK_SECRET_FILE:-}" ]]; then step webhook-secret.sh; fi
    step autoscaler.sh
    step autoscaler-alerts.sh
    if [[ "$status_page" == true ]]; then step fleet-status.sh; fi
  fi
fi
if [[ "$skip_template" != true ]]; then
  stamp="$(date -u +%Y%m%d-%H%M%S)"
  for level in "${LEVELS[@]}"; do
    template="$(runner_mig_name "$level")-$stamp"
    TEMPLATE_NAME="$template" step instance-template.sh --trust-level "$level"
    TEMPLATE_NAME="$template" step runner-mig.sh --trust-level "$level" --template "$template"
  done
fi
