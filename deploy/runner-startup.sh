#!/bin/bash
# A runner VM's startup script (instance metadata `startup-script`), generated from this file by
# deploy/instance-template.sh, which fills in VM_BUNDLE with deploy/vm/ as a base64 tar.gz.
#
# At boot it installs the VM scripts in /opt/gce-github-runners/ and the systemd units in
# /etc/systemd/system/ (deploy/vm/README.md), makes sure jq, curl, the `runner` user and the actions/runner
# release in /opt/actions-runner are there, and starts github-runner.service (which pulls in
# github-runner-deregister.service) and github-runner-idle.timer.
#
# Images with all of this baked in need no startup script: see `--no-startup-script` in
# deploy/instance-template.sh.
#
# Instance attributes read here (besides those deploy/vm/ reads):
#   github-runner-version  actions/runner version to install when /opt/actions-runner has none:
#                          a version such as 2.329.0, or `latest` (default)
#   github-runner-sha256   optional: the release tarball's SHA-256, checked when set
set -euo pipefail

VM_BUNDLE='@VM_BUNDLE@'
INSTALL_DIR=/opt/gce-github-runners
RUNNER_DIR=/opt/actions-runner
RUNNER_USER=runner
METADATA=http://metadata.google.internal/computeMetadata/v1/instance/attributes

log() { printf 'gce-github-runners startup: %s\n' "$*"; }

attribute() {
  curl -fsS -H 'Metadata-Flavor: Google' "$METADATA/$1" 2>/dev/null || printf '%s' "${2:-}"
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

install_runner() {
  id "$RUNNER_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$RUNNER_USER"
  if [[ -x "$RUNNER_DIR/run.sh" ]]; then
    return
  fi
  local version sha arch tarball
  version="$(attribute github-runner-version latest)"
  sha="$(attribute github-runner-sha256)"
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) log "unsupported machine $(uname -m)"; exit 2 ;;
  esac
  if [[ "$version" == latest ]]; then
    # GitHub redirects .../releases/latest to .../releases/tag/vX.Y.Z.
    version="$(curl -fsSI -o /dev/null -w '%{redirect_url}' https://github.com/actions/runner/releases/latest)"
    version="${version##*/v}"
  fi
  [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { log "cannot tell the runner version ('$version')"; exit 2; }
  log "installing actions/runner $version"
  tarball="$(mktemp)"
  curl -fsSL --retry 5 -o "$tarball" \
    "https://github.com/actions/runner/releases/download/v${version}/actions-runner-linux-${arch}-${version}.tar.gz"
  if [[ -n "$sha" ]]; then
    printf '%s  %s\n' "$sha" "$tarball" | sha256sum -c - >/dev/null || { log "runner tarball checksum mismatch"; exit 2; }
  fi
  mkdir -p "$RUNNER_DIR"
  tar -xzf "$tarball" -C "$RUNNER_DIR"
  rm -f "$tarball"
  "$RUNNER_DIR/bin/installdependencies.sh" >/dev/null
  chown -R "$RUNNER_USER:$RUNNER_USER" "$RUNNER_DIR"
}

install_vm_scripts
install_tools
install_runner
systemctl daemon-reload
systemctl enable github-runner.service github-runner-idle.timer
# --no-block: this script runs inside a boot-time unit; queue the start rather than wait for it.
systemctl start --no-block github-runner.service github-runner-idle.timer
log "runner units started"
