#!/bin/sh
# The container's entry point: picks the service from SERVICE and replaces itself with node (exec), so node
# is PID 1 and receives Cloud Run's SIGTERM directly; no shell or npm stays in the process tree.
# Both services install their own SIGTERM handler, which a PID 1 process needs (the kernel does not apply
# default signal actions to PID 1).
set -eu
service="${SERVICE:-token-proxy}"
case "$service" in
  token-proxy | instance-deleter) ;;
  *)
    echo "SERVICE must be token-proxy or instance-deleter, not '$service'" >&2
    exit 64
    ;;
esac
exec node "/app/dist/services/$service/src/main.js" "$@"
