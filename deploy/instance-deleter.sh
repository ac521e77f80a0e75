#!/usr/bin/env bash
# Deploys the instance deleter, as a 2nd gen Cloud Function (default) or a Cloud Run service from the
# image, with a custom role holding exactly the Compute Engine permissions it uses.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/instance-deleter.sh [--target function|run] [--skip-build] [--dry-run] [--env-file FILE] [--help]

  1. Creates or updates the custom role DELETER_ROLE_ID with exactly the permissions listed in
     deploy/deleter-role-permissions.txt, and binds it to the deleter's service account at project level.
  2. --target function (default): builds (npm run build), stages dist/ with package.json (main =
     dist/services/instance-deleter/src/function.js) and package-lock.json in a work directory, and
     deploys it: gcloud functions deploy --gen2 --runtime=nodejs24 --entry-point=deleteInstance
     --trigger-http --no-allow-unauthenticated --ingress-settings=internal-only. Its URL, and
     AUTH_AUDIENCE, is https://REGION-PROJECT_ID.cloudfunctions.net/INSTANCE_DELETER_NAME.
     --target run: deploys IMAGE with SERVICE=instance-deleter to Cloud Run (--ingress=internal,
     --no-allow-unauthenticated), like deploy/token-proxy.sh; no build or upload here.
  3. Grants roles/run.invoker to the runner VMs' service accounts only.

Variables (environment or --env-file):
  PROJECT_ID, REGION         required
  ALLOWED_MIG_PATTERN        required: regex matched against the whole MIG name, e.g. gh-runner-.*
  DELETER_TARGET             function (default) or run; --target wins
  STABILIZE_TIMEOUT_SECONDS  optional (service default 100); the function timeout is this + 60 s
  LOG_LEVEL                  optional
  INSTANCE_DELETER_NAME      default gh-instance-deleter
  DELETER_SA_NAME            default gh-instance-deleter
  DELETER_ROLE_ID            default ghRunnerInstanceDeleter
  RUNNER_SA_EMAIL, RUNNER_INVOKER_SA_EMAILS   who may call it (see deploy/token-proxy.sh --help)
  DELETER_MAX_INSTANCES      default 5
  IMAGE, IMAGE_TAG           --target run only (see deploy/token-proxy.sh --help)
  DEPLOY_WORK_DIR            where the function source is staged (default: a new temporary directory)

  --skip-build  use the existing dist/ (function target)
  --dry-run     print the commands instead of running them; gcloud is not needed
USAGE
}

parse_common_options "$@"
target="${DELETER_TARGET:-function}"
skip_build=false
set -- "${REMAINING_ARGS[@]+"${REMAINING_ARGS[@]}"}"
while (($# > 0)); do
  case "$1" in
    --target) target="${2:-}"; shift ;;
    --target=*) target="${1#--target=}" ;;
    --skip-build) skip_build=true ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[[ "$target" == function || "$target" == run ]] || die "--target must be function or run"
load_defaults
require ALLOWED_MIG_PATTERN

permissions="$(deleter_role_permissions)"
role="projects/${PROJECT_ID}/roles/${DELETER_ROLE_ID}"
role_flags=(--project="$PROJECT_ID" --title="GitHub runner instance deleter"
  "--description=Exactly what the instance deleter calls: see deploy/deleter-role-permissions.txt"
  --stage=GA --permissions="$permissions")

note "custom role $DELETER_ROLE_ID: exactly the permissions of deploy/deleter-role-permissions.txt"
create_or_update gcloud iam roles describe "$DELETER_ROLE_ID" --project="$PROJECT_ID" -- \
  gcloud iam roles update "$DELETER_ROLE_ID" "${role_flags[@]}" -- \
  gcloud iam roles create "$DELETER_ROLE_ID" "${role_flags[@]}"
run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$DELETER_SA_EMAIL" \
  --role="$role" --condition=None

