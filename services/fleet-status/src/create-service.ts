import type { Express } from 'express';
import { GoogleAuth } from 'google-auth-library';
import { createIapVerifier, createLogger } from '#shared';
import type { IapVerifier, Logger } from '#shared';
import { createApp } from './app.js';
import { createAutoscalerFleetApi } from './autoscaler-fleet.js';
import type { AutoscalerFleetApi } from './autoscaler-fleet.js';
import { createComputeRolloutReader } from './compute-rollouts.js';
import type { ComputeRolloutReader } from './compute-rollouts.js';
import type { FleetStatusConfig } from './config.js';
import { describeStatus } from './describe-status.js';
import { createRunnerReleasesApi } from '#shared';
import type { RunnerReleasesApi } from '#shared';
import { createStatusSnapshots } from './status-snapshots.js';
import type { StatusSnapshots } from './status-snapshots.js';

/** What a caller (main.ts, a test harness) may put in place of what the configuration would build. */
export interface FleetStatusOverrides {
  logger?: Logger;
  iapVerifier?: IapVerifier;
  fleet?: AutoscalerFleetApi;
  compute?: ComputeRolloutReader;
  releases?: RunnerReleasesApi;
  /** Credentials of the identity token for the autoscaler and of Compute; Application Default Credentials by default. */
  auth?: GoogleAuth;
  /** Milliseconds, like `Date.now`. */
  now?: () => number;
}

export interface FleetStatusService {
  app: Express;
  status: StatusSnapshots;
}

/**
 * Builds the fleet status service from its configuration: the one place its clients are wired, used by
 * main.ts and every test harness alike. It holds no GitHub credential: the fleet comes from the autoscaler
 * (its own identity token), templates and members from Compute (read only), releases from GitHub's public API.
 */
export function createService(
  config: FleetStatusConfig,
  overrides: FleetStatusOverrides = {},
): FleetStatusService {
  const logger =
    overrides.logger ?? createLogger({ level: config.logLevel, base: { service: 'fleet-status' } });
  const now = overrides.now ?? Date.now;
  const auth =
    overrides.auth ?? new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  const fleet =
    overrides.fleet ??
    createAutoscalerFleetApi({ url: config.autoscalerUrl, audience: config.autoscalerAudience, auth });
  const compute = overrides.compute ?? createComputeRolloutReader({ ...config.computeEndpoint, auth });
  const releases =
    overrides.releases ??
    createRunnerReleasesApi({
      baseUrl: config.githubApiUrl,
      cacheMs: config.releasesCacheMs,
      userAgent: 'gce-github-runners-fleet-status',
      now,
    });
  const status = createStatusSnapshots(
    () => describeStatus({ fleet, compute, releases, logger, now }),
    config.snapshotTtlMs,
    now,
  );
  const app = createApp({
    iapVerifier:
      overrides.iapVerifier ??
      createIapVerifier({ audience: config.iapAudience, keysUrl: config.iapKeysUrl, now }),
    viewers: config.viewers,
    status,
    logger,
    ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
  });
  return { app, status };
}
