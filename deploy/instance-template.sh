#!/usr/bin/env bash
# Creates an instance template for ephemeral runner VMs: the runner service account with no OAuth scopes,
# the instance attributes the VM scripts of deploy/vm/ read, and a startup script that installs them.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/instance-template.sh [--no-startup-script] [--dry-run] [--env-file FILE] [--help]

Creates the instance template TEMPLATE_NAME (templates cannot be changed: each run makes a new one; point
the MIG at it with a rolling update, see docs/deploy.md). The VMs run as RUNNER_SA_EMAIL with no OAuth
scopes (--no-scopes): they call the services with identity tokens, which access scopes do not govern, and
an access token with no scope opens no Google API to a job on the VM.

Instance attributes (metadata) set, as deploy/vm/README.md describes them:
  github-runner-scope   RUNNER_SCOPE (required): ORG, OWNER/REPO or enterprise:SLUG
  github-runner-labels  RUNNER_LABELS (comma-separated)      github-runner-group  RUNNER_GROUP
  github-runner-mode    RUNNER_MODE (default jit)            github-url           GITHUB_URL (default https://github.com)
  token-proxy-url       TOKEN_PROXY_URL (default: read from the Cloud Run service TOKEN_PROXY_SERVICE)
  instance-deleter-url  INSTANCE_DELETER_URL (default: the function's URL, or with DELETER_TARGET=run the
                        Cloud Run service's)
  github-runner-deregister  RUNNER_DEREGISTER (optional: delete-runner or remove-token)
  github-runner-version RUNNER_VERSION (default latest), github-runner-sha256 RUNNER_SHA256 (optional):
                        the actions/runner release the startup script installs when the image has none
  enable-oslogin=TRUE, block-project-ssh-keys=TRUE
  startup-script        deploy/runner-startup.sh with deploy/vm/ embedded (not with --no-startup-script,
                        for images that already have deploy/vm/ installed and the units enabled)

Other variables (environment or --env-file):
  PROJECT_ID, REGION     required
  TEMPLATE_NAME          default gh-runner-<UTC date and time>
  RUNNER_MACHINE_TYPE    default e2-standard-4
  RUNNER_IMAGE           an image (project/global/images/NAME form or name with RUNNER_IMAGE_PROJECT), or
  RUNNER_IMAGE_FAMILY    default debian-12, with RUNNER_IMAGE_PROJECT default debian-cloud
  RUNNER_DISK_SIZE       default 50GB             RUNNER_DISK_TYPE  default pd-balanced
  RUNNER_NETWORK         default default          RUNNER_SUBNET     optional (a subnet of REGION)
  RUNNER_EXTERNAL_IP     default false: no external address; the subnet needs Private Google Access (to
                         reach the services) and Cloud NAT (to reach GitHub)
  RUNNER_SPOT            default false; true makes Spot VMs that are deleted when preempted
  RUNNER_SCOPES          default empty (--no-scopes); only if identity tokens are refused without any,
                         userinfo-email, which opens no Google Cloud API
  RUNNER_SA_EMAIL        default gh-runner@PROJECT_ID.iam.gserviceaccount.com
  DEPLOY_WORK_DIR        where the startup script is generated (default: a new temporary directory)

  --dry-run  print the gcloud commands instead of running them (the startup script is still generated,
             to read); gcloud is not needed
USAGE
}

parse_common_options "$@"
startup_script=true
for arg in "${REMAINING_ARGS[@]+"${REMAINING_ARGS[@]}"}"; do
  case "$arg" in
    --no-startup-script) startup_script=false ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done
