#!/usr/bin/env bash
# Creates an instance template for ephemeral runner VMs: the runner service account with no OAuth scopes,
# the instance attributes the VM scripts of deploy/vm/ read, and a startup script that installs them.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/instance-template.sh [--trust-level LEVEL] [--no-startup-script] [--dry-run] [--env-file FILE]
                                   [--help]

Creates the instance template TEMPLATE_NAME for the runner VMs of one trust level (templates cannot be
changed: each run makes a new one; deploy/runner-mig.sh points the level's MIG at it). The VMs run as the
level's service account (gh-runner-<level>@) with no OAuth scopes (--no-scopes): they call the services
with identity tokens, which access scopes do not govern, and an access token with no scope opens no Google
API to a job on the VM.

  --trust-level LEVEL  one of TRUST_LEVELS (default "presubmit postsubmit"); needed when there are several

Instance attributes (metadata) set, as deploy/vm/README.md describes them:
  github-runner-scope   RUNNER_SCOPE (required): ORG, OWNER/REPO or enterprise:SLUG
  github-runner-labels  RUNNER_LABELS_<LEVEL> (default self-hosted,linux,x64,<level>)
  github-runner-group   RUNNER_GROUP_<LEVEL> (default <level>)
  github-runner-allowed-events  RUNNER_ALLOWED_EVENTS_<LEVEL>: the events the job-started hook lets run
                        (default pull_request,merge_group for presubmit, push,schedule,workflow_dispatch
                        for postsubmit; required for any other level)
  github-runner-allowed-refs, github-runner-allowed-repositories, github-runner-allow-fork-pull-requests
                        RUNNER_ALLOWED_REFS_<LEVEL>, RUNNER_ALLOWED_REPOSITORIES_<LEVEL>,
                        RUNNER_ALLOW_FORK_PULL_REQUESTS_<LEVEL> (optional; see deploy/vm/README.md)
  github-runner-mode    RUNNER_MODE (default jit)            github-url  GITHUB_URL (default https://github.com)
  token-proxy-url       TOKEN_PROXY_URL (default: read from the Cloud Run service TOKEN_PROXY_SERVICE)
  instance-deleter-url  INSTANCE_DELETER_URL (default: the function's URL, or with DELETER_TARGET=run the
                        Cloud Run service's)
  github-runner-deregister  RUNNER_DEREGISTER (optional: delete-runner or remove-token)
  github-runner-version, github-runner-sha256
                        RUNNER_VERSION and RUNNER_SHA256: the actions/runner release the startup script
                        installs when the image has none, and the SHA-256 of its linux-x64 tarball. Default:
                        a pinned release and its checksum; set both to change it (`latest` is refused).
                        The VM refuses to install a runner it cannot check.
  enable-oslogin=TRUE, block-project-ssh-keys=TRUE
  startup-script        deploy/runner-startup.sh with deploy/vm/ embedded (not with --no-startup-script,
                        for images baked by deploy/bake-image.sh or that otherwise have deploy/vm/ installed
                        and the units enabled)

Other variables (environment or --env-file):
  PROJECT_ID, REGION     required
  TEMPLATE_NAME          default <RUNNER_MIG_PREFIX><level>-<UTC date and time>, e.g. gh-runner-presubmit-20270101-120000
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
  RUNNER_SA_NAME_<LEVEL> default gh-runner-<level>
  DEPLOY_WORK_DIR        where the startup script is generated and kept (default: a temporary directory,
                         removed when the script exits)

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
startup_script=true
level=""
set -- "${REMAINING_ARGS[@]+"${REMAINING_ARGS[@]}"}"
while (($# > 0)); do
  case "$1" in
    --no-startup-script) startup_script=false ;;
    --trust-level) level="${2:-}"; shift ;;
    --trust-level=*) level="${1#--trust-level=}" ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
load_defaults
if [[ -z "$level" ]]; then
  ((${#LEVELS[@]} == 1)) || die "--trust-level is needed: TRUST_LEVELS has ${LEVELS[*]}"
  level="${LEVELS[0]}"
fi
require_level "$level"
require RUNNER_SCOPE
# shellcheck disable=SC2153 # RUNNER_SCOPE comes from the environment, checked by require above
[[ "$RUNNER_SCOPE" =~ ^[A-Za-z0-9:._/-]+$ ]] || die "RUNNER_SCOPE '$RUNNER_SCOPE' is not ORG, OWNER/REPO or enterprise:SLUG"
: "${TEMPLATE_NAME:=$(runner_mig_name "$level")-$(date -u +%Y%m%d-%H%M%S)}"
[[ "$TEMPLATE_NAME" =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "TEMPLATE_NAME '$TEMPLATE_NAME' is not a valid name"
resolve_runner_release
runner_sa="$(runner_sa_email "$level")"

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
  "github-runner-labels=$(runner_labels "$level")"
  "github-runner-group=$(runner_group "$level")"
  "github-runner-version=$RUNNER_VERSION"
  "github-runner-sha256=$RUNNER_SHA256"
  enable-oslogin=TRUE
  block-project-ssh-keys=TRUE
)
if [[ -n "${RUNNER_DEREGISTER:-}" ]]; then metadata+=("github-runner-deregister=$RUNNER_DEREGISTER"); fi
allowed_events="$(runner_allowed_events "$level")"
[[ -n "$allowed_events" ]] ||
  die "RUNNER_ALLOWED_EVENTS_${level^^} is needed: the trust level \"$level\" has no default trust rule"
metadata+=("github-runner-allowed-events=$allowed_events")
for key in ALLOWED_REFS ALLOWED_REPOSITORIES ALLOW_FORK_PULL_REQUESTS; do
  value="$(level_setting "$level" "RUNNER_$key" "")"
  attribute="github-runner-$(tr '[:upper:]_' '[:lower:]-' <<<"$key")"
  if [[ -n "$value" ]]; then metadata+=("$attribute=$value"); fi
done

flags=(--project="$PROJECT_ID" --machine-type="${RUNNER_MACHINE_TYPE:-e2-standard-4}"
  --service-account="$runner_sa")
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
  "--labels=app=gce-github-runners,github-runner-trust-level=$level"
  "$(env_vars_flag --metadata "${metadata[@]}")")
if [[ "$startup_script" == true ]]; then
  # Generated (and its size checked) in a dry run too. Without DEPLOY_WORK_DIR it is removed at exit, so
  # the dry run names it by a variable.
  ensure_work_dir
  generate_startup_script "$WORK_DIR/startup-script.sh"
  if [[ "$DRY_RUN" == true && -z "${DEPLOY_WORK_DIR:-}" ]]; then
    note "the startup script: deploy/runner-startup.sh with deploy/vm/ embedded; set DEPLOY_WORK_DIR to keep a copy to read"
    flags+=(--metadata-from-file="startup-script=@@DEPLOY_WORK_DIR@@/startup-script.sh")
  else
    note "startup script generated in $WORK_DIR/startup-script.sh (deploy/runner-startup.sh with deploy/vm/ embedded)"
    flags+=(--metadata-from-file="startup-script=$WORK_DIR/startup-script.sh")
  fi
fi

note "instance template $TEMPLATE_NAME ($level): $runner_sa, no OAuth scopes, actions/runner $RUNNER_VERSION (checksum pinned)"
run gcloud compute instance-templates create "$TEMPLATE_NAME" "${flags[@]}"
if [[ "$DRY_RUN" != true ]]; then
  printf 'TEMPLATE_NAME=%s\n' "$TEMPLATE_NAME"
fi
