/**
 * Where each built program lives, relative to the repository root: the one list of `dist/` entry paths.
 * `scripts/start.js`, the sandbox, the bench and the tests read it; `package.json`'s `main` (the Cloud
 * Function's entry, which JSON cannot import) is checked against it by `test/entry-points.test.ts`.
 * The only other literals are in shell, where nothing can import this: `deploy/container/entrypoint.sh`
 * (`dist/services/$SERVICE/src/main.js`) and `deploy/instance-deleter.sh` (the staged function's `main`).
 * A new service adds one line to {@link SERVICE_ENTRY_POINTS}.
 */

/** Each service's plain-server entry (`main`) and, for the deleter, its Cloud Function entry. */
export const SERVICE_ENTRY_POINTS = {
  'token-proxy': { main: 'dist/services/token-proxy/src/main.js' },
  autoscaler: { main: 'dist/services/autoscaler/src/main.js' },
  'fleet-status': { main: 'dist/services/fleet-status/src/main.js' },
  'instance-deleter': {
    main: 'dist/services/instance-deleter/src/main.js',
    function: 'dist/services/instance-deleter/src/function.js',
  },
} as const;

/** The local tools: the sandbox, its fleet demo, the reaper's soak, the benchmark, the bench's ceiling server, `npm run fleet`. */
export const TOOL_ENTRY_POINTS = {
  sandbox: 'dist/sandbox/main.js',
  demo: 'dist/sandbox/demo.js',
  soak: 'dist/sandbox/soak.js',
  bench: 'dist/bench/bench.js',
  'ceiling-server': 'dist/bench/ceiling-server.js',
  fleet: 'dist/services/fleet-cli/src/main.js',
} as const;
