# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the scripts that source this file
# Shared by the deploy scripts (sourced, not run): options, variables, and the one place that runs or, with
# --dry-run, prints gcloud commands.
#
# Dry-run output is a bash script: one command per line, shell-quoted, that `bash` could run as it is.
# Values known only after an earlier command ran (a service URL) appear as "${NAME}", assigned by an
# earlier `NAME="$(gcloud ...)"` line. Secrets never appear: keys and tokens go to gcloud as file paths.
# A dry run needs no gcloud, no key file and leaves no file behind.

DRY_RUN=false
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$DEPLOY_DIR/.." && pwd)"

# The actions/runner release runner VMs install unless RUNNER_VERSION and RUNNER_SHA256 say otherwise: a
# pinned version and the SHA-256 of its linux-x64 tarball, so no VM runs a download nobody checked. The
# release page lists each tarball's SHA-256: https://github.com/actions/runner/releases/tag/v2.337.0
# Bump both together. A pinned runner older than GitHub's minimum updates itself when it starts, which costs
# boot time; see "Controlling runner software updates" in
# https://docs.github.com/en/actions/hosting-your-own-runners/managing-self-hosted-runners/autoscaling-with-self-hosted-runners
DEFAULT_RUNNER_VERSION=2.337.0
DEFAULT_RUNNER_SHA256=70920811a4f8ad4328818682bca5c6469c1c942fab52448868071d0063816613

# The Cloud Run functions runtime of the instance deleter. The Node 20 runtime was decommissioned on 2026-10-30;
# nodejs24 is supported until 2028-10-31 (https://cloud.google.com/functions/docs/runtime-support).
# Keep it on the major version of .node-version, which CI, the image and package.json engines follow.
DEFAULT_FUNCTION_RUNTIME=nodejs24

die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 2
}

