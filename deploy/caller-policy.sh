#!/usr/bin/env bash
# Prints the token proxy's caller policy for the trust levels: the policy deploy/token-proxy.sh deploys
# when POLICY_FILE is not set. Save it, edit it, and pass it back as POLICY_FILE to change it.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/caller-policy.sh [--env-file FILE] [--help]

Prints, as JSON, one caller-policy rule per trust level (services/token-proxy/src/policy.ts; README,
"The caller policy"). For level L the rule says: callers with the service account of L
(RUNNER_SA_NAME_L, default gh-runner-L), from PROJECT_ID, whose instance name is one of L's MIG
(RUNNER_MIG_PREFIX + L + "-" + suffix, as a MIG or the autoscaler service names them) may get a JIT
runner config for ALLOWED_SCOPES, in runner group RUNNER_GROUP_L (default L), with labels RUNNER_LABELS_L
(default self-hosted,linux,x64,L), and nothing else: no registration or remove tokens (jitOnly), no other
group or label.

The runner groups must exist on GitHub (Organization settings, Actions, Runner groups); see
docs/deploy.md for how to restrict each group to the repositories and workflows of its trust level.

Variables (environment or --env-file):
  PROJECT_ID, REGION, ALLOWED_SCOPES    required
  TRUST_LEVELS                          default "presubmit postsubmit"
  RUNNER_SA_NAME_<LEVEL>, RUNNER_GROUP_<LEVEL>, RUNNER_LABELS_<LEVEL>, RUNNER_MIG_PREFIX
USAGE
}

for arg in "$@"; do
  [[ "$arg" != --dry-run ]] || die "--dry-run: this script changes nothing anyway; it prints the policy"
done
NEEDS_GCLOUD=false
parse_common_options "$@"
reject_extra_args
load_defaults
require ALLOWED_SCOPES
caller_policy_json | node -e '
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => process.stdout.write(JSON.stringify(JSON.parse(text), null, 2) + "\n"));
'
