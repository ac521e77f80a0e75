import { createLogger, runMain, startServer } from '#shared';
import { loadConfig } from './config.js';
import { createTokenProxy } from './create-token-proxy.js';

/** Starts the token proxy from the environment: the production entry point (Cloud Run, the sandbox). */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, base: { service: 'token-proxy' } });
  const app = createTokenProxy(config, { logger });
  const { port } = await startServer(app, { port: config.port, logger, handleSignals: true });
  logger.info(
    {
      port,
      githubApiUrl: config.githubApiUrl,
      credentials: config.credentials.kind,
      allowedScopes: config.allowedScopes.map((p) => p.source),
      deniedScopes: config.deniedScopes.map((p) => p.source),
      policyRules: config.policyConfigured
        ? config.policy.rules.map((r) => r.name)
        : 'none (any verified caller)',
      tokenReuseMinRemainingSeconds: config.tokenReuseMinRemainingSeconds,
    },
    'token proxy listening',
  );
}

runMain(main);
