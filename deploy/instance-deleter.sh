#!/usr/bin/env bash
# Deploys the instance deleter, as a 2nd gen Cloud Function (default) or a Cloud Run service from the
# image, with a custom role holding exactly the Compute Engine permissions it uses, narrowed by an IAM
# condition to the runner MIGs and their VMs.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: deploy/instance-deleter.sh [--target function|run] [--build-service-account EMAIL] [--skip-build]
                                  [--dry-run] [--env-file FILE] [--help]

  1. Creates or updates the custom role DELETER_ROLE_ID with exactly the permissions listed in
     deploy/deleter-role-permissions.txt, and binds it to the deleter's service account on the project with
     an IAM condition: on Compute Engine instances and instance group managers, only names starting with
     RUNNER_MIG_PREFIX (DELETER_ROLE_CONDITION=none binds it without one).
  2. --target function (default): builds (npm run build), stages dist/ with package.json (main =
     dist/services/instance-deleter/src/function.js) and package-lock.json in a work directory, and
     deploys it: gcloud functions deploy --gen2 --runtime=FUNCTION_RUNTIME --entry-point=deleteInstance
     --trigger-http --no-allow-unauthenticated --ingress-settings=internal-only. Its URL, and
     AUTH_AUDIENCE, is https://REGION-PROJECT_ID.cloudfunctions.net/INSTANCE_DELETER_NAME.
     Either target runs ONE instance serving DELETER_CONCURRENCY requests at once (--max-instances=1
     --concurrency, and --cpu=1 which concurrency needs): the per-MIG lock that lets only as many idle
     VMs go as their MIG is above its recommendation lives in one process.
     --target run: deploys IMAGE with SERVICE=instance-deleter to Cloud Run (--ingress=internal,
     --no-allow-unauthenticated), like deploy/token-proxy.sh; no build or upload here.
  3. Grants roles/run.invoker to the runner VMs' service accounts only.

Variables (environment or --env-file):
  PROJECT_ID, REGION         required
  ALLOWED_MIG_PATTERN        regex matched against the whole MIG name; default: the trust levels' MIGs,
                             RUNNER_MIG_PREFIX(level|level...), e.g. gh-runner-(presubmit|postsubmit)
  RUNNER_MIG_PREFIX          default gh-runner-: the runner MIGs' names (and so their VMs') start with it
  DELETER_ROLE_CONDITION     mig-prefix (default) or none
  DELETER_TARGET             function (default) or run; --target wins
  FUNCTION_RUNTIME           default nodejs24: the Cloud Run functions runtime (function target)
  BUILD_SERVICE_ACCOUNT      the service account Cloud Build builds the function as (email); default: the
                             account of BUILD_SA_NAME when set, else Cloud Build's default. With
                             BUILD_SA_NAME, that account is granted roles/run.builder on the project.
  REQUEST_TIMEOUT_SECONDS    optional (service default 30): each request's deadline; the function (or
                             Cloud Run request) timeout is this + 30 s
  LOG_LEVEL                  optional
  INSTANCE_DELETER_NAME      default gh-instance-deleter
  DELETER_SA_NAME            default gh-instance-deleter
  DELETER_ROLE_ID            default ghRunnerInstanceDeleter
  TRUST_LEVELS, RUNNER_INVOKER_SA_EMAILS   who may call it (see deploy/token-proxy.sh --help)
  DELETER_CONCURRENCY        default 80 (at most 1000): requests the one instance serves at once
  DELETER_MEMORY             default 256Mi: the instance's memory. With the V8 heap bounds of
                             services/instance-deleter/runtime.env, npm run bench's load leaves the deleter
                             about 140 MiB resident
  IMAGE, IMAGE_TAG           --target run only (see deploy/token-proxy.sh --help)
  DEPLOY_WORK_DIR            where the function source is staged and kept (default: a temporary directory,
                             removed when the script exits)

  --build-service-account EMAIL  same as BUILD_SERVICE_ACCOUNT
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
    --build-service-account) BUILD_SERVICE_ACCOUNT="${2:-}"; shift ;;
    --build-service-account=*) BUILD_SERVICE_ACCOUNT="${1#--build-service-account=}" ;;
    --skip-build) skip_build=true ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[[ "$target" == function || "$target" == run ]] || die "--target must be function or run"
