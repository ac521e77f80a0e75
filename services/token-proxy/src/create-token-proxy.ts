import type { Express } from 'express';
import { createIdTokenVerifier, createLogger } from '#shared';
import type { IdTokenVerifier, Logger } from '#shared';
import { createApp } from './app.js';
import type { TokenProxyConfig } from './config.js';
import { createOctokitRunnerApi } from './github-runner-api.js';
import type { GitHubRunnerApi, OctokitRunnerApiOptions } from './github-runner-api.js';
import { createRunnerGroupResolver } from './runner-group-resolver.js';
import { createTokenCache } from './token-cache.js';

/** What a test (or another entry point) may put in place of what the configuration would build. */
export interface TokenProxyOverrides {
  /** Where the proxy logs; a logger at the configured level by default. */
  logger?: Logger;
  /** The GitHub client; by default Octokit with the configured credentials and URL. */
  github?: GitHubRunnerApi;
  /** Tuning of the default Octokit client that tests shorten: retries, backoff, rate-limit waits. */
  githubClient?: Pick<
    OctokitRunnerApiOptions,
    'retries' | 'retryBaseMs' | 'maxRateLimitWaitSeconds' | 'requestTimeoutMs' | 'installationCacheMs'
  >;
  verifier?: IdTokenVerifier;
  /** The clock of the token cache and the GitHub client; `Date.now` by default. */
  now?: () => number;
}

/**
 * Builds the token proxy from its configuration: the one place its clients are wired, used by `main.ts`
 * and every test harness alike.
 */
export function createTokenProxy(config: TokenProxyConfig, overrides: TokenProxyOverrides = {}): Express {
  const logger =
    overrides.logger ?? createLogger({ level: config.logLevel, base: { service: 'token-proxy' } });
  const now = overrides.now === undefined ? {} : { now: overrides.now };
  const github =
    overrides.github ??
    createOctokitRunnerApi({
      credentials: config.credentials,
      baseUrl: config.githubApiUrl,
      logger,
      writeIntervalMs: config.githubWriteIntervalMs,
      ...overrides.githubClient,
      ...now,
    });
  return createApp({
    verifier:
      overrides.verifier ?? createIdTokenVerifier({ audiences: config.audiences, certsUrl: config.certsUrl }),
    github,
    tokens: createTokenCache({ minRemainingSeconds: config.tokenReuseMinRemainingSeconds, ...now }),
    runnerGroups: createRunnerGroupResolver({ github }),
    scopes: { allowed: config.allowedScopes, denied: config.deniedScopes },
    policy: config.policy,
    credentialsKind: config.credentials.kind,
    logger,
    deadlineMs: config.githubDeadlineMs,
    ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
  });
}
