#!/usr/bin/env bash
# Creates the managed instance group (MIG) of one trust level's runner VMs, or points an existing one at a
# new instance template. With RUNNER_SCALING=autoscaler-service (the default) the MIG has no Compute
# autoscaler: the autoscaler service (deploy/autoscaler.sh) creates one VM per queued job with the MIG's
# createInstances, which a MIG refuses while an autoscaler sizes it, so an existing one is removed. With
# RUNNER_SCALING=cpu it gets an autoscaler on CPU that only scales out. The MIG never deletes a VM on its
# own: a VM leaves when its job is done (delete-self.sh) or, with the CPU autoscaler, when the deleter finds
# the MIG above the autoscaler's recommendation (idle-check.sh), both through the instance deleter.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/runner-mig.sh [--trust-level LEVEL] [--template NAME] [--dry-run] [--env-file FILE] [--help]

Creates the MIG <RUNNER_MIG_PREFIX><level> (e.g. gh-runner-presubmit) from the instance template, with
size 0, or, when it exists, rolls it to the template opportunistically: VMs running jobs are left alone and
each new VM comes from the new template. Then, by RUNNER_SCALING:
  autoscaler-service (default)  no Compute autoscaler: the autoscaler service sizes the MIG. An existing
                                MIG's autoscaler is removed (stop-autoscaling), since a MIG refuses to be
                                sized by hand (createInstances) while one is on.
  cpu                           an autoscaler on CPU (--mode=only-scale-out), as before the service.

What keeps the MIG from deleting VMs itself:
  - regional MIG (default): --instance-redistribution-type=NONE, so it never deletes VMs in one zone to
    recreate them in another, and --target-distribution-shape=BALANCED (RUNNER_MIG_DISTRIBUTION_SHAPE, or
    EVEN), which supports autoscaling and creates VMs where capacity is;
  - zonal MIG (RUNNER_ZONE set): there is no redistribution;
  - no autoscaler, or one that only scales out; scaling in is the VMs' own request;
  - rolling updates are opportunistic.

  --trust-level LEVEL  one of TRUST_LEVELS; needed when there are several
  --template NAME      the instance template (default: TEMPLATE_NAME); deploy/instance-template.sh prints it