env=(GOOGLE_CLOUD_PROJECT="$PROJECT_ID" "ALLOWED_MIG_PATTERN=$ALLOWED_MIG_PATTERN")
for name in STABILIZE_TIMEOUT_SECONDS LOG_LEVEL; do
  if [[ -n "${!name:-}" ]]; then env+=("$name=${!name}"); fi
done
stabilize="${STABILIZE_TIMEOUT_SECONDS:-100}"
[[ "$stabilize" =~ ^[0-9]+$ ]] || die "STABILIZE_TIMEOUT_SECONDS must be a whole number"

# Writes the function's source: the compiled deleter and shared code, package-lock.json, and package.json
# with `main` at the function entry (the Functions Framework loads that module) and no scripts, so the
# build does not try to compile TypeScript it was not given.
stage_function_source() {
  local dir="$1"
  [[ -f "$REPO_DIR/dist/services/instance-deleter/src/function.js" ]] ||
    die "dist/services/instance-deleter/src/function.js is missing: run npm run build"
  rm -rf "$dir"
  mkdir -p "$dir/dist/services"
  cp -R "$REPO_DIR/dist/shared" "$dir/dist/shared"
  cp -R "$REPO_DIR/dist/services/instance-deleter" "$dir/dist/services/instance-deleter"
  cp "$REPO_DIR/package-lock.json" "$dir/"
  node -e '
    const fs = require("node:fs");
    const pkg = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    pkg.main = "dist/services/instance-deleter/src/function.js";
    pkg.scripts = {};
    fs.writeFileSync(process.argv[2], JSON.stringify(pkg, null, 2) + "\n");
  ' "$REPO_DIR/package.json" "$dir/package.json"
  printf '# Staged by deploy/instance-deleter.sh: upload all of it except dependencies.\nnode_modules/\n' \
    >"$dir/.gcloudignore"
}

if [[ "$target" == function ]]; then
  url="https://${REGION}-${PROJECT_ID}.cloudfunctions.net/${INSTANCE_DELETER_NAME}"
  source_dir="$(work_dir)/function-source"
  note "instance deleter as a 2nd gen Cloud Function; source staged in $source_dir"
  if [[ "$skip_build" != true ]]; then run npm --prefix "$REPO_DIR" run build; fi
  if [[ "$DRY_RUN" == true ]]; then
    note "stage dist/shared, dist/services/instance-deleter, package-lock.json and package.json" \
      "(main=dist/services/instance-deleter/src/function.js) in $source_dir"
  else
    stage_function_source "$source_dir"
  fi
  run gcloud functions deploy "$INSTANCE_DELETER_NAME" --gen2 --project="$PROJECT_ID" --region="$REGION" \
    --runtime=nodejs24 --source="$source_dir" --entry-point=deleteInstance --trigger-http \
    --no-allow-unauthenticated --ingress-settings=internal-only --service-account="$DELETER_SA_EMAIL" \
    --memory=512Mi --timeout="$((stabilize + 60))s" --max-instances="${DELETER_MAX_INSTANCES:-5}" \
    "$(env_vars_flag --set-env-vars "${env[@]}" "AUTH_AUDIENCE=$url")"
  INSTANCE_DELETER_URL="$url"
  note "only the runner VMs' service accounts may invoke the instance deleter"
  grant_run_invoker "$INSTANCE_DELETER_NAME" function
else
  note "instance deleter on Cloud Run, from the image"
  deploy_run_service "$INSTANCE_DELETER_NAME" "$DELETER_SA_EMAIL" INSTANCE_DELETER_URL \
    --memory=512Mi --timeout="$((stabilize + 60))" --min-instances=0 \
    --max-instances="${DELETER_MAX_INSTANCES:-5}" -- SERVICE=instance-deleter "${env[@]}"
  note "only the runner VMs' service accounts may invoke the instance deleter"
  grant_run_invoker "$INSTANCE_DELETER_NAME"
fi

if [[ "$DRY_RUN" != true ]]; then
  printf 'INSTANCE_DELETER_URL=%s\n' "$INSTANCE_DELETER_URL"
fi
