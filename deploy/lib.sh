# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the scripts that source this file
# Shared by the deploy scripts (sourced, not run): options, variables, and the one place that runs or, with
# --dry-run, prints gcloud commands.
#
# Dry-run output is a bash script: one command per line, shell-quoted, that `bash` could run as it is.
# Values known only after an earlier command ran (a service URL) appear as "${NAME}", assigned by an
# earlier `NAME="$(gcloud ...)"` line. Secrets never appear: keys and tokens go to gcloud as file paths.

DRY_RUN=false
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$DEPLOY_DIR/.." && pwd)"

die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 2
}

# Quotes one word for bash, leaving words made of safe characters bare. A placeholder @@NAME@@ (see
# `capture`) becomes "${NAME}" so that the printed script expands it.
shell_quote() {
  local rest="$1" out="" tail
  if [[ -z "$rest" ]]; then
    printf "''"
    return
  fi
  while [[ "$rest" =~ ^(.*)@@([A-Z][A-Z0-9_]*)@@(.*)$ ]]; do
    tail="${BASH_REMATCH[3]}"
    out="\"\${${BASH_REMATCH[2]}}\"$(quote_plain "$tail")$out"
    rest="${BASH_REMATCH[1]}"
  done
  printf '%s' "$(quote_plain "$rest")$out"
}

quote_plain() {
  local s="$1"
  if [[ -z "$s" || "$s" =~ ^[A-Za-z0-9_./:=@%+,^-]+$ ]]; then
    printf '%s' "$s"
  else
    printf "'%s'" "${s//\'/\'\\\'\'}"
  fi
}

# Prints a command line, quoted.
command_line() {
  local word line=""
  for word in "$@"; do line+="${line:+ }$(shell_quote "$word")"; done
  printf '%s' "$line"
}

# run CMD...: runs a command, or prints it in a dry run.
run() {
  if [[ "$DRY_RUN" == true ]]; then
    printf '%s\n' "$(command_line "$@")"
  else
    printf '+ %s\n' "$(command_line "$@")" >&2
    "$@"
  fi
}

# ensure DESCRIBE... -- CREATE...: creates a resource unless DESCRIBE finds it.
ensure() {
  local -a describe=()
  while (($# > 0)) && [[ "$1" != -- ]]; do describe+=("$1"); shift; done
  shift
  if [[ "$DRY_RUN" == true ]]; then
    printf '%s >/dev/null 2>&1 || %s\n' "$(command_line "${describe[@]}")" "$(command_line "$@")"
  elif "${describe[@]}" >/dev/null 2>&1; then
    printf '= exists: %s\n' "$(command_line "${describe[@]}")" >&2
  else
    run "$@"
  fi
}

# exists DESCRIBE...: whether a resource exists. A dry run assumes a project where nothing exists yet.
exists() {
  [[ "$DRY_RUN" == true ]] && return 1
  "$@" >/dev/null 2>&1
}

# capture NAME CMD...: runs a read-only command and stores its output in the variable NAME. In a
# dry run, prints `NAME="$(CMD)"` and stores the placeholder @@NAME@@, which later commands print as
# "${NAME}".
capture() {
  local name="$1" value
  shift
  if [[ "$DRY_RUN" == true ]]; then
    # shellcheck disable=SC2016 # the $( ) is printed for the dry-run script, not run
    printf '%s="$(%s)"\n' "$name" "$(command_line "$@")"
    printf -v "$name" '@@%s@@' "$name"
  else
    printf '+ %s\n' "$(command_line "$@")" >&2
    value="$("$@")"
    printf -v "$name" '%s' "$value"
  fi
}

# note TEXT: a comment in the dry-run script, a progress line otherwise.
note() {
  if [[ "$DRY_RUN" == true ]]; then printf '# %s\n' "$*"; else printf '== %s\n' "$*" >&2; fi
}

# Parses the options every script has. Sets DRY_RUN; leaves other arguments in REMAINING_ARGS.
# --env-file FILE is sourced (KEY=VALUE lines); its values win over the environment.
parse_common_options() {
  REMAINING_ARGS=()
  while (($# > 0)); do
    case "$1" in
      --dry-run) DRY_RUN=true ;;
      -h | --help) usage; exit 0 ;;
      --env-file)
        [[ -f "${2:-}" ]] || die "--env-file needs a readable file"
        set -a
        # shellcheck disable=SC1090
        . "$2"
        set +a
        shift
        ;;
      *) REMAINING_ARGS+=("$1") ;;
    esac
    shift
  done
  if [[ "$DRY_RUN" == true ]]; then
    printf '# %s --dry-run: nothing was changed. The commands it would run, for a project where none of\n' \
      "$(basename "$0")"
    printf '# these resources exist yet ("a || b": b runs only when a finds nothing).\n'
  else
    export CLOUDSDK_CORE_DISABLE_PROMPTS=1
    command -v gcloud >/dev/null || die "gcloud is not installed (use --dry-run to see the commands)"
  fi
}

