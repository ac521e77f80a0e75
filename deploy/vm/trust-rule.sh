# shellcheck shell=bash
#
# The VM's trust rule: which jobs its runner may run. Sourced (after lib.sh) by register.sh, which refuses
# to start a runner whose rule is missing or broken, and by job-started.sh, which judges every job with it
# before any of the job's steps runs. Never run.
#
# Instance attributes (README.md has the trust model in one table):
#   github-runner-allowed-events            (required) the events (GITHUB_EVENT_NAME) whose jobs may run,
#                                           e.g. `push,schedule,workflow_dispatch`; `*` allows every event,
#                                           and must be said explicitly: without the attribute every job is
#                                           refused (fail closed)
#   github-runner-allowed-refs              patterns; when set, the job's GITHUB_REF must match one, e.g.
#                                           `refs/heads/main refs/tags/v[0-9.]+`
#   github-runner-allowed-repositories      patterns; when set, the job's GITHUB_REPOSITORY (owner/repo) must
#                                           match one, case-insensitively, e.g. `my-org/app my-org/infra-.*`
#   github-runner-allow-fork-pull-requests  `true` runs jobs started by code from a fork (pull requests whose
#                                           head repository is not the base repository, and workflow_run
#                                           events after such runs); default `false`
#
# Lists are separated by commas or whitespace: event names and repository names never hold either, and
# git forbids whitespace in a ref name. A pattern is a POSIX extended regular expression matched against the
# whole value, as if written `^(pattern)$`, in the C locale: `refs/heads/main` does not match
# `refs/heads/main2`, and `my-org/.*` does not match `evil-my-org/x`. A `.` matches any character: escape it
# (`my-org/app\.js`) to mean a dot. As a comma separates entries, a pattern cannot hold one: write
# `[0-9]+` rather than `[0-9]{1,3}`, and `.` for the comma git allows in a branch name.
#
# Two events deserve a thought before they are listed. `pull_request_target` and `workflow_run` run the
# workflow of the base repository's default branch, with the repository's secrets and a token that can
# write, but a pull request (possibly from a fork) or an earlier run caused them, and workflows often check
# out that code. They are allowed only where listed (or with `*`), and the fork rule applies to them too:
# their payload names the pull request's head repository or the triggering run's head repository.

# The rule, filled in by trust_rule_load.
TRUST_EVENTS=()
TRUST_REFS=()
TRUST_REPOSITORIES=()
TRUST_ALLOW_FORKS=false
TRUST_ANY_EVENT=false

# trust_split VALUE: the entries of a comma- or whitespace-separated list, one a line, empty ones dropped.
trust_split() {
  local -a entries=()
  local entry
  IFS=$', \t\n' read -r -d '' -a entries <<<"$1" || true
  for entry in "${entries[@]}"; do
    [[ -z $entry ]] || printf '%s\n' "$entry"
  done
}

# trust_match VALUE CASE PATTERN...: whether VALUE matches one of the patterns as a whole; CASE is
# `sensitive` or `insensitive`. Returns 0 (a match), 1 (none) or 2 (a pattern is not a valid extended
# regular expression; the first such one is printed).
trust_match() {
  local value=$1 case_mode=$2 pattern regex status result=1
  shift 2
  # The C locale: ranges like [a-z] mean ASCII letters, whatever the VM's locale.
  local LC_ALL=C
  if [[ $case_mode == insensitive ]]; then shopt -s nocasematch; fi
  for pattern in "$@"; do
    regex="^($pattern)$"
    status=0
    # shellcheck disable=SC2319 # the status of [[ ]] itself is wanted: 2 means an invalid regex
    [[ $value =~ $regex ]] || status=$?
    if ((status == 2)); then
      printf '%s\n' "$pattern"
      result=2
      break
    fi
    # `^(a)|(b)$` is valid but anchors only half of it: insist that the match is the whole value.
    if ((status == 0)) && [[ ${BASH_REMATCH[0]} == "$value" ]]; then
      result=0
      break
    fi
  done
  shopt -u nocasematch
  return "$result"
}