warn() {
  printf '%s: warning: %s\n' "$(basename "$0")" "$*" >&2
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

# if_exists DESCRIBE... -- CMD...: runs CMD (a deletion) only when DESCRIBE finds the resource.
if_exists() {
  local -a describe=()
  while (($# > 0)) && [[ "$1" != -- ]]; do describe+=("$1"); shift; done
  shift
  if [[ "$DRY_RUN" == true ]]; then
    printf 'if %s >/dev/null 2>&1; then %s; fi\n' "$(command_line "${describe[@]}")" "$(command_line "$@")"
  elif "${describe[@]}" >/dev/null 2>&1; then
    run "$@"
  else
    printf '= absent: %s\n' "$(command_line "${describe[@]}")" >&2
  fi
}

# for_each NAME CMD...: runs CMD once per word of the variable NAME (set by `capture`), with the word in
# place of every @@ITEM@@. A dry run prints the loop.
for_each() {
  local name="$1" item word
  shift
  local -a command=()
  if [[ "$DRY_RUN" == true ]]; then
    # shellcheck disable=SC2016 # printed for the dry-run script, not run
    printf 'for ITEM in ${%s}; do %s; done\n' "$name" "$(command_line "$@")"
    return
  fi
  for item in ${!name}; do
    command=()
    for word in "$@"; do command+=("${word//@@ITEM@@/$item}"); done
    run "${command[@]}"
  done
}

# exists DESCRIBE...: whether a resource exists. A dry run assumes a project where nothing exists yet.
exists() {
  [[ "$DRY_RUN" == true ]] && return 1
  "$@" >/dev/null 2>&1
}

# capture NAME CMD...: runs a command and stores its output in the variable NAME. In a dry run, prints
# `NAME="$(CMD)"` and stores the placeholder @@NAME@@, which later commands print as "${NAME}".
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

# capture_optional NAME CMD...: as capture, but a command that fails (an API not enabled, nothing to read)
# stores '' instead of stopping the script.
capture_optional() {
  local name="$1" value
  shift
  if [[ "$DRY_RUN" == true ]]; then
    # shellcheck disable=SC2016 # the $( ) is printed for the dry-run script, not run
    printf '%s="$(%s 2>/dev/null || true)"\n' "$name" "$(command_line "$@")"
    printf -v "$name" '@@%s@@' "$name"
  else
    printf '+ %s\n' "$(command_line "$@")" >&2
    value="$("$@" 2>/dev/null || true)"
    printf -v "$name" '%s' "$value"
  fi
}

# is_placeholder VALUE: whether VALUE is a dry run's stand-in for a value read by an earlier command.
is_placeholder() {
  [[ "$1" =~ ^@@[A-Z][A-Z0-9_]*@@$ ]]
}

# note TEXT: a comment in the dry-run script, a progress line otherwise.
note() {
  if [[ "$DRY_RUN" == true ]]; then printf '# %s\n' "$*"; else printf '== %s\n' "$*" >&2; fi
}

# load_env_file FILE: sources FILE's KEY=VALUE lines and exports them, except for names the environment
# already sets (even to ''): the environment wins, so `PROJECT_ID=other deploy/x.sh --env-file f` and the
# values deploy/all.sh hands from one step to the next (service URLs, the secret version, template names)
# override the file.
load_env_file() {
  local file="$1" name
  local -A keep=()
  while IFS= read -r name; do
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [[ "$(declare -p "$name" 2>/dev/null)" =~ ^declare\ -[a-zA-Z]*r ]] && continue
    keep["$name"]="${!name}"
  done < <(compgen -e)
  set -a
  # shellcheck disable=SC1090
  . "$file"
  set +a
  for name in "${!keep[@]}"; do
    printf -v "$name" '%s' "${keep[$name]}"
    export "${name?}"
  done
}

# Parses the options every script has. Sets DRY_RUN; leaves other arguments in REMAINING_ARGS.
# --env-file FILE is sourced (KEY=VALUE lines); the environment wins over it (see load_env_file).
parse_common_options() {
  REMAINING_ARGS=()
  while (($# > 0)); do
    case "$1" in
      --dry-run) DRY_RUN=true ;;
      -h | --help) usage; exit 0 ;;
      --env-file)
        [[ -f "${2:-}" && -r "${2:-}" ]] || die "--env-file needs a readable file"
        load_env_file "$2"
        shift
        ;;
      --env-file=*)
        [[ -f "${1#--env-file=}" && -r "${1#--env-file=}" ]] || die "--env-file needs a readable file"
        load_env_file "${1#--env-file=}"
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
    if [[ "${NEEDS_GCLOUD:-true}" == true ]]; then
      command -v gcloud >/dev/null || die "gcloud is not installed (use --dry-run to see the commands)"
    fi
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

# Variables of earlier versions that would now be ignored; a deployment that still sets one would not get
# what its file says, so it stops and names the replacement.
refuse_obsolete_variables() {
  local name problems=()
  for name in RUNNER_SA_NAME RUNNER_SA_EMAIL RUNNER_LABELS RUNNER_GROUP; do
    [[ -n "${!name:-}" ]] && problems+=("$name (now per trust level: ${name}_<LEVEL>, see docs/deploy.md)")
  done
  ((${#problems[@]} == 0)) || die "no longer used: ${problems[*]}"
}

# Defaults shared by all scripts. Every name can be overridden from the environment or --env-file.
load_defaults() {
  require PROJECT_ID REGION
  [[ "$PROJECT_ID" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "PROJECT_ID '$PROJECT_ID' is not a project id"
  [[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "REGION '$REGION' is not a region such as us-central1"
  refuse_obsolete_variables
  : "${TOKEN_PROXY_SERVICE:=gh-token-proxy}"
  : "${INSTANCE_DELETER_NAME:=gh-instance-deleter}"
  : "${PROXY_SA_NAME:=gh-token-proxy}"
  : "${DELETER_SA_NAME:=gh-instance-deleter}"
  : "${GITHUB_SECRET_NAME:=gh-runner-github-credential}"
  : "${DELETER_ROLE_ID:=ghRunnerInstanceDeleter}"
  : "${AR_REPOSITORY:=gce-github-runners}"
  : "${BUILD_BUCKET:=${PROJECT_ID}-gh-runners-build}"
  : "${FUNCTION_RUNTIME:=$DEFAULT_FUNCTION_RUNTIME}"
  : "${TRUST_LEVELS:=presubmit postsubmit}"
  : "${RUNNER_MIG_PREFIX:=gh-runner-}"
  : "${IMAGE_TAG:=$(git -C "$REPO_DIR" rev-parse --short=12 HEAD 2>/dev/null || echo latest)}"
  : "${IMAGE:=${REGION}-docker.pkg.dev/${PROJECT_ID}/${AR_REPOSITORY}/gce-github-runners:${IMAGE_TAG}}"
  [[ "$FUNCTION_RUNTIME" =~ ^nodejs[0-9]+$ ]] || die "FUNCTION_RUNTIME '$FUNCTION_RUNTIME' is not a runtime such as nodejs24"
  [[ "$RUNNER_MIG_PREFIX" =~ ^[a-z][-a-z0-9]*-$ ]] ||
    die "RUNNER_MIG_PREFIX '$RUNNER_MIG_PREFIX' must be lowercase letters, digits and '-', ending in '-'"
  [[ "$BUILD_BUCKET" =~ ^[a-z0-9][-_a-z0-9]{1,61}[a-z0-9]$ ]] || die "BUILD_BUCKET '$BUILD_BUCKET' is not a bucket name"
  # How the runner MIGs are sized: by the autoscaler service (services/autoscaler: one VM per queued job,
  # created by name with the MIG's createInstances; the MIGs have no Compute autoscaler), or, as before it
  # existed, by a Compute autoscaler on CPU that only scales out (cpu).
  : "${RUNNER_SCALING:=autoscaler-service}"
  [[ "$RUNNER_SCALING" == autoscaler-service || "$RUNNER_SCALING" == cpu ]] ||
    die "RUNNER_SCALING must be autoscaler-service or cpu, not '$RUNNER_SCALING'"
  : "${AUTOSCALER_SERVICE:=gh-autoscaler}"
  : "${AUTOSCALER_SA_NAME:=gh-autoscaler}"
  : "${SCHEDULER_SA_NAME:=gh-autoscaler-scheduler}"
  : "${AUTOSCALER_ROLE_ID:=ghRunnerAutoscaler}"
  : "${RECONCILE_JOB_NAME:=gh-autoscaler-reconcile}"
  : "${WEBHOOK_SECRET_NAME:=gh-runner-webhook-secret}"
  # The fleet status page (deploy/fleet-status.sh): its service, its account and its read-only role.
  : "${FLEET_STATUS_SERVICE:=gh-fleet-status}"
  : "${FLEET_STATUS_SA_NAME:=gh-fleet-status}"
  : "${FLEET_VIEWER_ROLE_ID:=ghRunnerFleetViewer}"
  PROXY_SA_EMAIL="${PROXY_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  DELETER_SA_EMAIL="${DELETER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  AUTOSCALER_SA_EMAIL="${AUTOSCALER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  SCHEDULER_SA_EMAIL="${SCHEDULER_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  STATUS_SA_EMAIL="${FLEET_STATUS_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"
  BUILD_SA_EMAIL=""
  if [[ -n "${BUILD_SA_NAME:-}" ]]; then BUILD_SA_EMAIL="${BUILD_SA_NAME}@${PROJECT_ID}.iam.gserviceaccount.com"; fi
  : "${BUILD_SERVICE_ACCOUNT:=$BUILD_SA_EMAIL}"
  if [[ -n "$BUILD_SERVICE_ACCOUNT" ]]; then check_service_account_email "$BUILD_SERVICE_ACCOUNT" BUILD_SERVICE_ACCOUNT; fi
  load_trust_levels
  runner_invoker_members
}

check_service_account_email() {
  [[ "$1" =~ ^[a-z0-9][a-z0-9.-]*@[a-z0-9.-]+\.gserviceaccount\.com$ ]] ||
    die "$2: '$1' is not a service account email"
}

# The trust levels (TRUST_LEVELS, default "presubmit postsubmit"): one runner service account, instance
# template, MIG and caller-policy rule each, so a VM that runs untrusted pull-request code can never register
# as, or be mistaken for, a runner of trusted jobs. Sets the array LEVELS.
load_trust_levels() {
  local level
  LEVELS=()
  for level in ${TRUST_LEVELS//,/ }; do
    [[ "$level" =~ ^[a-z][a-z0-9]{0,19}$ ]] ||
      die "TRUST_LEVELS: '$level' must be lowercase letters and digits, starting with a letter, at most 20"
    [[ " ${LEVELS[*]-} " != *" $level "* ]] || die "TRUST_LEVELS: '$level' is listed twice"
    LEVELS+=("$level")
  done
  ((${#LEVELS[@]} > 0)) || die "TRUST_LEVELS lists no trust level"
}

# level_setting LEVEL NAME DEFAULT: the value of NAME_<LEVEL> (e.g. RUNNER_GROUP_PRESUBMIT), else DEFAULT.
level_setting() {
  local var="${2}_${1^^}"
  printf '%s' "${!var:-$3}"
}

# The per-level names. Each can be overridden with the variable named in level_setting's second argument.
runner_sa_name() { level_setting "$1" RUNNER_SA_NAME "gh-runner-$1"; }
runner_sa_email() { printf '%s@%s.iam.gserviceaccount.com' "$(runner_sa_name "$1")" "$PROJECT_ID"; }
runner_group() { level_setting "$1" RUNNER_GROUP "$1"; }
runner_labels() { level_setting "$1" RUNNER_LABELS "self-hosted,linux,x64,$1"; }
# The trust rule the VMs' job-started hook enforces (deploy/vm/README.md, "Trust levels"). The two standard
# levels have defaults: presubmit runs pull requests and merge queue runs, postsubmit pushes, schedules and
# manual runs. Any other level must set RUNNER_ALLOWED_EVENTS_<LEVEL>: a VM without a rule takes no job.
runner_allowed_events() {
  local fallback=""
  case "$1" in
    presubmit) fallback="pull_request,merge_group" ;;
    postsubmit) fallback="push,schedule,workflow_dispatch" ;;
  esac
  level_setting "$1" RUNNER_ALLOWED_EVENTS "$fallback"
}
runner_mig_name() { printf '%s%s' "$RUNNER_MIG_PREFIX" "$1"; }
# The level's MIG as the autoscaler's pools name it: projects/P/regions/R/instanceGroupManagers/NAME, or
# projects/P/zones/Z/... for zonal MIGs (RUNNER_ZONE), as deploy/runner-mig.sh creates them.
runner_mig_ref() {
  if [[ -n "${RUNNER_ZONE:-}" ]]; then
    printf 'projects/%s/zones/%s/instanceGroupManagers/%s' "$PROJECT_ID" "$RUNNER_ZONE" "$(runner_mig_name "$1")"
  else
    printf 'projects/%s/regions/%s/instanceGroupManagers/%s' "$PROJECT_ID" "$REGION" "$(runner_mig_name "$1")"
  fi
}

# require_level LEVEL: dies unless LEVEL is one of TRUST_LEVELS.
require_level() {
  [[ " ${LEVELS[*]} " == *" $1 "* ]] || die "trust level '$1' is not in TRUST_LEVELS (${LEVELS[*]})"
}

# The regex the instance deleter's ALLOWED_MIG_PATTERN defaults to: exactly the MIGs of the trust levels.
default_mig_pattern() {
  local IFS='|'
  printf '%s(%s)' "$RUNNER_MIG_PREFIX" "${LEVELS[*]}"
}

# The members that may invoke the services: the runner VMs' service accounts (one per trust level) and
# nobody else. Sets INVOKER_MEMBERS from the trust levels plus RUNNER_INVOKER_SA_EMAILS (more runner
# accounts, comma- or space-separated). Anything but a service account email is refused, so allUsers,
# allAuthenticatedUsers, users, groups and domains can never be granted the invoker role here.
runner_invoker_members() {
  local email level more="${RUNNER_INVOKER_SA_EMAILS:-}"
  local -a emails=()
  for level in "${LEVELS[@]}"; do emails+=("$(runner_sa_email "$level")"); done
  for email in "${emails[@]}" ${more//,/ }; do
    [[ "$email" =~ ^[a-z0-9][a-z0-9.-]*@[a-z0-9.-]+\.gserviceaccount\.com$ ]] ||
      die "'$email' is not a service account email; only runner VMs' service accounts may invoke the services"
  done
  INVOKER_MEMBERS=()
  for email in "${emails[@]}" ${more//,/ }; do INVOKER_MEMBERS+=("serviceAccount:$email"); done
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

# Directories this run made for files it generates (function source, startup script): removed when the
# script exits, dry run included. A DEPLOY_WORK_DIR the user names is theirs and is kept.
CLEANUP_PATHS=()
cleanup_paths() {
  local path
  for path in "${CLEANUP_PATHS[@]+"${CLEANUP_PATHS[@]}"}"; do rm -rf -- "$path"; done
  CLEANUP_PATHS=()
}
trap cleanup_paths EXIT

# ensure_work_dir: sets WORK_DIR to DEPLOY_WORK_DIR, or to a new temporary directory removed at exit.
# (Not `$(...)`: a subshell could not register the directory for removal.)
ensure_work_dir() {
  if [[ -n "${DEPLOY_WORK_DIR:-}" ]]; then
    WORK_DIR="$DEPLOY_WORK_DIR"
    mkdir -p "$WORK_DIR"
  elif [[ -z "${WORK_DIR:-}" ]]; then
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gce-github-runners-deploy.XXXXXX")"
    CLEANUP_PATHS+=("$WORK_DIR")
  fi
}

# The startup script of runner VMs (and of the VM bake-image.sh bakes from): deploy/runner-startup.sh with
# deploy/vm/ (scripts and systemd units) embedded as a base64 tar.gz.
generate_startup_script() {
  local out="$1" bundle template
  [[ -f "$DEPLOY_DIR/vm/register.sh" && -d "$DEPLOY_DIR/vm/systemd" ]] ||
    die "deploy/vm/ has no register.sh or systemd/: nothing to install on the VMs"
  bundle="$(tar -C "$DEPLOY_DIR/vm" --sort=name --owner=0 --group=0 --mtime=@0 --exclude=README.md \
    -czf - . | base64 -w0)"
  template="$(<"$DEPLOY_DIR/runner-startup.sh")"
  printf '%s\n' "${template/@VM_BUNDLE@/$bundle}" >"$out"
  # Compute Engine takes at most 256 KiB per metadata value.
  (($(wc -c <"$out") < 256 * 1024)) || die "the startup script is over 256 KiB"
}

# The actions/runner release to install, from RUNNER_VERSION and RUNNER_SHA256: the pinned default, or a
# version the operator names together with its checksum. `latest` is refused: a moving target cannot be
# checked. Sets RUNNER_VERSION and RUNNER_SHA256.
resolve_runner_release() {
  if [[ -z "${RUNNER_VERSION:-}" ]]; then
    RUNNER_VERSION="$DEFAULT_RUNNER_VERSION"
    [[ -n "${RUNNER_SHA256:-}" ]] || RUNNER_SHA256="$DEFAULT_RUNNER_SHA256"
  fi
  [[ "$RUNNER_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "RUNNER_VERSION '$RUNNER_VERSION' is not a release version such as $DEFAULT_RUNNER_VERSION (latest cannot be checked)"
  [[ -n "${RUNNER_SHA256:-}" ]] ||
    die "RUNNER_VERSION=$RUNNER_VERSION needs RUNNER_SHA256: the SHA-256 of actions-runner-linux-x64-$RUNNER_VERSION.tar.gz from https://github.com/actions/runner/releases/tag/v$RUNNER_VERSION"
  RUNNER_SHA256="${RUNNER_SHA256,,}"
  [[ "$RUNNER_SHA256" =~ ^[0-9a-f]{64}$ ]] || die "RUNNER_SHA256 is not a SHA-256 (64 hex digits)"
}

# Warns about principals that can invoke every Cloud Run service of the project through a role granted on
# the project: the service's own policy (checked by grant_run_invoker) is not all that decides who may call
# it. Owners and Editors hold run.routes.invoke, and so may runtime service accounts (the Compute Engine
# default account is an Editor in many projects). Roles are looked up once each, so custom roles are judged
# by what they contain. Google's own service agents are skipped. Folder and organization bindings are not
# read here; docs/deploy.md shows the commands that read them. Runs once per script.
warn_inherited_invokers() {
  [[ -z "${INHERITED_INVOKERS_CHECKED:-}" ]] || return 0
  INHERITED_INVOKERS_CHECKED=1
  note "who else can invoke the services: project-level roles holding run.routes.invoke"
  capture PROJECT_BINDINGS gcloud projects get-iam-policy "$PROJECT_ID" '--flatten=bindings[].members' \
    '--format=value(bindings.role,bindings.members)'
  [[ "$DRY_RUN" == true ]] && return 0
  local role member permissions found=()
  local -A grants=()
  while read -r role member; do
    [[ -n "$role" && -n "$member" ]] || continue
    case "$member" in
      serviceAccount:service-[0-9]*@*.iam.gserviceaccount.com | serviceAccount:[0-9]*@cloudservices.gserviceaccount.com) continue ;;
    esac
    if [[ -z "${grants[$role]:-}" ]]; then
      permissions="$(describe_role_permissions "$role")"
      if [[ ";${permissions};" == *";run.routes.invoke;"* ]]; then grants[$role]=yes; else grants[$role]=no; fi
    fi
    [[ "${grants[$role]}" == yes ]] && found+=("$member ($role)")
  done <<<"$PROJECT_BINDINGS"
  if ((${#found[@]} > 0)); then
    warn "besides the invokers granted on each service, these principals can invoke every Cloud Run service" \
      "and function of $PROJECT_ID through project-level roles:"
    printf '  %s\n' "${found[@]}" >&2
    printf '  Deploy into a project of its own, where only its administrators hold such roles (docs/deploy.md, "A project of its own").\n' >&2
  fi
}

# describe_role_permissions ROLE: the role's permissions, ';'-separated (nothing when it cannot be read).
# ROLE is a predefined role (roles/NAME) or a custom one (projects/P/roles/ID, organizations/O/roles/ID).
describe_role_permissions() {
  local role="$1" format='--format=value(includedPermissions)'
  if [[ "$role" =~ ^projects/([^/]+)/roles/([^/]+)$ ]]; then
    gcloud iam roles describe "${BASH_REMATCH[2]}" --project="${BASH_REMATCH[1]}" "$format" 2>/dev/null || true
  elif [[ "$role" =~ ^organizations/([^/]+)/roles/([^/]+)$ ]]; then
    gcloud iam roles describe "${BASH_REMATCH[2]}" --organization="${BASH_REMATCH[1]}" "$format" 2>/dev/null || true
  else
    gcloud iam roles describe "$role" "$format" 2>/dev/null || true
  fi
}

# Grants roles/run.invoker on a Cloud Run service (or a 2nd gen function's service) to INVOKER_MEMBERS, then
# checks that nobody else holds it: a binding added by hand (allUsers) would defeat the ingress and IAM
# design, and add-iam-policy-binding never removes one. Then warns about project-level invokers.
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
  if [[ "$DRY_RUN" != true ]]; then
    for extra in $RUN_INVOKERS; do
      for member in "${INVOKER_MEMBERS[@]}"; do [[ "$extra" == "$member" ]] && continue 2; done
      die "$service: $extra also holds roles/run.invoker; remove it with: gcloud run services" \
        "remove-iam-policy-binding $service --project=$PROJECT_ID --region=$REGION --member=$extra" \
        "--role=roles/run.invoker"
    done
  fi
  warn_inherited_invokers
}

# deploy_run_service NAME SA_EMAIL URL_VAR [MORE_DEPLOY_FLAGS...] -- KEY=VALUE...
# Deploys the image as a Cloud Run service that only the runner VMs can reach and call:
#   --ingress=internal           requests from the project's VPC networks only (not the internet);
#   --no-allow-unauthenticated   Cloud Run checks the caller's identity token and roles/run.invoker;
# and sets AUTH_AUDIENCE, which the service also checks, to the service's own URL. A new service's URL is
# known only after its first deploy, so that deploy carries an audience no token can have (the service
# refuses every caller), then the URL is read and the variable updated. When the service exists, its URL is
# read first and one deploy suffices. Stores the URL in the variable named URL_VAR.
deploy_run_service() { deploy_run_service_with_access internal "$@"; }

# deploy_run_service_with_access ACCESS NAME SA_EMAIL URL_VAR [MORE_DEPLOY_FLAGS...] -- KEY=VALUE...
# As deploy_run_service, with ACCESS one of:
#   internal                 --ingress=internal --no-allow-unauthenticated (the proxy, the deleter);
#   public                   --ingress=all --allow-unauthenticated: only for the autoscaler, whose /webhook
#                            GitHub calls from the internet without a Google identity; the service verifies
#                            every request itself (webhook signature, identity token) and serves nothing else;
#   public-no-invoker-check  --ingress=all --no-invoker-iam-check: the same without an allUsers binding, for
#                            organizations whose domain restricted sharing policy refuses allUsers
#                            (https://cloud.google.com/run/docs/authenticating/public).
deploy_run_service_with_access() {
  local access="$1" name="$2" service_account="$3" url_var="$4" fresh=false audience
  shift 4
  local -a extra=() access_flags=()
  case "$access" in
    internal) access_flags=(--ingress=internal --no-allow-unauthenticated) ;;
    public) access_flags=(--ingress=all --allow-unauthenticated) ;;
    public-no-invoker-check) access_flags=(--ingress=all --no-invoker-iam-check) ;;
    *) die "deploy_run_service_with_access: unknown access '$access'" ;;
  esac
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
    --service-account="$service_account" "${access_flags[@]}" \
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

# remove_unconditional_binding ROLE MEMBER: removes the project binding of ROLE to MEMBER that has no IAM
# condition, if an earlier deploy left one: beside the conditional binding it would still grant the role
# everywhere. Nothing happens when there is none.
remove_unconditional_binding() {
  local role="$1" member="$2"
  note "remove an unconditional binding of the role left by an earlier deploy, if any"
  if [[ "$DRY_RUN" == true ]]; then
    printf '%s 2>/dev/null || true\n' "$(command_line gcloud projects remove-iam-policy-binding "$PROJECT_ID" \
      --member="$member" --role="$role" --condition=None)"
  elif gcloud projects remove-iam-policy-binding "$PROJECT_ID" --member="$member" --role="$role" \
    --condition=None >/dev/null 2>&1; then
    printf '+ removed the unconditional binding of %s\n' "$role" >&2
  fi
}

# Reads deploy/deleter-role-permissions.txt: one permission per line, '#' comments. Prints them
# comma-separated, in the file's order.
deleter_role_permissions() { role_permissions "$DEPLOY_DIR/deleter-role-permissions.txt"; }

# role_permissions FILE: the permissions a custom role's file lists (one per line, '#' comments),
# comma-separated, in the file's order.
role_permissions() {
  local file="$1" line list=""
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

# The IAM condition that narrows the deleter's project-level custom role to the runner MIGs and their VMs:
# for Compute Engine instances and instance group managers, the name must start with RUNNER_MIG_PREFIX (a
# MIG's VMs are named after it); other resources the role's permissions touch (zone and region operations,
# autoscalers) are not narrowed, as their names say nothing about the MIG. Written to the syntax of
# https://cloud.google.com/iam/docs/conditions-resource-attributes (resource.type, resource.name.extract).
deleter_role_condition_expression() {
  local prefix="$RUNNER_MIG_PREFIX"
  printf '%s' "resource.type != 'compute.googleapis.com/Instance'" \
    " && resource.type != 'compute.googleapis.com/InstanceGroupManager'" \
    " && resource.type != 'compute.googleapis.com/RegionInstanceGroupManager'" \
    " || resource.name.extract('/instances/{name}').startsWith('$prefix')" \
    " || resource.name.extract('/instanceGroupManagers/{name}').startsWith('$prefix')"
}

# The caller policy of the token proxy for the trust levels, as one line of JSON (the format of
# services/token-proxy/src/policy.ts). One rule per level: only that level's service account, from this
# project, with an instance name of that level's MIG, may get a JIT config, for the allowed scopes, in that
# level's runner group with that level's labels. The instance names are those a MIG gives
# (<MIG>-<4 characters>) and those the autoscaler service requests (<MIG>-<job id>, and <MIG>-<job id>-<n>
# when it requests a VM for a job again; services/autoscaler/src/instance-name.ts). No rule may use /register or /remove (jitOnly), unless the
# VMs register with tokens (RUNNER_MODE=token, the less safe mode deploy/vm/README.md describes).
caller_policy_json() {
  local level
  local -a args=()
  for level in "${LEVELS[@]}"; do
    args+=("$level" "$(runner_sa_email "$level")" "$(runner_mig_name "$level")" "$(runner_group "$level")"
      "$(runner_labels "$level")")
  done
  command -v node >/dev/null || die "node is needed to write the caller policy (JSON)"
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const [project, scopesText, mode, ...rest] = process.argv.slice(1);
    const scopes = scopesText.split(";").map((s) => s.trim()).filter((s) => s !== "");
    const rules = [];
    for (let i = 0; i < rest.length; i += 5) {
      const [level, email, mig, group, labelsText] = rest.slice(i, i + 5);
      const labels = labelsText.split(",").map((s) => s.trim()).filter((s) => s !== "");
      rules.push({
        name: level,
        callers: { serviceAccounts: [email], projects: [project], instanceNames: [`match:${mig}-[a-z0-9]+(-[0-9]{1,3})?`] },
        scopes,
        runnerGroups: [group],
        labels,
        defaultRunnerGroup: group,
        defaultLabels: labels,
        jitOnly: mode !== "token",
      });
    }
    process.stdout.write(JSON.stringify({ rules }));
  ' "$PROJECT_ID" "$ALLOWED_SCOPES" "${RUNNER_MODE:-jit}" "${args[@]}"
}

# The IAM condition that narrows the autoscaler's project-level custom role to the runner MIGs: for instance
# group managers (zonal and regional), the name must start with RUNNER_MIG_PREFIX. Zone and region
# operations, which the role also reads, are not narrowed: their names say nothing about the MIG. The syntax
# is that of deleter_role_condition_expression, with the same caveat (docs/deploy.md, checklist item 6).
autoscaler_role_condition_expression() {
  printf '%s' "resource.type != 'compute.googleapis.com/InstanceGroupManager'" \
    " && resource.type != 'compute.googleapis.com/RegionInstanceGroupManager'" \
    " || resource.name.extract('/instanceGroupManagers/{name}').startsWith('$RUNNER_MIG_PREFIX')"
}

# check_pool_scopes VALUE WHAT: every ';'-separated entry is an org, owner/repo or match:REGEX, the forms an
# autoscaler pool's `scopes` take (services/autoscaler/src/pool-config.ts); enterprise:SLUG is not one.
check_pool_scopes() {
  local value="$1" what="$2" entry
  local -a entries=()
  IFS=';' read -r -a entries <<<"$value"
  for entry in "${entries[@]}"; do
    entry="${entry#"${entry%%[![:space:]]*}"}"
    entry="${entry%"${entry##*[![:space:]]}"}"
    [[ -z "$entry" || "$entry" == match:?* || "$entry" =~ ^[A-Za-z0-9-]+(/[A-Za-z0-9._-]+)?$ ]] ||
      die "$what: '$entry' is not an org, owner/repo or match:REGEX (the pools serve jobs of orgs and" \
        "repositories; set POOL_SCOPES)"
  done
}

# The autoscaler's pools for the trust levels, as one line of JSON (the format of
# services/autoscaler/src/pool-config.ts). One pool per level, in TRUST_LEVELS order (the first pool whose
# labels cover a job's labels gets it, so a job naming only shared labels gets a VM of the first level, by
# default presubmit, the less trusted one):
#   labels             RUNNER_LABELS_<LEVEL>, the labels the level's VMs register with;
#   migs               the level's MIG (deploy/runner-mig.sh), the only one: a stock-out cannot move to another;
#   runnerScope        RUNNER_SCOPE, where the VMs register; runnerGroup RUNNER_GROUP_<LEVEL>;
#   scopes             POOL_SCOPES_<LEVEL>, else POOL_SCOPES, else ALLOWED_SCOPES (';'-separated);
#   maxRunners         POOL_MAX_RUNNERS_<LEVEL>, else POOL_MAX_RUNNERS, else RUNNER_MIG_MAX, else 10;
#   instanceNamePrefix the MIG's name, so VMs are <MIG>-<job id>, names the caller policy accepts.
autoscaler_pools_json() {
  local level scopes max mig
  local -a args=()
  require RUNNER_SCOPE
  [[ "$RUNNER_SCOPE" =~ ^[A-Za-z0-9-]+(/[A-Za-z0-9._-]+)?$ ]] ||
    die "RUNNER_SCOPE '$RUNNER_SCOPE': the autoscaler's pools need an org or owner/repo (their runners are listed there)"
  for level in "${LEVELS[@]}"; do
    scopes="$(level_setting "$level" POOL_SCOPES "${POOL_SCOPES:-${ALLOWED_SCOPES:-}}")"
    [[ -n "${scopes//[;[:space:]]/}" ]] ||
      die "set POOL_SCOPES (or ALLOWED_SCOPES): the orgs and repositories whose jobs the pools serve"
    check_pool_scopes "$scopes" "POOL_SCOPES for $level"
    max="$(level_setting "$level" POOL_MAX_RUNNERS "${POOL_MAX_RUNNERS:-${RUNNER_MIG_MAX:-10}}")"
    if ! [[ "$max" =~ ^[1-9][0-9]{0,4}$ ]] || ((max > 10000)); then
      die "POOL_MAX_RUNNERS for $level: '$max' is not a whole number from 1 to 10000"
    fi
    mig="$(runner_mig_name "$level")"
    # The service leaves room for -<19-digit job id>-<attempt> in 63 characters.
    ((${#mig} <= 39)) || die "the MIG name $mig is over 39 characters: shorten RUNNER_MIG_PREFIX or the level"
    args+=("$level" "$(runner_mig_ref "$level")" "$mig" "$(runner_group "$level")" "$(runner_labels "$level")"
      "$scopes" "$max")
  done
  command -v node >/dev/null || die "node is needed to write the autoscaler's pools (JSON)"
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const [runnerScope, ...rest] = process.argv.slice(1);
    const list = (text, separator) => text.split(separator).map((s) => s.trim()).filter((s) => s !== "");
    const pools = [];
    for (let i = 0; i < rest.length; i += 7) {
      const [name, mig, prefix, group, labels, scopes, max] = rest.slice(i, i + 7);
      pools.push({
        name,
        scopes: list(scopes, ";"),
        labels: list(labels, ","),
        migs: [mig],
        runnerScope,
        runnerGroup: group,
        maxRunners: Number(max),
        instanceNamePrefix: prefix,
      });
    }
    process.stdout.write(JSON.stringify({ pools }));
  ' "$RUNNER_SCOPE" "${args[@]}"
}

# github_write_budget: splits the GitHub App installation's secondary-limit budget between the services that
# spend it, and sets the write spacing each service is deployed with:
#   PROXY_WRITE_INTERVAL_MS       the token proxy's GITHUB_WRITE_INTERVAL_MS, per instance
#   AUTOSCALER_WRITE_INTERVAL_MS  the autoscaler's GITHUB_WRITE_INTERVAL_MS (redeliveries, runner deletes)
# GitHub allows an installation 900 points a minute on REST endpoints; a GET costs 1 point, a POST, PATCH,
# PUT or DELETE 5 (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits).
# Every token-proxy instance and the autoscaler (its reaper included) write with the same installation, so
# each gets a fixed share, in points a minute:
#   GITHUB_POINTS_PROXY       default 600: all token-proxy instances together (JIT configs, tokens, deletes)
#   GITHUB_POINTS_AUTOSCALER  default 150: the autoscaler's writes
#   GITHUB_POINTS_READS       default 150: kept for reads (the autoscaler's listings, the proxy's lookups)
# and the shares must add up to at most 900. A service's writes are spaced so that all its instances
# together stay within its share, even when every instance writes at full pace:
#   interval_ms = ceil(60000 ms * 5 points * max_instances / share_points)
# With the defaults: proxy ceil(60000 * 5 * 3 / 600) = 1500 ms per instance (3 instances: 2 writes a second
# in all, 600 points a minute); autoscaler ceil(60000 * 5 * 1 / 150) = 2000 ms (150 points a minute).
# Fewer proxy instances give each one more: PROXY_MAX_INSTANCES=1 spaces its writes 500 ms apart.
# GITHUB_WRITE_INTERVAL_MS, when set, is the proxy's interval as given, checked against its share.
GITHUB_POINTS_PER_MINUTE=900
GITHUB_POINTS_PER_WRITE=5
github_write_budget() {
  local proxy="${GITHUB_POINTS_PROXY:-600}" autoscaler="${GITHUB_POINTS_AUTOSCALER:-150}"
  local reads="${GITHUB_POINTS_READS:-150}" instances="${PROXY_MAX_INSTANCES:-3}" name
  for name in GITHUB_POINTS_PROXY GITHUB_POINTS_AUTOSCALER GITHUB_POINTS_READS PROXY_MAX_INSTANCES; do
    if [[ -n "${!name:-}" && ! "${!name}" =~ ^[1-9][0-9]{0,5}$ ]]; then
      die "$name must be a whole number from 1, not '${!name}'"
    fi
  done
  if ((proxy + autoscaler + reads > GITHUB_POINTS_PER_MINUTE)); then
    die "GITHUB_POINTS_PROXY ($proxy) + GITHUB_POINTS_AUTOSCALER ($autoscaler) + GITHUB_POINTS_READS ($reads) = $((proxy + autoscaler + reads)) points a minute, more than the $GITHUB_POINTS_PER_MINUTE GitHub allows an installation"
  fi
  # ceil(a / b) = (a + b - 1) / b in integers.
  local per_minute=$((60000 * GITHUB_POINTS_PER_WRITE))
  PROXY_WRITE_INTERVAL_MS=$(((per_minute * instances + proxy - 1) / proxy))
  AUTOSCALER_WRITE_INTERVAL_MS=$(((per_minute + autoscaler - 1) / autoscaler))
  if [[ -n "${GITHUB_WRITE_INTERVAL_MS:-}" ]]; then
    [[ "$GITHUB_WRITE_INTERVAL_MS" =~ ^[0-9]+$ ]] || die "GITHUB_WRITE_INTERVAL_MS must be a number of ms"
    ((GITHUB_WRITE_INTERVAL_MS >= PROXY_WRITE_INTERVAL_MS)) ||
      die "GITHUB_WRITE_INTERVAL_MS=$GITHUB_WRITE_INTERVAL_MS lets $instances proxy instances spend more than their $proxy points a minute: use at least $PROXY_WRITE_INTERVAL_MS (or raise GITHUB_POINTS_PROXY, or lower PROXY_MAX_INSTANCES)"
    PROXY_WRITE_INTERVAL_MS=$GITHUB_WRITE_INTERVAL_MS
  fi
}
