#!/usr/bin/env bash
# Prints the autoscaler's pools for the trust levels: the POOLS deploy/autoscaler.sh deploys when POOLS_FILE
# is not set. Save them, edit them (another MIG per pool for stock-outs, other labels), and pass the file
# back as POOLS_FILE.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/autoscaler-pools.sh [--env-file FILE] [--help]

Prints, as JSON, one pool per trust level (services/autoscaler/src/pool-config.ts; README, "Autoscaler"),
in TRUST_LEVELS order. For level L the pool says: a queued job whose labels are all among RUNNER_LABELS_L
(default self-hosted,linux,x64,L), from a repository in POOL_SCOPES_L (default POOL_SCOPES, then
ALLOWED_SCOPES), gets one VM in L's MIG (RUNNER_MIG_PREFIX + L, regional in REGION or zonal in
RUNNER_ZONE), named <MIG>-<job id>, registering in RUNNER_SCOPE's runner group RUNNER_GROUP_L; at most
POOL_MAX_RUNNERS_L VMs at once (default POOL_MAX_RUNNERS, then RUNNER_MIG_MAX, then 10).

The first pool whose labels cover a job's labels gets the job. A job that names only labels every level
has (self-hosted, linux, x64) gets a VM of the first level: name each level's label in runs-on.

Variables (environment or --env-file):
  PROJECT_ID, REGION, RUNNER_SCOPE       required
  POOL_SCOPES or ALLOWED_SCOPES          required: ';'-separated orgs, owner/repo or match:REGEX
  TRUST_LEVELS, RUNNER_GROUP_<LEVEL>, RUNNER_LABELS_<LEVEL>, RUNNER_MIG_PREFIX, RUNNER_ZONE,
  POOL_SCOPES_<LEVEL>, POOL_MAX_RUNNERS, POOL_MAX_RUNNERS_<LEVEL>, RUNNER_MIG_MAX
USAGE
}

for arg in "$@"; do
  [[ "$arg" != --dry-run ]] || die "--dry-run: this script changes nothing anyway; it prints the pools"
done
NEEDS_GCLOUD=false
parse_common_options "$@"
reject_extra_args
load_defaults
autoscaler_pools_json | node -e '
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => process.stdout.write(JSON.stringify(JSON.parse(text), null, 2) + "\n"));
'
