import { setTimeout as delay } from 'node:timers/promises';
import type { Express } from 'express';
import { GoogleAuth } from 'google-auth-library';
import { createIdTokenVerifier, createLogger, createRunnerReleasesApi } from '#shared';
import type { IdTokenVerifier, Logger, RunnerReleasesApi } from '#shared';
import { createApp } from './app.js';
import { createComputeMigApi } from './compute-mig-api.js';
import type { ComputeMigApi } from './compute-mig-api.js';
import type { AutoscalerConfig } from './config.js';
import { createFleetHandler } from './describe-fleet.js';
import { createFleetState } from './fleet-state.js';
import type { FleetState } from './fleet-state.js';
import { createGitHubAppApi } from './github-app-api.js';
import type { GitHubAppApi } from './github-app-api.js';
import { createPoolScaler } from './pool-scaler.js';
import type { PoolScaler } from './pool-scaler.js';
import { createWebhookHandler } from './receive-webhook.js';
import { createReconcileHandler, createReconciler } from './reconcile.js';
import type { Reconciler } from './reconcile.js';
import { createRunnerVersionCheck } from './runner-version-check.js';
import type { RunnerVersionCheck } from './runner-version-check.js';
import { createWebhookSignatureVerifier } from './verify-webhook-signature.js';

/** What a caller (main.ts, a test harness) may put in place of what the configuration would build. */
export interface ServiceOverrides {
  github?: GitHubAppApi;
  compute?: ComputeMigApi;
  verifier?: IdTokenVerifier;
  logger?: Logger;
  /** Milliseconds, like `Date.now`. */
  now?: () => number;
  /** Waits `ms`: the batch window. */
  sleep?: (ms: number) => Promise<void>;
  /** How long a webhook delivery waits for its VM request before a 503; default 8 s (GitHub waits 10). */
  webhookDeadlineMs?: number;
  /** Each Compute call's deadline; default 4 s. */
  computeTimeoutMs?: number;
  /** The actions/runner releases; by default read from `runnerReleasesApiUrl`, without a token. */
  releases?: RunnerReleasesApi;
}

/** The service and the parts of it a harness may want to look at. */
export interface AutoscalerService {
  app: Express;
  fleet: FleetState;
  scalers: ReadonlyMap<string, PoolScaler>;
  reconciler: Reconciler;
  versions: RunnerVersionCheck;
}

/**
 * Builds the autoscaler from its configuration: the one place that wires its clients, used by main.ts and
 * every test harness alike. Compute credentials are Application Default Credentials (the Cloud Run service
 * account) unless `overrides.compute` is given.
 */
export function createService(config: AutoscalerConfig, overrides: ServiceOverrides = {}): AutoscalerService {
  const logger =
    overrides.logger ?? createLogger({ level: config.logLevel, base: { service: 'autoscaler' } });
  const now = overrides.now ?? Date.now;
  const sleep = overrides.sleep ?? ((ms: number) => delay(ms));
  const compute =
    overrides.compute ??
    createComputeMigApi(
      {
        ...config.computeEndpoint,
        auth: new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }),
      },
      overrides.computeTimeoutMs === undefined ? {} : { timeoutMs: overrides.computeTimeoutMs },
    );
  const github =
    overrides.github ??
    createGitHubAppApi({
      app: config.app,
      baseUrl: config.githubApiUrl,
      logger,
      now,
      writeIntervalMs: config.githubWriteIntervalMs,
    });
  const fleet = createFleetState();
  const versions = createRunnerVersionCheck({
    releases:
      overrides.releases ??
      createRunnerReleasesApi({
        baseUrl: config.runnerReleasesApiUrl,
        cacheMs: config.runnerReleasesCacheMs,
        userAgent: 'gce-github-runners-autoscaler',
        now,
      }),
    logger,
    now,
  });
  const scalers = new Map(
    config.pools.map((pool) => [
      pool.name,
      createPoolScaler({ pool, compute, logger, batchWindowMs: config.batchWindowMs, now, sleep }),
    ]),
  );
  const installation =
    config.app.installationId === undefined ? {} : { installationId: config.app.installationId };
  const reconciler = createReconciler({
    pools: config.pools,
    scalers,
    compute,
    github,
    fleet,
    logger,
    now,
    stuckCreatingMs: config.stuckCreatingMs,
    maxRedeliveriesPerRun: config.maxRedeliveriesPerRun,
    reaper: config.reaper,
    versions,
    ...installation,
  });
  const app = createApp({
    verifier:
      overrides.verifier ?? createIdTokenVerifier({ audiences: config.audiences, certsUrl: config.certsUrl }),
    logger,
    webhook: createWebhookHandler({
      verifySignature: createWebhookSignatureVerifier(config.webhookSecrets),
      pools: config.pools,
      scalers,
      github,
      fleet,
      logger,
      now,
      deadlineMs: overrides.webhookDeadlineMs ?? 8000,
      scaleUpBlockedReason: versions.scaleUpBlockedReason,
      ...installation,
    }),
    reconcile: createReconcileHandler(reconciler),
    fleet: createFleetHandler(config.pools, scalers, fleet, now, versions),
    reconcileCallers: config.reconcileCallers,
    fleetViewers: config.fleetViewers,
    ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
  });
  return { app, fleet, scalers, reconciler, versions };
}
