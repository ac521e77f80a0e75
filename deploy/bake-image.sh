#!/usr/bin/env bash
# Bakes a Compute Engine image with the actions/runner release, the VM scripts of deploy/vm/ and their
# systemd units installed and enabled, so single-use runner VMs do not download the runner at every boot.
# The image records the release it carries: labels, description, and a file in the image.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/bake-image.sh [--keep-vm] [--dry-run] [--env-file FILE] [--help]

  1. Creates a temporary VM (BAKE_VM, no service account, no OAuth scopes) from the base image, with the
     startup script of the runner VMs in bake mode (instance attribute gce-github-runners-bake=TRUE): it
     installs jq and curl, the `runner` user, deploy/vm/ and its units, and the actions/runner release
     RUNNER_VERSION after checking RUNNER_SHA256; enables the units without starting them; writes
     /opt/actions-runner/.gce-github-runners-release (version, sha256, arch); and powers the VM off.
  2. Waits until the VM is TERMINATED (at most BAKE_TIMEOUT_SECONDS). A failed install never powers off,
     so a timeout means the bake failed: read the VM's serial port output.
  3. Creates the image IMAGE_NAME in family BAKE_IMAGE_FAMILY from the VM's disk, labelled
     app=gce-github-runners and github-runner-version=<version with dashes>, described with the version and
     checksum.
  4. Deletes the VM (kept on failure with --keep-vm).

Then point the templates at it: RUNNER_IMAGE=projects/PROJECT_ID/global/images/IMAGE_NAME (printed) with
deploy/instance-template.sh, with or without --no-startup-script. With the startup script, a VM whose image
holds the release its template names skips the download; a template naming another release installs that
one, checked.

Variables (environment or --env-file):
  PROJECT_ID, REGION      required
  RUNNER_VERSION, RUNNER_SHA256   default: the pinned release (see deploy/instance-template.sh --help)
  BAKE_ZONE               default REGION-b: where the temporary VM runs
  BAKE_VM                 default gh-runner-bake-<UTC date and time>
  BAKE_IMAGE_FAMILY       default gh-runner
  IMAGE_NAME              default gh-runner-<version with dashes>-<UTC date and time>
  BAKE_MACHINE_TYPE       default e2-standard-2
  BAKE_TIMEOUT_SECONDS    default 1200
  RUNNER_IMAGE_FAMILY, RUNNER_IMAGE_PROJECT   the base image, default debian-12 from debian-cloud
  RUNNER_DISK_SIZE, RUNNER_DISK_TYPE, RUNNER_NETWORK, RUNNER_SUBNET, RUNNER_EXTERNAL_IP
                          as for deploy/instance-template.sh; the VM must reach GitHub and the Debian
                          mirrors (Cloud NAT, or RUNNER_EXTERNAL_IP=true)
  DEPLOY_WORK_DIR         where the startup script is generated and kept (default: a temporary directory)

  --keep-vm  keep the temporary VM when the bake fails, to look at it
  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
keep_vm=false
for arg in "${REMAINING_ARGS[@]+"${REMAINING_ARGS[@]}"}"; do
  case "$arg" in
    --keep-vm) keep_vm=true ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done
