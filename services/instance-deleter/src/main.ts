import { createLogger, runMain, startServer } from '#shared';
import { loadConfig } from './config.js';
import { createInstanceDeleter } from './create-instance-deleter.js';

/** Starts the instance deleter as a plain HTTP server: Cloud Run, the sandbox, local use. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, base: { service: 'instance-deleter' } });
  const app = createInstanceDeleter(config, { logger });
  const { port } = await startServer(app, { port: config.port, logger, handleSignals: true });
  logger.info(
    {
      port,
      allowedMigPattern: config.allowedMigPattern.source,
      stabilizeTimeoutSeconds: config.stabilizeTimeoutMs / 1000,
      computeEndpoint: config.computeEndpoint ?? 'compute.googleapis.com',
    },
    'instance deleter listening',
  );
}

runMain(main);
