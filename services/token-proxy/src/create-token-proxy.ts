import type { Express } from 'express';
import { createIdTokenVerifier, createLogger } from '#shared';
import type { IdTokenVerifier, Logger } from '#shared';
import { createApp } from './app.js';
import { createComputeInstanceCheck } from './compute-instance-check.js';
import type { ComputeClientOptions } from './compute-instance-check.js';
import type { TokenProxyConfig } from './config.js';
import { createOctokitRunnerApi } from './github-runner-api.js';
import type { GitHubRunnerApi, OctokitRunnerApiOptions } from './github-runner-api.js';
import { createInstanceLimits } from './instance-limits.js';
import { createMutationScheduler } from './mutation-scheduler.js';
import type { MutationScheduler } from './mutation-scheduler.js';
import { createRunnerGroupResolver } from './runner-group-resolver.js';
import { createTokenCache } from './token-cache.js';

/** `GET /runner` requests one instance may make in a minute: an idle check every few seconds at most. */
const RUNNER_READS_PER_MINUTE = 12;
/** How long the check that the calling VM exists may take. */
const INSTANCE_CHECK_DEADLINE_MS = 5000;

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
  /**
   * The scheduler of mutating GitHub requests; by default one built from GITHUB_WRITE_INTERVAL_MS and the
   * MUTATION_QUEUE_LIMIT variables. Tests pass their own to watch its queue.
   */
  mutationScheduler?: MutationScheduler;
  /** `GET /runner` requests per instance and minute (default 12). */
  runnerReadsPerMinute?: number;
  /**
   * Credentials of the Compute client that checks callers exist (VERIFY_INSTANCE_EXISTS); Application
   * Default Credentials by default. Tests pass a client holding a fixed access token.
   */
  computeAuthClient?: ComputeClientOptions['authClient'];
  verifier?: IdTokenVerifier;
  /** The clock of the token cache, the instance limits and the GitHub client; `Date.now` by default. */
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
  // One scheduler for every mutating GitHub request of this process.
  const mutationScheduler =
    overrides.mutationScheduler ??
    createMutationScheduler({
      intervalMs: config.githubWriteIntervalMs,
      maxQueued: config.mutationQueueLimit,
      maxQueuedPerCaller: config.mutationQueueLimitPerCaller,
      maxWaitMs: config.githubDeadlineMs,
    });
  const github =
    overrides.github ??
    createOctokitRunnerApi({
      credentials: config.credentials,
      baseUrl: config.githubApiUrl,
      logger,
      mutationScheduler,
      ...overrides.githubClient,
      ...now,
    });
  const instanceCheck = config.verifyInstanceExists
    ? createComputeInstanceCheck({
        ...(config.computeEndpoint ? { endpoint: config.computeEndpoint } : {}),
        ...(overrides.computeAuthClient ? { authClient: overrides.computeAuthClient } : {}),
        deadlineMs: INSTANCE_CHECK_DEADLINE_MS,
      })
    : undefined;
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
    limits: createInstanceLimits({
      jitConfigsPerHour: config.jitConfigsPerInstancePerHour,
      runnerReadsPerMinute: overrides.runnerReadsPerMinute ?? RUNNER_READS_PER_MINUTE,
      busyRetryAfterSeconds: () => mutationScheduler.retryAfterSeconds(),
      ...now,
    }),
    instanceCheck,
    ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
  });
}
