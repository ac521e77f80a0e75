import type { Express } from 'express';
import { GoogleAuth } from 'google-auth-library';
import { createIdTokenVerifier, createLogger } from '#shared';
import type { IdTokenVerifier, Logger } from '#shared';
import { createApp } from './app.js';
import { createComputeClient } from './compute-client.js';
import type { ComputeClient, ComputeClientOptions } from './compute-client.js';
import type { InstanceDeleterConfig } from './config.js';

/** What a test (or another entry point) may put in place of what the configuration would build. */
export interface InstanceDeleterOverrides {
  /** Where the deleter logs; a logger at the configured level by default. */
  logger?: Logger;
  /** The Compute client; by default the `@google-cloud/compute` clients at the configured endpoint. */
  compute?: ComputeClient;
  /**
   * The credentials of the default Compute clients; Application Default Credentials by default (the
   * function's or service's service account). Tests pass a client holding a fixed access token.
   */
  computeAuthClient?: ComputeClientOptions['authClient'];
  verifier?: IdTokenVerifier;
  /** Clock of the stability wait; `Date.now`, a timer and `Math.random` by default. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** The default Compute client: ADC, or the given auth client, at the configured endpoint. */
function computeFrom(
  config: InstanceDeleterConfig,
  authClient?: ComputeClientOptions['authClient'],
): ComputeClient {
  if (authClient) return createComputeClient({ ...config.computeEndpoint, authClient });
  // One GoogleAuth for all seven clients, so they share one access token instead of fetching seven.
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  return createComputeClient({ ...config.computeEndpoint, auth });
}

/**
 * Builds the instance deleter from its configuration: the one place its clients are wired, used by the
 * plain server (`main.ts`), the Cloud Function (`function.ts`) and every test harness alike. The
 * service account needs the custom role listed in deploy/deleter-role-permissions.txt.
 */
export function createInstanceDeleter(
  config: InstanceDeleterConfig,
  overrides: InstanceDeleterOverrides = {},
): Express {
  const { now, sleep, random } = overrides;
  return createApp({
    verifier:
      overrides.verifier ?? createIdTokenVerifier({ audiences: config.audiences, certsUrl: config.certsUrl }),
    compute: overrides.compute ?? computeFrom(config, overrides.computeAuthClient),
    migPattern: config.allowedMigPattern,
    logger:
      overrides.logger ?? createLogger({ level: config.logLevel, base: { service: 'instance-deleter' } }),
    stabilizeTimeoutMs: config.stabilizeTimeoutMs,
    ...(now === undefined ? {} : { now }),
    ...(sleep === undefined ? {} : { sleep }),
    ...(random === undefined ? {} : { random }),
    ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
  });
}
