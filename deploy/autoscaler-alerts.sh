#!/usr/bin/env bash
# Creates or updates the log-based metrics and alerting policies that watch the autoscaler service: jobs
# that get no VM, MIGs that cannot create VMs (stock-outs, quotas), webhook deliveries that keep failing,
# redeliveries GitHub refuses, a reconciliation that stopped or keeps failing, and how long jobs wait.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/autoscaler-alerts.sh [--dry-run] [--env-file FILE] [--help]

  1. For each file deploy/monitoring/metrics/NAME.json, the log-based metric NAME
     (gcloud logging metrics create|update NAME --config-from-file=FILE). The metrics count the autoscaler's
     own log lines (jsonPayload.service="autoscaler"), by their message.
  2. For each file deploy/monitoring/policies/ALERT.json, the alerting policy labelled app=gce-github-runners,
     alert=ALERT (gcloud monitoring policies create|update --policy-from-file=FILE), with the notification
     channels NOTIFICATION_CHANNELS. An existing policy is replaced by the file: edit the file, not the
     policy in the console.
docs/deploy.md ("Alerts") says what each alert means, and which log lines the service does not write yet.

Variables (environment or --env-file):
  PROJECT_ID, REGION       required
  NOTIFICATION_CHANNELS    optional: comma-separated channel names, projects/PROJECT_ID/notificationChannels/ID
                           (gcloud beta monitoring channels list); without them the alerts open incidents
                           in the console only

  --dry-run  print the gcloud commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
reject_extra_args
load_defaults

channel_flags=()
update_channel_flags=()
if [[ -n "${NOTIFICATION_CHANNELS:-}" ]]; then
  for channel in ${NOTIFICATION_CHANNELS//,/ }; do
    [[ "$channel" =~ ^projects/[^/]+/notificationChannels/[0-9]+$ ]] ||
      die "NOTIFICATION_CHANNELS: '$channel' is not projects/PROJECT_ID/notificationChannels/ID"
  done
  channel_flags=(--notification-channels="$NOTIFICATION_CHANNELS")
  update_channel_flags=(--set-notification-channels="$NOTIFICATION_CHANNELS")
fi

metrics_dir="$DEPLOY_DIR/monitoring/metrics"
policies_dir="$DEPLOY_DIR/monitoring/policies"

# Log-based metrics first: a policy naming a metric that does not exist is refused.
# https://cloud.google.com/sdk/gcloud/reference/logging/metrics/create (--config-from-file: a LogMetric in
# JSON or YAML, https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.metrics#LogMetric).
note "log-based metrics over the autoscaler's log lines (deploy/monitoring/metrics/)"
for file in "$metrics_dir"/*.json; do
  metric="$(basename "$file" .json)"
  create_or_update gcloud logging metrics describe "$metric" --project="$PROJECT_ID" -- \
    gcloud logging metrics update "$metric" --project="$PROJECT_ID" --config-from-file="$file" -- \
    gcloud logging metrics create "$metric" --project="$PROJECT_ID" --config-from-file="$file"
done

# Alerting policies have no name of their own to look up; each file's policy carries the user labels
# app=gce-github-runners and alert=<file name>, by which it is found again. `update --policy-from-file`
# replaces the whole policy (https://cloud.google.com/sdk/gcloud/reference/monitoring/policies/update).
note "alerting policies (deploy/monitoring/policies/), found again by their user labels"
for file in "$policies_dir"/*.json; do
  alert="$(basename "$file" .json)"
  [[ "$alert" =~ ^[a-z][-a-z0-9]{0,62}$ ]] || die "$file: the file name must be a label value (a-z, 0-9, -)"
  grep -q "\"alert\": \"$alert\"" "$file" || die "$file: its userLabels must say \"alert\": \"$alert\""
  var="ALERT_POLICY_$(tr 'a-z-' 'A-Z_' <<<"$alert")"
  capture "$var" gcloud monitoring policies list --project="$PROJECT_ID" \
    "--filter=userLabels.app=gce-github-runners AND userLabels.alert=$alert" '--format=value(name)'
  existing="${!var}"
  update=(gcloud monitoring policies update "$existing" --project="$PROJECT_ID" --policy-from-file="$file"
    "${update_channel_flags[@]+"${update_channel_flags[@]}"}")
  create=(gcloud monitoring policies create --project="$PROJECT_ID" --policy-from-file="$file"
    "${channel_flags[@]+"${channel_flags[@]}"}")
  if [[ "$DRY_RUN" == true ]]; then
    # shellcheck disable=SC2016 # printed for the dry-run script, not run
    printf 'if [[ -n "${%s}" ]]; then %s; else %s; fi\n' "$var" "$(command_line "${update[@]}")" \
      "$(command_line "${create[@]}")"
  elif [[ -z "$existing" ]]; then
    run "${create[@]}"
  elif [[ "$existing" == *$'\n'* ]]; then
    die "several alerting policies are labelled alert=$alert; delete all but one:" "${existing//$'\n'/ }"
  else
    run "${update[@]}"
  fi
done
