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
      minIdle: pool.minIdle,
      minIdleSchedules: pool.minIdleSchedules.map(({ cron, durationMinutes, minIdle }) => ({
        cron,
        durationMinutes,
        minIdle,
      })),
      timeZone: pool.timeZone,
      bootTimeoutSeconds: pool.bootTimeoutMs / 1000,
      idleTimeoutSeconds: pool.idleTimeoutMs / 1000,
    })),
    batchWindowMs: config.batchWindowMs,
    stuckCreatingSeconds: config.stuckCreatingMs / 1000,
    reaper: config.reaper,
    computeEndpoint: config.computeEndpoint ?? 'compute.googleapis.com',
  }),
});