reject_extra_args() {
  ((${#REMAINING_ARGS[@]} == 0)) || die "unknown argument: ${REMAINING_ARGS[0]} (see --help)"
}

# require NAME...: fails listing every required variable that is empty.
require() {
  local name missing=()
  for name in "$@"; do [[ -n "${!name:-}" ]] || missing+=("$name"); done
  ((${#missing[@]} == 0)) || die "set ${missing[*]} (see --help)"
}

# Defaults shared by all scripts. Every name can be overridden from the environment or --env-file.
load_defaults() {
  require PROJECT_ID REGION
  [[ "$PROJECT_ID" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "PROJECT_ID '$PROJECT_ID' is not a project id"
  [[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "REGION '$REGION' is not a region such as us-central1"
  : "${TOKEN_PROXY_SERVICE:=gh-token-proxy}"
  : "${INSTANCE_DELETER_NAME:=gh-instance-deleter}"
  : "${PROXY_SA_NAME:=gh-token-proxy}"
  : "${DELETER_SA_NAME:=gh-instance-deleter}"
  : "${RUNNER_SA_NAME:=gh-runner}"
  : "${GITHUB_SECRET_NAME:=gh-runner-github-credential}"
  : "${DELETER_ROLE_ID:=ghRunnerInstanceDeleter}"
  : "${AR_REPOSITORY:=gce-github-runners}"
  : "${IMAGE_TAG:=$(git -C "$REPO_DIR" rev-parse --short=12 HEAD 2>/dev/null || echo latest)}"
  : "${IMAGE:=${REGION}-docker.pkg.dev/${PROJECT_ID}/${AR_REPOSITORY}/gce-github-runners:${IMAGE_TAG}}"
  PROXY_SA_EMAIL="${PROXY_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  DELETER_SA_EMAIL="${DELETER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  : "${RUNNER_SA_EMAIL:=${RUNNER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com}"
  runner_invoker_members
}

# The members that may invoke the services: the runner VMs' service accounts and nobody else. Sets
# INVOKER_MEMBERS from RUNNER_SA_EMAIL plus RUNNER_INVOKER_SA_EMAILS (more runner accounts, comma- or
# space-separated, e.g. one per trust level). Anything but a service account email is refused, so
# allUsers, allAuthenticatedUsers, users, groups and domains can never be granted the invoker role here.
runner_invoker_members() {
  local email more="${RUNNER_INVOKER_SA_EMAILS:-}"
  INVOKER_MEMBERS=()
  for email in $RUNNER_SA_EMAIL ${more//,/ }; do
    [[ "$email" =~ ^[a-z0-9][a-z0-9.-]*@[a-z0-9.-]+\.gserviceaccount\.com$ ]] ||
      die "'$email' is not a service account email; only runner VMs' service accounts may invoke the services"
    INVOKER_MEMBERS+=("serviceAccount:$email")
  done
}

# env_vars_flag FLAG KEY=VALUE...: one gcloud dict flag whose values may hold commas (scope lists, regexes,
# audiences): gcloud's alternate delimiter syntax, `--flag=^DELIM^K=V<DELIM>K=V` (gcloud topic escaping).
env_vars_flag() {
  local flag="$1" delim pair joined=""
  shift
  for delim in '##' '~~' '!!'; do
    [[ "$*" == *"$delim"* ]] || break
  done
  [[ "$*" != *"$delim"* ]] || die "cannot find a delimiter absent from the values of $flag"
  if [[ "$*" != *,* ]]; then
    delim=,
  fi
  for pair in "$@"; do joined+="${joined:+$delim}$pair"; done
  if [[ "$delim" == , ]]; then
    printf '%s=%s' "$flag" "$joined"
  else
    printf '%s=^%s^%s' "$flag" "$delim" "$joined"
  fi
}

# Where a script may write files it generates (function source, startup script). Kept after the run.
work_dir() {
  if [[ -z "${DEPLOY_WORK_DIR:-}" ]]; then
    DEPLOY_WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gce-github-runners-deploy.XXXXXX")"
  fi
  mkdir -p "$DEPLOY_WORK_DIR"
  printf '%s' "$DEPLOY_WORK_DIR"
}

# Grants roles/run.invoker on a Cloud Run service (or a 2nd gen function's service) to INVOKER_MEMBERS, then
# checks that nobody else holds it: a binding added by hand (allUsers) would defeat the ingress and IAM
# design, and add-iam-policy-binding never removes one.
# With KIND=function, binds through `gcloud functions add-invoker-policy-binding`, which for a 2nd gen
# function grants roles/run.invoker on the function's Cloud Run service (of the same name).
grant_run_invoker() {
  local service="$1" kind="${2:-service}" member extra
  for member in "${INVOKER_MEMBERS[@]}"; do
    if [[ "$kind" == function ]]; then
      run gcloud functions add-invoker-policy-binding "$service" --project="$PROJECT_ID" --region="$REGION" \
        --member="$member"
    else
      run gcloud run services add-iam-policy-binding "$service" --project="$PROJECT_ID" --region="$REGION" \
        --member="$member" --role=roles/run.invoker --condition=None
    fi
  done
  capture RUN_INVOKERS gcloud run services get-iam-policy "$service" --project="$PROJECT_ID" \
    --region="$REGION" '--flatten=bindings[].members' --filter=bindings.role=roles/run.invoker \
    '--format=value(bindings.members)'
  [[ "$DRY_RUN" == true ]] && return
  for extra in $RUN_INVOKERS; do
    for member in "${INVOKER_MEMBERS[@]}"; do [[ "$extra" == "$member" ]] && continue 2; done
    die "$service: $extra also holds roles/run.invoker; remove it with: gcloud run services" \
      "remove-iam-policy-binding $service --region=$REGION --member=$extra --role=roles/run.invoker"
  done
}

# deploy_run_service NAME SA_EMAIL URL_VAR [MORE_DEPLOY_FLAGS...] -- KEY=VALUE...
# Deploys the image as a Cloud Run service that only the runner VMs can reach and call:
#   --ingress=internal           requests from the project's VPC networks only (not the internet);
#   --no-allow-unauthenticated   Cloud Run checks the caller's identity token and roles/run.invoker;
# and sets AUTH_AUDIENCE, which the service also checks, to the service's own URL. A new service's URL is
# known only after its first deploy, so that deploy carries an audience no token can have (the service
# refuses every caller), then the URL is read and the variable updated. When the service exists, its URL is
# read first and one deploy suffices. Stores the URL in the variable named URL_VAR.
deploy_run_service() {
  local name="$1" service_account="$2" url_var="$3" fresh=false audience
  shift 3
  local -a extra=()
  while (($# > 0)) && [[ "$1" != -- ]]; do extra+=("$1"); shift; done
  shift
  local -a describe=(gcloud run services describe "$name" --project="$PROJECT_ID" --region="$REGION"
    '--format=value(status.url)')
  if exists "${describe[@]}"; then
    capture "$url_var" "${describe[@]}"
    audience="${!url_var}"
  else
    fresh=true
    audience=https://audience-pending.invalid
    note "$name: first deploy with an audience no identity token carries; set to the service URL below"
  fi
  run gcloud run deploy "$name" --project="$PROJECT_ID" --region="$REGION" --image="$IMAGE" \
    --service-account="$service_account" --ingress=internal --no-allow-unauthenticated \
    --cpu-boost "${extra[@]}" "$(env_vars_flag --set-env-vars "$@" "AUTH_AUDIENCE=$audience")"
  if [[ "$fresh" == true ]]; then
    capture "$url_var" "${describe[@]}"
    run gcloud run services update "$name" --project="$PROJECT_ID" --region="$REGION" \
      --update-env-vars="AUTH_AUDIENCE=${!url_var}"
  fi
}

# create_or_update DESCRIBE... -- UPDATE... -- CREATE...: updates a resource DESCRIBE finds, else creates it.
create_or_update() {
  local -a describe=() update=()
  while [[ "$1" != -- ]]; do describe+=("$1"); shift; done
  shift
  while [[ "$1" != -- ]]; do update+=("$1"); shift; done
  shift
  if [[ "$DRY_RUN" == true ]]; then
    printf 'if %s >/dev/null 2>&1; then %s; else %s; fi\n' "$(command_line "${describe[@]}")" \
      "$(command_line "${update[@]}")" "$(command_line "$@")"
  elif "${describe[@]}" >/dev/null 2>&1; then
    run "${update[@]}"
  else
    run "$@"
  fi
}

# Reads deploy/deleter-role-permissions.txt: one permission per line, '#' comments. Prints them
# comma-separated, in the file's order.
deleter_role_permissions() {
  local file="$DEPLOY_DIR/deleter-role-permissions.txt" line list=""
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%%#*}"
    line="${line//[[:space:]]/}"
    [[ -z "$line" ]] && continue
    [[ "$line" =~ ^[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+$ ]] || die "$file: '$line' is not a permission name"
    list+="${list:+,}$line"
  done <"$file"
  [[ -n "$list" ]] || die "$file lists no permission"
  printf '%s' "$list"
}
