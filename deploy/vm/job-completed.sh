#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
#
# The runner's job-completed hook (ACTIONS_RUNNER_HOOK_JOB_COMPLETED, which register.sh writes into the
# runner's .env): removes what the job may have left behind, so nothing of it reaches whatever runs on this
# VM next (normally nothing: the runner is ephemeral and the VM deletes itself, so this is the second line).
#
# What it removes, as the runner's user (it cannot remove what is not the runner user's to remove):
# - the work folder's contents (the parent of RUNNER_TEMP: checkouts, downloaded actions, _temp), but not
#   the runner's own bookkeeping there (_PipelineMapping, _update, _temp/_runner_file_commands, which the
#   runner still reads after this hook);
# - the tool cache (RUNNER_TOOL_CACHE) only when instance attribute github-runner-clean-tool-cache is
#   `true`: images often bake tools into it for every job;
# - in each of JOB_CLEANUP_TEMP_DIRS (default `/tmp /var/tmp /dev/shm`), the entries owned by the runner's
#   user, except sockets and pipes and the .NET runtime's own (`.dotnet`, `dotnet-diagnostic-*`,
#   `clr-debug-pipe-*`), which the runner's processes still use.
#
# It reports counts only, never a file name or content: what a job leaves may be secret. It always exits 0,
# with a warning annotation when something could not be removed: the job's result is not this hook's to
# change, and the VM is deleted after its one job anyway.
# Environment: JOB_CLEANUP_TEMP_DIRS, and the retry settings in lib.sh (budget 30 s by default here).
set -euo pipefail

: "${RETRY_DEADLINE_SECONDS:=30}"
: "${RETRY_MAX_DELAY_SECONDS:=10}"
export RETRY_DEADLINE_SECONDS RETRY_MAX_DELAY_SECONDS

# shellcheck source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

warnings=()
warn() {
  warnings+=("$*")
}

# The uid whose files may be removed: the runner's user, who runs this hook.
uid=$(id -u)

# remove_entries DIR [NAME_TO_KEEP]...: removes every entry of DIR but those named, without following
# symlinks or crossing into other file systems (a job may have mounted something). Adds the number removed
# to `removed` and of those that could not be to `failed`.
removed=0
failed=0
remove_entries() {
  local dir=$1 entry name keep
  shift
  for entry in "$dir"/* "$dir"/.[!.]* "$dir"/..?*; do
    [[ -e $entry || -L $entry ]] || continue
    name=${entry##*/}
    for keep in "$@"; do
      [[ $name != "$keep" ]] || continue 2
    done
    if rm -rf --one-file-system -- "$entry" 2>/dev/null && [[ ! -e $entry && ! -L $entry ]]; then
      removed=$((removed + 1))
    else
      failed=$((failed + 1))
    fi
  done
}

# The work folder: RUNNER_TEMP is always <work folder>/_temp (actions/runner, HostContext.GetDirectory).
work=
if [[ ${RUNNER_TEMP:-} == /*/_temp ]] && work=$(cd -P -- "${RUNNER_TEMP%/_temp}" 2>/dev/null && pwd) &&
  [[ $work != / && -O $work ]]; then
  remove_entries "$work" _temp _tool _PipelineMapping _update
  if [[ -d $work/_temp ]]; then
    remove_entries "$work/_temp" _runner_file_commands
  fi
else
  warn "the work folder is unknown (RUNNER_TEMP is '${RUNNER_TEMP:-}', not <a directory of the runner's user>/_temp): it was not cleaned"
  work=
fi
work_removed=$removed work_failed=$failed

# The tool cache, only when asked. An unreadable attribute leaves it (the cautious choice here).
removed=0 failed=0
clean_tools=$( (attribute github-runner-clean-tool-cache false) 2>/dev/null) || {
  clean_tools=false
  warn "the instance attribute github-runner-clean-tool-cache could not be read: the tool cache was kept"
}
tool_note="kept the tool cache"
if [[ ${clean_tools,,} == true ]]; then
  tool_cache=${RUNNER_TOOL_CACHE:-${work:+$work/_tool}}
  if [[ -n $tool_cache && -d $tool_cache && $(cd -P -- "$tool_cache" && pwd) != / ]]; then
    remove_entries "$tool_cache"
    tool_note="removed $removed entries from the tool cache"
  else
    tool_note="no tool cache to clean"
  fi
fi
tool_failed=$failed

# Temporary directories: only this user's entries, never this script's own private directory.
removed=0 failed=0
read -r -a temp_dirs <<<"${JOB_CLEANUP_TEMP_DIRS:-/tmp /var/tmp /dev/shm}"
for dir in "${temp_dirs[@]}"; do
  [[ -d $dir && $dir == /* ]] || continue
  while IFS= read -r -d '' entry; do
    [[ $entry != "$GCR_TMP" ]] || continue
    if rm -rf --one-file-system -- "$entry" 2>/dev/null && [[ ! -e $entry && ! -L $entry ]]; then
      removed=$((removed + 1))
    else
      failed=$((failed + 1))
    fi
  done < <(find "$dir" -mindepth 1 -maxdepth 1 -uid "$uid" ! -type s ! -type p \
    ! -name .dotnet ! -name 'dotnet-diagnostic-*' ! -name 'clr-debug-pipe-*' -print0 2>/dev/null)
done
temp_removed=$removed temp_failed=$failed

not_removed=$((work_failed + tool_failed + temp_failed))
if ((not_removed)); then
  warn "$not_removed entries could not be removed (not the runner user's, or in use)"
fi
echo "$GCR_SCRIPT: removed $work_removed entries from the work folder and $temp_removed from temporary directories; $tool_note"
for warning in "${warnings[@]}"; do
  printf '::warning title=Runner clean-up::%s\n' "${warning//'%'/'%25'}"
done
exit 0
