import { createIdTokenVerifier, createLogger, runMain, startServer } from '#shared';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { createOctokitRunnerApi } from './github-runner-api.js';
import { createRunnerGroupResolver } from './runner-group-resolver.js';
import { createTokenCache } from './token-cache.js';

/** Starts the token proxy from the environment: the production entry point (Cloud Run, the sandbox). */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, base: { service: 'token-proxy' } });
  const github = createOctokitRunnerApi({
    credentials: config.credentials,
    baseUrl: config.githubApiUrl,
    logger,
    writeIntervalMs: config.githubWriteIntervalMs,
  });
  const app = createApp({
    verifier: createIdTokenVerifier({ audiences: config.audiences, certsUrl: config.certsUrl }),
    github,
    tokens: createTokenCache({ minRemainingSeconds: config.tokenReuseMinRemainingSeconds }),
    runnerGroups: createRunnerGroupResolver({ github }),
    scopes: { allowed: config.allowedScopes, denied: config.deniedScopes },
    policy: config.policy,
    credentialsKind: config.credentials.kind,
    logger,
    deadlineMs: config.githubDeadlineMs,
    ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
  });
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