load_defaults
: "${ALLOWED_MIG_PATTERN:=$(default_mig_pattern)}"
condition_kind="${DELETER_ROLE_CONDITION:-mig-prefix}"
case "$condition_kind" in
  mig-prefix)
    # The condition lets the role touch only MIGs and VMs named RUNNER_MIG_PREFIX...; a pattern that allows
    # other MIGs would have the deleter refused by IAM for them.
    [[ "$ALLOWED_MIG_PATTERN" == "$RUNNER_MIG_PREFIX"* || "$ALLOWED_MIG_PATTERN" == "^$RUNNER_MIG_PREFIX"* ]] ||
      die "ALLOWED_MIG_PATTERN '$ALLOWED_MIG_PATTERN' must start with RUNNER_MIG_PREFIX '$RUNNER_MIG_PREFIX'" \
        "(the role's IAM condition allows only those MIGs), or set DELETER_ROLE_CONDITION=none"
    ;;
  none) ;;
  *) die "DELETER_ROLE_CONDITION must be mig-prefix or none" ;;
esac

permissions="$(deleter_role_permissions)"
role="projects/${PROJECT_ID}/roles/${DELETER_ROLE_ID}"
role_flags=(--project="$PROJECT_ID" --title="GitHub runner instance deleter"
  "--description=Exactly what the instance deleter calls: see deploy/deleter-role-permissions.txt"
  --stage=GA --permissions="$permissions")

note "custom role $DELETER_ROLE_ID: exactly the permissions of deploy/deleter-role-permissions.txt"
create_or_update gcloud iam roles describe "$DELETER_ROLE_ID" --project="$PROJECT_ID" -- \
  gcloud iam roles update "$DELETER_ROLE_ID" "${role_flags[@]}" -- \
  gcloud iam roles create "$DELETER_ROLE_ID" "${role_flags[@]}"
if [[ "$condition_kind" == mig-prefix ]]; then
  note "bound on the project, but for instances and MIGs only those named ${RUNNER_MIG_PREFIX}*"
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$DELETER_SA_EMAIL" \
    --role="$role" "$(env_vars_flag --condition "expression=$(deleter_role_condition_expression)" \
      "title=gce-github-runners MIGs only" \
      "description=Instances and instance group managers named ${RUNNER_MIG_PREFIX}* (deploy/instance-deleter.sh)")"
  remove_unconditional_binding "$role" "serviceAccount:$DELETER_SA_EMAIL"
else
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$DELETER_SA_EMAIL" \
    --role="$role" --condition=None
fi

env=(GOOGLE_CLOUD_PROJECT="$PROJECT_ID" "ALLOWED_MIG_PATTERN=$ALLOWED_MIG_PATTERN")
# The deleter's runtime environment (V8 heap bounds, malloc arenas): services/instance-deleter/runtime.env,
# which npm run bench starts it with too, so the memory measured there is the memory deployed.
while IFS= read -r line; do
  [[ "$line" =~ ^[A-Z_]+= ]] && env+=("$line")
done <"$REPO_DIR/services/instance-deleter/runtime.env"
for name in REQUEST_TIMEOUT_SECONDS LOG_LEVEL; do
  if [[ -n "${!name:-}" ]]; then env+=("$name=${!name}"); fi
done
[[ -z "${STABILIZE_TIMEOUT_SECONDS:-}" ]] ||
  die "STABILIZE_TIMEOUT_SECONDS is no longer used (the deleter no longer waits for a stable MIG):" \
    "set REQUEST_TIMEOUT_SECONDS for its deadline"
request_timeout="${REQUEST_TIMEOUT_SECONDS:-30}"
[[ "$request_timeout" =~ ^[0-9]+$ ]] || die "REQUEST_TIMEOUT_SECONDS must be a whole number"
concurrency="${DELETER_CONCURRENCY:-80}"
if [[ ! "$concurrency" =~ ^[0-9]+$ ]] || ((concurrency < 1 || concurrency > 1000)); then
  die "DELETER_CONCURRENCY must be a whole number from 1 to 1000"
fi
[[ -z "${DELETER_MAX_INSTANCES:-}" ]] ||
  die "DELETER_MAX_INSTANCES is no longer supported: the deleter runs as one instance (see --help);" \
    "set DELETER_CONCURRENCY for how many requests it serves at once"
# One instance: the per-MIG lock of DELETE /?if=scale-down is in-process, and between two instances
# two idle VMs of a MIG one above its recommendation can both be deleted. Concurrency above 1 needs a
# whole vCPU (https://cloud.google.com/functions/docs/configuring/concurrency).
scaling=(--max-instances=1 --concurrency="$concurrency" --cpu=1)
memory="${DELETER_MEMORY:-256Mi}"
[[ "$memory" =~ ^[0-9]+(Mi|Gi)$ ]] || die "DELETER_MEMORY must be a size such as 256Mi or 1Gi"

