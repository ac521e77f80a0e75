#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# Stand-in for actions/runner's config.sh (see README.md): `config.sh [--flags]` registers a runner at the
# fake GitHub with a registration token and keeps the registration in .runner; `config.sh remove` removes
# it with a remove token. Like the real one, every --arg may come from ACTIONS_RUNNER_INPUT_<ARG> instead.
# Records what it got in RUNNER_STANDIN_LOG, secrets as hashes.
set -euo pipefail

# shellcheck source=standin-lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/standin-lib.sh"

standin_record invoked '{}' "$@"

command=configure
url=${ACTIONS_RUNNER_INPUT_URL:-}
name=${ACTIONS_RUNNER_INPUT_NAME:-}
labels=${ACTIONS_RUNNER_INPUT_LABELS:-}
group=${ACTIONS_RUNNER_INPUT_RUNNERGROUP:-}
token=${ACTIONS_RUNNER_INPUT_TOKEN:-}
work=${ACTIONS_RUNNER_INPUT_WORK:-_work}
ephemeral=false
replace=false
while (($#)); do
  case $1 in
    remove) command=remove ;;
    --url | --name | --labels | --runnergroup | --token | --work)
      (($# >= 2)) || standin_die "$1 needs a value"
      case $1 in
        --url) url=$2 ;;
        --name) name=$2 ;;
        --labels) labels=$2 ;;
        --runnergroup) group=$2 ;;
        --token) token=$2 ;;
        --work) work=$2 ;;
      esac
      shift
      ;;
    --ephemeral) ephemeral=true ;;
    --replace) replace=true ;;
    --unattended | --disableupdate) ;;
    *) standin_die "unknown argument $1" ;;
  esac
  shift
done
[[ -n $token ]] || standin_die "no token: pass --token or ACTIONS_RUNNER_INPUT_TOKEN"

if [[ $command == remove ]]; then
  [[ -f $STANDIN_STATE_FILE ]] || standin_die "Runner is not configured"
  url=$(jq -r '.GitHubUrl' <"$STANDIN_STATE_FILE")
  name=$(jq -r '.AgentName' <"$STANDIN_STATE_FILE")
  if [[ -n ${SANDBOX_GITHUB_URL:-} ]]; then
    standin_post /runners/remove "$(jq -cn --arg url "$url" --arg token "$token" --arg name "$name" \
      '{url: $url, token: $token, name: $name}')" >/dev/null
  fi
  rm -f -- "$STANDIN_STATE_FILE"
  standin_record removed "$(jq -cn --arg url "$url" --arg name "$name" '{url: $url, name: $name}')"
  standin_log "runner $name removed"
  exit 0
fi

[[ -n $url && -n $name ]] || standin_die "--url and --name are required in unattended mode"
labels_json=$(jq -cn --arg csv "$labels" '$csv | split(",") | map(select(length > 0))')
runner='{"id": null, "runner_group_id": null}'
if [[ -n ${SANDBOX_GITHUB_URL:-} ]]; then
  runner=$(standin_post /runners/register "$(jq -cn --arg url "$url" --arg token "$token" --arg name "$name" \
    --argjson labels "$labels_json" --arg group "$group" --argjson ephemeral "$ephemeral" \
    --argjson replace "$replace" \
    '{url: $url, token: $token, name: $name, labels: $labels, ephemeral: $ephemeral, replace: $replace}
     + (if $group != "" then {runner_group: $group} else {} end)')")
fi
jq -n --argjson runner "$runner" --arg name "$name" --arg url "$url" --arg work "$work" \
  --argjson ephemeral "$ephemeral" \
  '{AgentId: $runner.id, AgentName: $name, PoolId: $runner.runner_group_id, GitHubUrl: $url,
    WorkFolder: $work, Ephemeral: $ephemeral}' >"$STANDIN_STATE_FILE"
standin_record configured "$(jq -c '{runner_id: .AgentId}' <"$STANDIN_STATE_FILE")"
standin_log "runner $name registered at $url"
