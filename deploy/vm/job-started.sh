#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# The runner's job-started hook (ACTIONS_RUNNER_HOOK_JOB_STARTED, which register.sh writes into the runner's
# .env): judges the job against this VM's trust rule (trust-rule.sh) before any of its steps runs. The
# runner runs it as `bash -e job-started.sh` with the job's default variables; a non-zero exit fails the
# job without running it (https://docs.github.com/en/actions/hosting-your-own-runners/managing-self-hosted-runners/running-scripts-before-or-after-a-job).
#
# What it reads of the job: GITHUB_EVENT_NAME, GITHUB_REPOSITORY, GITHUB_REF and the event payload at
# GITHUB_EVENT_PATH. The runner sets them from the job message GitHub sends, after and over anything the
# workflow's `env:` says; the hook runs before the job's first step, so nothing of the job has run yet.
#
# Exits 0 when the rule allows the job; 1 when it refuses it, with one line saying which rule refused it
# (as a workflow error annotation), when the rule is missing or broken, or when the metadata server cannot
# be read: when in doubt, refuse. Prints nothing secret: the job's event, repository and ref only.
# Environment: the retry settings in lib.sh; the retry budget defaults to 60 s here (the job waits).
set -euo pipefail

: "${RETRY_DEADLINE_SECONDS:=60}"
: "${RETRY_MAX_DELAY_SECONDS:=10}"
export RETRY_DEADLINE_SECONDS RETRY_MAX_DELAY_SECONDS

# shellcheck source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=trust-rule.sh
source "$GCR_SCRIPT_DIR/trust-rule.sh"

# Workflow commands need `%`, CR and LF escaped in their message
# (https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions).
workflow_escape() {
  local text=$1
  text=${text//'%'/'%25'}
  text=${text//$'\r'/'%0D'}
  text=${text//$'\n'/'%0A'}
  printf '%s' "$text"
}

# Fails the job, saying why, as an error annotation on the job and a line in its log.
refuse() {
  printf '::error title=Job refused by this runner::%s\n' \
    "$(workflow_escape "This job may not run on ${RUNNER_NAME:-this runner}: $1")"
  log "refused: $1"
  exit "$EXIT_FAILURE"
}

require_tools curl jq

event=${GITHUB_EVENT_NAME:-}
repository=${GITHUB_REPOSITORY:-}
ref=${GITHUB_REF:-}
event_path=${GITHUB_EVENT_PATH:-}

# The rule is read in a subshell, so that an unreachable metadata server (lib.sh dies after its retries)
# becomes a refusal with a reason, not a bare exit status. The attributes it read stay cached (in GCR_TMP)
# for the judgement below, and what it logged on the way (retries) reaches the job log either way.
rule_log=$GCR_TMP/trust-rule.log
if ! rule_problems=$( (trust_rule_load) 2>"$rule_log"); then
  rule_logged=$(<"$rule_log")
  rule_problems="$rule_logged${rule_logged:+${rule_problems:+$'\n'}}$rule_problems"
  refuse "its trust rule cannot be read or is not valid (fail closed): ${rule_problems//$'\n'/; }"
fi
cat -- "$rule_log" >&2
trust_rule_load >/dev/null || refuse "its trust rule changed while it was read (fail closed)"

verdict=$(trust_rule_judge "$event" "$repository" "$ref" "$event_path") || refuse "$verdict"
echo "$GCR_SCRIPT: the trust rule allows this job: event $event, repository $repository, ref ${ref:-(none)}"
