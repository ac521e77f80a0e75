#!/bin/sh
# The container's entry point: picks the service from SERVICE and replaces itself with node (exec), so node
# is PID 1 and receives Cloud Run's SIGTERM directly; no shell or npm stays in the process tree.
# Every service installs its own SIGTERM handler (shared/src/run-service.ts), which a PID 1 process needs
# (the kernel does not apply default signal actions to PID 1). The names are those of
# services/entry-points.ts (test/deploy checks that they agree).
set -eu
service="${SERVICE:-token-proxy}"
case "$service" in
  token-proxy | instance-deleter | autoscaler | fleet-status) ;;
  *)
    echo "SERVICE must be token-proxy, instance-deleter, autoscaler or fleet-status, not '$service'" >&2
    exit 64
    ;;
esac
exec node "/app/dist/services/$service/src/main.js" "$@"