# trust_rule_load: reads the rule from the instance attributes. Prints every problem with it, one a line,
# and returns 1 when there is any; a metadata server that cannot be read ends the script (lib.sh's die).
trust_rule_load() {
  local events refs repositories forks entry invalid status
  local -a problems=()
  events=$(attribute github-runner-allowed-events)
  refs=$(attribute github-runner-allowed-refs)
  repositories=$(attribute github-runner-allowed-repositories)
  forks=$(attribute github-runner-allow-fork-pull-requests false)

  mapfile -t TRUST_EVENTS < <(trust_split "$events")
  mapfile -t TRUST_REFS < <(trust_split "$refs")
  mapfile -t TRUST_REPOSITORIES < <(trust_split "$repositories")

  if ((${#TRUST_EVENTS[@]} == 0)); then
    problems+=("$(missing_attribute github-runner-allowed-events): without it this VM refuses every job; list the events its jobs may come from (e.g. push,schedule,workflow_dispatch), or * for any")
  fi
  for entry in "${TRUST_EVENTS[@]}"; do
    if [[ $entry == '*' ]]; then
      TRUST_ANY_EVENT=true
    elif [[ ! $entry =~ ^[a-z_]+$ ]]; then
      problems+=("instance attribute github-runner-allowed-events: '$entry' is not an event name (lower case letters and _, e.g. workflow_dispatch) or *")
    fi
  done
  for entry in refs repositories; do
    local -n list="TRUST_${entry^^}"
    status=0
    invalid=$(trust_match '' sensitive "${list[@]}") || status=$?
    if ((status == 2)); then
      problems+=("instance attribute github-runner-allowed-$entry: '$invalid' is not a valid extended regular expression")
    fi
    unset -n list
  done
  case ${forks,,} in
    true) TRUST_ALLOW_FORKS=true ;;
    false) TRUST_ALLOW_FORKS=false ;;
    *) problems+=("instance attribute github-runner-allow-fork-pull-requests must be true or false, got '$forks'") ;;
  esac

  ((${#problems[@]} == 0)) && return 0
  printf '%s\n' "${problems[@]}"
  return 1
}

# trust_fork_of EVENT_PATH: prints `fork` when the event's payload says the job was started by code from a
# fork, `same` when not, `none` when the payload concerns no pull request or run, and `unreadable` when the
# file cannot be read as JSON. A pull request is from a fork when its head repository is not its base
# repository (other id or full name; a deleted head repository counts as a fork). `head.repo.fork` alone
# would not do: it says whether the head repository is itself a fork of something, which is also true for
# a pull request between two branches of a repository that is a fork.
trust_fork_of() {
  local path=$1
  if [[ -z $path || ! -r $path ]]; then
    echo unreadable
    return 0
  fi
  jq -r '
    def other(head; base):
      if head == null or base == null then true
      else (head.id != base.id)
        or ((head.full_name // "" | ascii_downcase) != (base.full_name // "" | ascii_downcase))
      end;
    if type != "object" then "unreadable"
    elif has("pull_request") then
      if other(.pull_request.head.repo; .pull_request.base.repo) then "fork" else "same" end
    elif has("workflow_run") then
      if other(.workflow_run.head_repository; .workflow_run.repository) then "fork" else "same" end
    else "none" end' <"$path" 2>/dev/null || echo unreadable
}

# trust_require WHAT VALUE CASE ATTRIBUTE [PATTERN]...: returns 0 when there is no pattern or VALUE matches
# one, else prints the refusal naming ATTRIBUTE and returns 1.
trust_require() {
  local what=$1 value=$2 case_mode=$3 attribute=$4
  shift 4
  if (($# == 0)) || trust_match "$value" "$case_mode" "$@" >/dev/null; then
    return 0
  fi
  echo "$what \"$value\" is not one this VM's runner may run jobs of ($attribute)"
  return 1
}

# trust_rule_judge EVENT REPOSITORY REF EVENT_PATH: returns 0 when the loaded rule allows the job, else
# prints which rule refuses it and returns 1.
trust_rule_judge() {
  local event=$1 repository=$2 ref=$3 event_path=$4 origin
  if [[ -z $event ]]; then
    echo 'the job has no GITHUB_EVENT_NAME, so no rule can allow it'
    return 1
  fi
  if ! $TRUST_ANY_EVENT && ! trust_match "${event,,}" sensitive "${TRUST_EVENTS[@]}" >/dev/null; then
    echo "event \"$event\" is not one this VM's runner may run (github-runner-allowed-events)"
    return 1
  fi

  origin=$(trust_fork_of "$event_path")
  case $event in
    pull_request | pull_request_target | pull_request_review | pull_request_review_comment | workflow_run)
      # These payloads must say where the code comes from; if they cannot be read, assume the worst.
      if [[ $origin == none || $origin == unreadable ]]; then
        echo "the $event payload (GITHUB_EVENT_PATH) cannot be read to tell whether the code comes from a fork"
        return 1
      fi
      ;;
  esac
  if [[ $origin == fork ]] && ! $TRUST_ALLOW_FORKS; then
    echo "the job was started by code from a fork (${event}), which this VM's runner may not run (github-runner-allow-fork-pull-requests)"
    return 1
  fi

  trust_require repository "$repository" insensitive github-runner-allowed-repositories \
    "${TRUST_REPOSITORIES[@]}" || return 1
  trust_require ref "$ref" sensitive github-runner-allowed-refs "${TRUST_REFS[@]}" || return 1
  return 0
}