# Writes the function's source: the compiled deleter and shared code, package-lock.json, and package.json
# with `main` at the function entry (the Functions Framework loads that module) and one script,
# `gcp-build`, which Cloud Build runs after installing the dependencies
# (https://cloud.google.com/run/docs/runtimes/nodejs, NPM build scripts): it fills the deleter's compile
# cache with the runtime's own Node (services/instance-deleter/src/prime-compile-cache.ts). Without a
# `build` script the buildpack does not try to compile TypeScript it was not given. The local compile
# cache stays behind: it was written by this machine's Node.
stage_function_source() {
  local dir="$1"
  [[ -f "$REPO_DIR/dist/services/instance-deleter/src/function.js" ]] ||
    die "dist/services/instance-deleter/src/function.js is missing: run npm run build"
  rm -rf "$dir"
  mkdir -p "$dir/dist/services"
  cp -R "$REPO_DIR/dist/shared" "$dir/dist/shared"
  cp -R "$REPO_DIR/dist/services/instance-deleter" "$dir/dist/services/instance-deleter"
  rm -rf "$dir/dist/services/instance-deleter/.node-compile-cache"
  cp "$REPO_DIR/package-lock.json" "$dir/"
  node -e '
    const fs = require("node:fs");
    const pkg = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    pkg.main = "dist/services/instance-deleter/src/function.js";
    pkg.scripts = { "gcp-build": "node dist/services/instance-deleter/src/prime-compile-cache.js" };
    fs.writeFileSync(process.argv[2], JSON.stringify(pkg, null, 2) + "\n");
  ' "$REPO_DIR/package.json" "$dir/package.json"
  printf '# Staged by deploy/instance-deleter.sh: upload all of it except dependencies.\nnode_modules/\n' \
    >"$dir/.gcloudignore"
}

if [[ "$target" == function ]]; then
  url="https://${REGION}-${PROJECT_ID}.cloudfunctions.net/${INSTANCE_DELETER_NAME}"
  build_flags=()
  if [[ -n "$BUILD_SERVICE_ACCOUNT" ]]; then
    if [[ "$BUILD_SERVICE_ACCOUNT" == "$BUILD_SA_EMAIL" ]]; then
      # Cloud Run functions builds need the Cloud Run Builder role on the project
      # (https://cloud.google.com/run/docs/configuring/services/build-service-account).
      note "the build service account $BUILD_SA_NAME may build functions"
      run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$BUILD_SA_EMAIL" \
        --role=roles/run.builder --condition=None
    fi
    build_flags=(--build-service-account="projects/${PROJECT_ID}/serviceAccounts/${BUILD_SERVICE_ACCOUNT}")
  fi
  if [[ "$DRY_RUN" == true && -z "${DEPLOY_WORK_DIR:-}" ]]; then
    # Nothing is staged in a dry run; the directory would be a temporary one, removed at exit.
    source_dir=@@DEPLOY_WORK_DIR@@/function-source
  else
    ensure_work_dir
    source_dir="$WORK_DIR/function-source"
  fi
  note "instance deleter as a 2nd gen Cloud Function ($FUNCTION_RUNTIME); source staged in a work directory"
  if [[ "$skip_build" != true ]]; then run npm --prefix "$REPO_DIR" run build; fi
  if [[ "$DRY_RUN" == true ]]; then
    note "stage dist/shared, dist/services/instance-deleter, package-lock.json and package.json" \
      "(main=dist/services/instance-deleter/src/function.js) in the work directory"
  else
    stage_function_source "$source_dir"
  fi
  run gcloud functions deploy "$INSTANCE_DELETER_NAME" --gen2 --project="$PROJECT_ID" --region="$REGION" \
    --runtime="$FUNCTION_RUNTIME" --source="$source_dir" --entry-point=deleteInstance --trigger-http \
    --no-allow-unauthenticated --ingress-settings=internal-only --service-account="$DELETER_SA_EMAIL" \
    "${build_flags[@]+"${build_flags[@]}"}" \
    --memory="$memory" --timeout="$((request_timeout + 30))s" "${scaling[@]}" \
    "$(env_vars_flag --set-env-vars "${env[@]}" "AUTH_AUDIENCE=$url")"
  INSTANCE_DELETER_URL="$url"
  note "only the runner VMs' service accounts may invoke the instance deleter"
  grant_run_invoker "$INSTANCE_DELETER_NAME" function
else
  note "instance deleter on Cloud Run, from the image"
  deploy_run_service "$INSTANCE_DELETER_NAME" "$DELETER_SA_EMAIL" INSTANCE_DELETER_URL \
    --memory="$memory" --timeout="$((request_timeout + 30))" --min-instances=0 "${scaling[@]}" \
    -- SERVICE=instance-deleter "${env[@]}"
  note "only the runner VMs' service accounts may invoke the instance deleter"
  grant_run_invoker "$INSTANCE_DELETER_NAME"
fi

if [[ "$DRY_RUN" != true ]]; then
  printf 'INSTANCE_DELETER_URL=%s\n' "$INSTANCE_DELETER_URL"
fi
