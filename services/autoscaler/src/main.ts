import { createLogger, runMain, startServer } from '../../../shared/src/index.js';
import { loadConfig } from './config.js';
import { createService } from './create-service.js';
import { formatMigRef } from './mig-ref.js';

/** Starts the autoscaler from the environment: the production entry point (Cloud Run, the sandbox). */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, base: { service: 'autoscaler' } });
  const { app } = createService(config, { logger });
  const { port } = await startServer(app, { port: config.port, logger, handleSignals: true });
  logger.info(
    {
      port,
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
    },
    'autoscaler listening',
  );
}

runMain(main);
