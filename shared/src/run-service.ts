import type { RequestListener } from 'node:http';
import type { CommonConfig } from './common-config.js';
import { createLogger } from './logger.js';
import type { Logger } from './logger.js';
import { runMain } from './run-main.js';
import { startServer } from './start-server.js';

/** What a service's plain-server entry (`main.ts`) names; the rest is the same for every service. */
export interface RunServiceOptions<C extends CommonConfig> {
  /** The `service` field of every log line, e.g. `token-proxy`. */
  name: string;
  /** The service's `loadConfig`, reading the environment. */
  loadConfig: () => C;
  /** The service's one wiring point (`create<Service>(config, overrides)`). */
  create: (config: C, overrides: { logger: Logger }) => RequestListener;
  /** The settings worth a line at start-up; never a secret. */
  describe: (config: C) => Record<string, unknown>;
}

/**
 * Starts a service as a plain HTTP server (Cloud Run, the sandbox, local use): reads its configuration,
 * builds the app, listens on `PORT` (on `HOST` when set, else on all interfaces) with graceful shutdown
 * on SIGTERM, and logs one `<name> listening` line, then one warning line per entry of the configuration's
 * `warnings`. Configuration problems and start-up failures end the process as {@link runMain} describes.
 */
export function runService<C extends CommonConfig>(options: RunServiceOptions<C>): void {
  runMain(async () => {
    const config = options.loadConfig();
    const logger = createLogger({ level: config.logLevel, base: { service: options.name } });
    const app = options.create(config, { logger });
    const { port } = await startServer(app, {
      port: config.port,
      ...(config.host === undefined ? {} : { host: config.host }),
      logger,
      handleSignals: true,
    });
    logger.info({ port, ...options.describe(config) }, `${options.name.replace(/-/g, ' ')} listening`);
    // Every start, not only the first: a setting that is probably a mistake stays visible in each revision's logs.
    for (const warning of config.warnings ?? []) logger.warn({ configuration: true }, warning);
  });
}
