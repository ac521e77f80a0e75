import { runService } from '#shared';
import { loadConfig } from './config.js';
import { createInstanceDeleter } from './create-instance-deleter.js';

// The instance deleter as a plain HTTP server (Cloud Run, the sandbox, local use), loaded by main.ts once
// the compile cache is on.
runService({
  name: 'instance-deleter',
  loadConfig: () => loadConfig(),
  create: createInstanceDeleter,
  describe: (config) => ({
    allowedMigPattern: config.allowedMigPattern.source,
    requestTimeoutSeconds: config.requestTimeoutMs / 1000,
    computeEndpoint: config.computeEndpoint ?? 'compute.googleapis.com',
  }),
});
