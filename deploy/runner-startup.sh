#!/bin/bash
# A runner VM's startup script (instance metadata `startup-script`), generated from this file by
# deploy/instance-template.sh and deploy/bake-image.sh, which fill in VM_BUNDLE with deploy/vm/ as a base64
# tar.gz.
#
# At boot it installs the VM scripts in /opt/gce-github-runners/ and the systemd units in
# /etc/systemd/system/ (deploy/vm/README.md), makes sure jq, curl, the `runner` user and the actions/runner
# release in /opt/actions-runner are there, and starts github-runner.service (which pulls in
# github-runner-deregister.service) and github-runner-idle.timer.
#
# Instance attributes read here (besides those deploy/vm/ reads):
#   github-runner-version     the actions/runner release to install when /opt/actions-runner has none, or
#                             has another recorded release: a version such as 2.337.0
#   github-runner-sha256      the SHA-256 of that release's tarball for this machine's architecture
#   gce-github-runners-bake   TRUE on the VM deploy/bake-image.sh bakes an image from: install everything,
#                             enable the units without starting them, record the release, power off
#
# Fails closed: the release is installed only when both attributes are set and the download matches the
# checksum. Attributes are read with retries (network errors, 429 and 5xx, with backoff, as deploy/vm/lib.sh
# does), so a metadata server that answers 503 for a moment cannot turn a pinned checksum into none; an
# attribute that stays unreadable stops the script. Only a 404 means "not set".
#
# The environment variables below exist for tests; on a VM the startup-script runner sets none of them.
set -euo pipefail

VM_BUNDLE='@VM_BUNDLE@'
INSTALL_DIR="${GCR_INSTALL_DIR:-/opt/gce-github-runners}"
RUNNER_DIR="${RUNNER_DIR:-/opt/actions-runner}"
RUNNER_USER="${RUNNER_USER:-runner}"
# What this script installed: the release's version and checksum. Images baked by deploy/bake-image.sh
# carry it, so a VM can tell which runner its image holds.
RUNNER_RECORD="$RUNNER_DIR/.gce-github-runners-release"
RUNNER_DOWNLOAD_BASE="${RUNNER_DOWNLOAD_BASE:-https://github.com/actions/runner/releases/download}"
METADATA_HOST="${GCE_METADATA_HOST:-metadata.google.internal}"
[[ "$METADATA_HOST" == *://* ]] || METADATA_HOST="http://$METADATA_HOST"
METADATA="${METADATA_HOST%/}/computeMetadata/v1/instance/attributes"
METADATA_ATTEMPTS="${METADATA_ATTEMPTS:-8}"
METADATA_MAX_DELAY_SECONDS="${METADATA_MAX_DELAY_SECONDS:-30}"

log() { printf 'gce-github-runners startup: %s\n' "$*" >&2; }

# Exit statuses as deploy/vm/README.md lists them: 1 a service kept failing, 2 configuration.
fail() {
  log "error: $*"
  exit 1
}
fail_config() {
  log "error: $*"
  exit 2
}

# read_attribute NAME VAR: stores the instance attribute NAME, whitespace trimmed, in the variable VAR and
# returns 0; returns 3 when the attribute is not set (404). Network errors, 429 and 5xx are retried with
# exponential backoff (1 s doubling, at most METADATA_MAX_DELAY_SECONDS) up to METADATA_ATTEMPTS tries, then
# the script stops; any other status stops it at once. Not for use in `$(...)`: it must be able to exit.
read_attribute() {
  local name="$1" var="$2" attempt=1 delay=1 status body value
  body="$(mktemp)"
  while :; do
    status="$(curl -sS --noproxy '*' --connect-timeout 5 --max-time 10 -H 'Metadata-Flavor: Google' \
      -o "$body" -w '%{http_code}' "$METADATA/$name" 2>/dev/null)" || status=000
    case "$status" in
      200)
        value="$(<"$body")"
        rm -f -- "$body"
        value="${value#"${value%%[![:space:]]*}"}"
        value="${value%"${value##*[![:space:]]}"}"
        printf -v "$var" '%s' "$value"
        return 0
        ;;
      404)
        rm -f -- "$body"
        return 3
        ;;
      000 | 429 | 5[0-9][0-9]) ;;
      *)
        rm -f -- "$body"
        fail "reading instance attribute $name: HTTP $status"
        ;;
    esac
    if ((attempt >= METADATA_ATTEMPTS)); then
      rm -f -- "$body"
      fail "reading instance attribute $name failed after $attempt attempts (last: ${status/#000/network error})"
    fi
    log "reading instance attribute $name: ${status/#000/network error}; retrying in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2 > METADATA_MAX_DELAY_SECONDS ? METADATA_MAX_DELAY_SECONDS : delay * 2))
  done
}

