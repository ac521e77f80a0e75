import { runService } from '#shared';
import { loadConfig } from './config.js';
import { createService } from './create-service.js';
import { formatMigRef } from './mig-ref.js';

// The autoscaler from the environment: the production entry point (Cloud Run, the sandbox).
runService({
  name: 'autoscaler',
  loadConfig: () => loadConfig(),
  create: (config, overrides) => createService(config, overrides).app,
  describe: (config) => ({
    githubApiUrl: config.githubApiUrl,
    appId: config.app.appId,
    installationId: config.app.installationId ?? 'from each delivery',
    webhookSecrets: config.webhookSecrets.length,
    pools: config.pools.map((pool) => ({
      name: pool.name,
      labels: pool.labels,
      migs: pool.migs.map(formatMigRef),
      maxRunners: pool.maxRunners,
    })),
    batchWindowMs: config.batchWindowMs,
    stuckCreatingSeconds: config.stuckCreatingMs / 1000,
    computeEndpoint: config.computeEndpoint ?? 'compute.googleapis.com',
  }),
});