Variables (environment or --env-file):
  PROJECT_ID, REGION              required
  RUNNER_ZONE                     optional: a zone of REGION for a zonal MIG
  RUNNER_MIG_ZONES                optional: the zones of a regional MIG, comma-separated (default: Compute
                                  Engine's choice of three)
  RUNNER_MIG_DISTRIBUTION_SHAPE   BALANCED (default) or EVEN: the shapes that support autoscaling
  RUNNER_SCALING                  autoscaler-service (default) or cpu
  RUNNER_MIG_MIN, RUNNER_MIG_MAX  cpu: autoscaler bounds, default 1 and 10 (with the autoscaler service,
                                  RUNNER_MIG_MAX is the pools' default maxRunners; see deploy/autoscaler.sh)
  RUNNER_MIG_CPU_TARGET           cpu: autoscaler CPU utilization target, default 0.6
  RUNNER_MIG_PREFIX               default gh-runner-

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
level=""
template="${TEMPLATE_NAME:-}"
set -- "${REMAINING_ARGS[@]+"${REMAINING_ARGS[@]}"}"
while (($# > 0)); do
  case "$1" in
    --trust-level) level="${2:-}"; shift ;;
    --trust-level=*) level="${1#--trust-level=}" ;;
    --template) template="${2:-}"; shift ;;
    --template=*) template="${1#--template=}" ;;
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
[[ -n "$template" ]] || die "name the instance template: --template NAME or TEMPLATE_NAME"
[[ "$template" =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "'$template' is not an instance template name"
mig="$(runner_mig_name "$level")"
min="${RUNNER_MIG_MIN:-1}"
max="${RUNNER_MIG_MAX:-10}"
cpu="${RUNNER_MIG_CPU_TARGET:-0.6}"
if [[ "$RUNNER_SCALING" == cpu ]]; then
  if ! [[ "$min" =~ ^[0-9]+$ && "$max" =~ ^[1-9][0-9]*$ ]] || ((min > max)); then
    die "RUNNER_MIG_MIN and RUNNER_MIG_MAX must be whole numbers, MIN <= MAX, MAX >= 1"
  fi
  [[ "$cpu" =~ ^0?\.[0-9]+$|^1(\.0+)?$ ]] || die "RUNNER_MIG_CPU_TARGET must be a fraction such as 0.6"
fi

if [[ -n "${RUNNER_ZONE:-}" ]]; then
  [[ "$RUNNER_ZONE" == "$REGION"-* ]] || die "RUNNER_ZONE '$RUNNER_ZONE' is not a zone of $REGION"
  where=(--zone="$RUNNER_ZONE")
  shape_flags=()
  kind="zonal MIG in $RUNNER_ZONE (no redistribution across zones)"
else
  shape="${RUNNER_MIG_DISTRIBUTION_SHAPE:-BALANCED}"
  shape="${shape^^}"
  # ANY and ANY_SINGLE_ZONE do not support autoscaling; EVEN and BALANCED do, with proactive redistribution
  # off (https://cloud.google.com/compute/docs/instance-groups/regional-mig-set-target-distribution-shape,
  # https://cloud.google.com/compute/docs/instance-groups/regional-mig-enable-disable-proactive-redistribution).
  [[ "$shape" == BALANCED || "$shape" == EVEN ]] ||
    die "RUNNER_MIG_DISTRIBUTION_SHAPE must be BALANCED or EVEN (the shapes an autoscaled MIG can have)"
  where=(--region="$REGION")
  shape_flags=(--instance-redistribution-type=NONE --target-distribution-shape="$shape")
  kind="regional MIG, $shape, proactive redistribution off"
fi
zones_flags=()
if [[ -z "${RUNNER_ZONE:-}" && -n "${RUNNER_MIG_ZONES:-}" ]]; then zones_flags=(--zones="$RUNNER_MIG_ZONES"); fi

note "MIG $mig ($level): $kind, template $template"
describe=(gcloud compute instance-groups managed describe "$mig" --project="$PROJECT_ID" "${where[@]}")
create=(gcloud compute instance-groups managed create "$mig" --project="$PROJECT_ID" "${where[@]}"
  "${zones_flags[@]+"${zones_flags[@]}"}" --template="$template" --size=0 --base-instance-name="$mig"
  "${shape_flags[@]+"${shape_flags[@]}"}" "--description=GitHub Actions runners, $level (deploy/runner-mig.sh)")
# An existing MIG, perhaps made before these scripts or by hand, is told not to redistribute, then rolled.
update=()
if ((${#shape_flags[@]} > 0)); then
  update=(gcloud compute instance-groups managed update "$mig" --project="$PROJECT_ID" "${where[@]}" "${shape_flags[@]}")
fi
roll=(gcloud compute instance-groups managed rolling-action start-update "$mig" --project="$PROJECT_ID"
  "${where[@]}" --version=template="$template" --type=opportunistic)
# With the autoscaler service, an existing MIG loses its autoscaler, if it has one (a new MIG has none). A
# MIG refuses manual sizing while an autoscaler is on (the service's createInstances would fail);
# `stop-autoscaling` deletes it (https://cloud.google.com/sdk/gcloud/reference/compute/instance-groups/managed/stop-autoscaling).
read_autoscaler=(gcloud compute instance-groups managed describe "$mig" --project="$PROJECT_ID" "${where[@]}"
  '--format=value(status.autoscaler)')
stop=(gcloud compute instance-groups managed stop-autoscaling "$mig" --project="$PROJECT_ID" "${where[@]}")
if [[ "$DRY_RUN" == true ]]; then
  existing="$( ((${#update[@]} > 0)) && printf '%s; ' "$(command_line "${update[@]}")")$(command_line "${roll[@]}")"
  if [[ "$RUNNER_SCALING" == autoscaler-service ]]; then
    # shellcheck disable=SC2016 # printed for the dry-run script, not run
    existing+="; MIG_AUTOSCALER=\"\$($(command_line "${read_autoscaler[@]}"))\"; if [[ -n \"\${MIG_AUTOSCALER}\" ]]; then $(command_line "${stop[@]}"); fi"
  fi
  printf 'if %s >/dev/null 2>&1; then %s; else %s; fi\n' "$(command_line "${describe[@]}")" "$existing" \
    "$(command_line "${create[@]}")"
elif "${describe[@]}" >/dev/null 2>&1; then
  if ((${#update[@]} > 0)); then run "${update[@]}"; fi
  run "${roll[@]}"
  if [[ "$RUNNER_SCALING" == autoscaler-service ]]; then
    capture MIG_AUTOSCALER "${read_autoscaler[@]}"
    if [[ -n "$MIG_AUTOSCALER" ]]; then run "${stop[@]}"; fi
  fi
else
  run "${create[@]}"
fi
if [[ "$RUNNER_SCALING" == cpu ]]; then
  note "autoscaler: scales out only; VMs leave through the instance deleter"
  run gcloud compute instance-groups managed set-autoscaling "$mig" --project="$PROJECT_ID" "${where[@]}" \
    --mode=only-scale-out --min-num-replicas="$min" --max-num-replicas="$max" --target-cpu-utilization="$cpu"
else
  note "no Compute autoscaler: the autoscaler service (deploy/autoscaler.sh) creates a VM per queued job"
fi

if [[ "$DRY_RUN" != true ]]; then
  printf 'MIG=%s\n' "$mig"
fi