# optional_attribute NAME VAR [DEFAULT]: like read_attribute, with DEFAULT (or '') when NAME is not set.
optional_attribute() {
  local rc=0
  read_attribute "$1" "$2" || rc=$?
  if ((rc == 3)); then printf -v "$2" '%s' "${3-}"; fi
}

install_vm_scripts() {
  mkdir -p "$INSTALL_DIR"
  printf '%s' "$VM_BUNDLE" | base64 -d | tar -xz -C "$INSTALL_DIR" --no-same-owner
  chmod 0755 "$INSTALL_DIR"/*.sh
  install -m 0644 "$INSTALL_DIR"/systemd/* /etc/systemd/system/
}

install_tools() {
  local missing=() tool
  for tool in jq curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

runner_arch() {
  case "$(uname -m)" in
    x86_64) printf x64 ;;
    aarch64) printf arm64 ;;
    *) fail_config "unsupported machine $(uname -m)" ;;
  esac
}

# recorded_version: the version in RUNNER_RECORD, or nothing.
recorded_version() {
  [[ -f "$RUNNER_RECORD" ]] || return 0
  sed -n 's/^version=//p' "$RUNNER_RECORD" | head -n 1
}

# Installs the actions/runner release the attributes name, unless RUNNER_DIR already holds it.
install_runner() {
  id "$RUNNER_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$RUNNER_USER"
  local version="" sha="" arch tarball have
  if [[ -x "$RUNNER_DIR/run.sh" ]]; then
    have="$(recorded_version)"
    if [[ -z "$have" ]]; then
      log "using the actions/runner already in the image (not installed by these scripts)"
      return 0
    fi
    optional_attribute github-runner-version version
    if [[ -z "$version" || "$version" == "$have" ]]; then
      log "actions/runner $have is already installed"
      return 0
    fi
    log "the image holds actions/runner $have; github-runner-version asks for $version"
  fi
  arch="$(runner_arch)"
  optional_attribute github-runner-version version
  optional_attribute github-runner-sha256 sha
  [[ -n "$version" ]] || fail_config "instance attribute github-runner-version is not set: no runner to install"
  [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    fail_config "github-runner-version '$version' is not a release version such as 2.337.0"
  [[ -n "$sha" ]] ||
    fail_config "instance attribute github-runner-sha256 is not set: refusing to install actions/runner $version unchecked"
  sha="${sha,,}"
  [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || fail_config "github-runner-sha256 is not a SHA-256 (64 hex digits)"
  log "installing actions/runner $version ($arch)"
  tarball="$(mktemp)"
  curl -fsSL --retry 5 --retry-connrefused --connect-timeout 10 --max-time 600 -o "$tarball" \
    "$RUNNER_DOWNLOAD_BASE/v${version}/actions-runner-linux-${arch}-${version}.tar.gz" ||
    fail "downloading actions/runner $version failed"
  if ! printf '%s  %s\n' "$sha" "$tarball" | sha256sum -c - >/dev/null 2>&1; then
    rm -f -- "$tarball"
    fail_config "actions-runner-linux-${arch}-${version}.tar.gz does not match github-runner-sha256" \
      "(is it the checksum of the linux-${arch} tarball?)"
  fi
  rm -rf -- "$RUNNER_DIR"
  mkdir -p "$RUNNER_DIR"
  tar -xzf "$tarball" -C "$RUNNER_DIR"
  rm -f -- "$tarball"
  "$RUNNER_DIR/bin/installdependencies.sh" >/dev/null
  printf 'version=%s\nsha256=%s\narch=%s\n' "$version" "$sha" "$arch" >"$RUNNER_RECORD"
  chown -R "$RUNNER_USER:" "$RUNNER_DIR"
}

main() {
  local bake
  install_vm_scripts
  install_tools
  install_runner
  systemctl daemon-reload
  systemctl enable github-runner.service github-runner-idle.timer
  optional_attribute gce-github-runners-bake bake
  if [[ "${bake^^}" == TRUE ]]; then
    # The image deploy/bake-image.sh makes from this disk: units enabled, so its VMs start them at boot
    # with or without this script, and nothing of this VM's own run left behind.
    apt-get clean
    log "baked: actions/runner $(recorded_version); powering off"
    systemctl --no-block poweroff
    return 0
  fi
  # --no-block: this script runs inside a boot-time unit; queue the start rather than wait for it.
  systemctl start --no-block github-runner.service github-runner-idle.timer
  log "runner units started"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