load_defaults
resolve_runner_release
stamp="$(date -u +%Y%m%d-%H%M%S)"
zone="${BAKE_ZONE:-${REGION}-b}"
[[ "$zone" == "$REGION"-* ]] || die "BAKE_ZONE '$zone' is not a zone of $REGION"
vm="${BAKE_VM:-gh-runner-bake-$stamp}"
family="${BAKE_IMAGE_FAMILY:-gh-runner}"
version_label="${RUNNER_VERSION//./-}"
image="${IMAGE_NAME:-gh-runner-${version_label}-$stamp}"
timeout="${BAKE_TIMEOUT_SECONDS:-1200}"
for name in "$vm" "$family" "$image"; do
  [[ "$name" =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "'$name' is not a valid Compute Engine name"
done
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die "BAKE_TIMEOUT_SECONDS must be a whole number"
commit="$(git -C "$REPO_DIR" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"

ensure_work_dir
generate_startup_script "$WORK_DIR/startup-script.sh"
if [[ "$DRY_RUN" == true && -z "${DEPLOY_WORK_DIR:-}" ]]; then
  script=@@DEPLOY_WORK_DIR@@/startup-script.sh
  note "the startup script: deploy/runner-startup.sh with deploy/vm/ embedded; set DEPLOY_WORK_DIR to keep a copy to read"
else
  script="$WORK_DIR/startup-script.sh"
fi

vm_flags=(--project="$PROJECT_ID" --zone="$zone" --machine-type="${BAKE_MACHINE_TYPE:-e2-standard-2}"
  --no-service-account --no-scopes
  --image-family="${RUNNER_IMAGE_FAMILY:-debian-12}" --image-project="${RUNNER_IMAGE_PROJECT:-debian-cloud}"
  --boot-disk-size="${RUNNER_DISK_SIZE:-50GB}" --boot-disk-type="${RUNNER_DISK_TYPE:-pd-balanced}"
  --network="${RUNNER_NETWORK:-default}")
if [[ -n "${RUNNER_SUBNET:-}" ]]; then vm_flags+=(--subnet="$RUNNER_SUBNET"); fi
if [[ "${RUNNER_EXTERNAL_IP:-false}" != true ]]; then vm_flags+=(--no-address); fi
vm_flags+=(--shielded-secure-boot --shielded-vtpm --shielded-integrity-monitoring
  "--labels=app=gce-github-runners,purpose=bake"
  "--metadata=gce-github-runners-bake=TRUE,github-runner-version=$RUNNER_VERSION,github-runner-sha256=$RUNNER_SHA256,block-project-ssh-keys=TRUE"
  --metadata-from-file="startup-script=$script")

delete_vm=(gcloud compute instances delete "$vm" --project="$PROJECT_ID" --zone="$zone" --quiet)
# A failed bake leaves no VM running (and billing) unless --keep-vm asks for it.
on_exit() {
  local status=$?
  if [[ "$DRY_RUN" != true && "${vm_created:-false}" == true && "${vm_deleted:-false}" != true && "$keep_vm" != true ]]; then
    printf '+ %s\n' "$(command_line "${delete_vm[@]}")" >&2
    "${delete_vm[@]}" || warn "could not delete the bake VM $vm: delete it by hand"
  fi
  cleanup_paths
  exit "$status"
}
trap on_exit EXIT

note "bake VM $vm in $zone: installs actions/runner $RUNNER_VERSION (checksum pinned) and deploy/vm, then powers off"
run gcloud compute instances create "$vm" "${vm_flags[@]}"
vm_created=true

describe_status=(gcloud compute instances describe "$vm" --project="$PROJECT_ID" --zone="$zone" '--format=value(status)')
note "wait until the bake VM has powered itself off (at most ${timeout}s)"
if [[ "$DRY_RUN" == true ]]; then
  # shellcheck disable=SC2016 # printed for the dry-run script, not run
  printf 'for _ in $(seq %d); do [[ "$(%s)" == TERMINATED ]] && break; sleep 15; done\n' \
    "$(((timeout + 14) / 15))" "$(command_line "${describe_status[@]}")"
else
  deadline=$((SECONDS + timeout))
  until [[ "$("${describe_status[@]}" 2>/dev/null || true)" == TERMINATED ]]; do
    ((SECONDS < deadline)) || die "the bake VM $vm did not power off within ${timeout}s; its serial port output says why:" \
      "gcloud compute instances get-serial-port-output $vm --project=$PROJECT_ID --zone=$zone"
    sleep 15
  done
fi

note "image $image (family $family): records actions/runner $RUNNER_VERSION"
run gcloud compute images create "$image" --project="$PROJECT_ID" --source-disk="$vm" --source-disk-zone="$zone" \
  --family="$family" "--labels=app=gce-github-runners,github-runner-version=$version_label" \
  "--description=actions/runner $RUNNER_VERSION (sha256 $RUNNER_SHA256) and deploy/vm of $commit, baked by deploy/bake-image.sh"
run "${delete_vm[@]}"
vm_deleted=true

if [[ "$DRY_RUN" != true ]]; then
  printf 'RUNNER_IMAGE=projects/%s/global/images/%s\n' "$PROJECT_ID" "$image"
fi