load_defaults
require RUNNER_SCOPE
# shellcheck disable=SC2153 # RUNNER_SCOPE comes from the environment, checked by require above
[[ "$RUNNER_SCOPE" =~ ^[A-Za-z0-9:._/-]+$ ]] || die "RUNNER_SCOPE '$RUNNER_SCOPE' is not ORG, OWNER/REPO or enterprise:SLUG"
: "${TEMPLATE_NAME:=gh-runner-$(date -u +%Y%m%d-%H%M%S)}"
[[ "$TEMPLATE_NAME" =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "TEMPLATE_NAME '$TEMPLATE_NAME' is not a valid name"

if [[ -z "${TOKEN_PROXY_URL:-}" ]]; then
  capture TOKEN_PROXY_URL gcloud run services describe "$TOKEN_PROXY_SERVICE" --project="$PROJECT_ID" \
    --region="$REGION" '--format=value(status.url)'
fi
if [[ -z "${INSTANCE_DELETER_URL:-}" ]]; then
  if [[ "${DELETER_TARGET:-function}" == run ]]; then
    capture INSTANCE_DELETER_URL gcloud run services describe "$INSTANCE_DELETER_NAME" --project="$PROJECT_ID" \
      --region="$REGION" '--format=value(status.url)'
  else
    INSTANCE_DELETER_URL="https://${REGION}-${PROJECT_ID}.cloudfunctions.net/${INSTANCE_DELETER_NAME}"
  fi
fi

metadata=(
  "github-runner-scope=$RUNNER_SCOPE"
  "github-runner-mode=${RUNNER_MODE:-jit}"
  "github-url=${GITHUB_URL:-https://github.com}"
  "token-proxy-url=$TOKEN_PROXY_URL"
  "instance-deleter-url=$INSTANCE_DELETER_URL"
  "github-runner-version=${RUNNER_VERSION:-latest}"
  enable-oslogin=TRUE
  block-project-ssh-keys=TRUE
)
if [[ -n "${RUNNER_LABELS:-}" ]]; then metadata+=("github-runner-labels=$RUNNER_LABELS"); fi
if [[ -n "${RUNNER_GROUP:-}" ]]; then metadata+=("github-runner-group=$RUNNER_GROUP"); fi
if [[ -n "${RUNNER_DEREGISTER:-}" ]]; then metadata+=("github-runner-deregister=$RUNNER_DEREGISTER"); fi
if [[ -n "${RUNNER_SHA256:-}" ]]; then metadata+=("github-runner-sha256=$RUNNER_SHA256"); fi

# The startup script: deploy/runner-startup.sh with deploy/vm/ (scripts and systemd units) embedded.
generate_startup_script() {
  local out="$1" bundle template
  [[ -f "$DEPLOY_DIR/vm/register.sh" && -d "$DEPLOY_DIR/vm/systemd" ]] ||
    die "deploy/vm/ has no register.sh or systemd/: nothing to install on the VMs"
  bundle="$(tar -C "$DEPLOY_DIR/vm" --sort=name --owner=0 --group=0 --mtime=@0 --exclude=README.md \
    -czf - . | base64 -w0)"
  template="$(<"$DEPLOY_DIR/runner-startup.sh")"
  printf '%s\n' "${template/@VM_BUNDLE@/$bundle}" >"$out"
  # Compute Engine takes at most 256 KiB per metadata value.
  (($(wc -c <"$out") < 256 * 1024)) || die "the startup script is over 256 KiB"
}

flags=(--project="$PROJECT_ID" --machine-type="${RUNNER_MACHINE_TYPE:-e2-standard-4}"
  --service-account="$RUNNER_SA_EMAIL")
if [[ -n "${RUNNER_SCOPES:-}" ]]; then
  flags+=(--scopes="$RUNNER_SCOPES")
else
  flags+=(--no-scopes)
fi
if [[ -n "${RUNNER_IMAGE:-}" ]]; then
  flags+=(--image="$RUNNER_IMAGE")
  if [[ -n "${RUNNER_IMAGE_PROJECT:-}" ]]; then flags+=(--image-project="$RUNNER_IMAGE_PROJECT"); fi
else
  flags+=(--image-family="${RUNNER_IMAGE_FAMILY:-debian-12}" --image-project="${RUNNER_IMAGE_PROJECT:-debian-cloud}")
fi
flags+=(--boot-disk-size="${RUNNER_DISK_SIZE:-50GB}" --boot-disk-type="${RUNNER_DISK_TYPE:-pd-balanced}"
  --network="${RUNNER_NETWORK:-default}")
if [[ -n "${RUNNER_SUBNET:-}" ]]; then flags+=(--region="$REGION" --subnet="$RUNNER_SUBNET"); fi
if [[ "${RUNNER_EXTERNAL_IP:-false}" != true ]]; then flags+=(--no-address); fi
if [[ "${RUNNER_SPOT:-false}" == true ]]; then
  flags+=(--provisioning-model=SPOT --instance-termination-action=DELETE)
fi
flags+=(--shielded-secure-boot --shielded-vtpm --shielded-integrity-monitoring
  --labels=app=gce-github-runners "$(env_vars_flag --metadata "${metadata[@]}")")
if [[ "$startup_script" == true ]]; then
  script="$(work_dir)/startup-script.sh"
  generate_startup_script "$script"
  note "startup script generated in $script (deploy/runner-startup.sh with deploy/vm/ embedded)"
  flags+=(--metadata-from-file="startup-script=$script")
fi

note "instance template $TEMPLATE_NAME: runner service account, no OAuth scopes, the VM scripts' attributes"
run gcloud compute instance-templates create "$TEMPLATE_NAME" "${flags[@]}"
if [[ "$DRY_RUN" != true ]]; then
  printf 'TEMPLATE_NAME=%s\n' "$TEMPLATE_NAME"
fi
