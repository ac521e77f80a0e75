import type { Express } from 'express';
import { GoogleAuth } from 'google-auth-library';
import type { AuthClient } from 'google-auth-library';
import { createIdTokenVerifier, createLogger } from '#shared';
import type { IdTokenVerifier, Logger } from '#shared';
import { createApp } from './app.js';
import { ComputeAuthClient } from './compute-auth-client.js';
import { createComputeClient, DEFAULT_COMPUTE_CALL_TIMEOUT_MS } from './compute-client.js';
import type { ComputeClient } from './compute-client.js';
import type { InstanceDeleterConfig } from './config.js';

/** How long getting the deleter's own credentials may take by default (ms): the metadata server answers in milliseconds. */
export const DEFAULT_CREDENTIALS_TIMEOUT_MS = 5000;

/** How the deleter's Compute client is built: credentials and deadlines. */
export interface DeleterComputeOptions {
  /**
   * Fixed credentials (tests pass a client holding an access token); Application Default Credentials
   * (the function's or service's service account) by default. Either way under the deadlines below.
   */
  authClient?: Pick<AuthClient, 'getRequestHeaders'>;
  /** How long one Compute call may take (default {@link DEFAULT_COMPUTE_CALL_TIMEOUT_MS}). */
  callTimeoutMs?: number;
  /** How long getting credentials may take (default {@link DEFAULT_CREDENTIALS_TIMEOUT_MS}). */
  credentialsTimeoutMs?: number;
}

/** What a test (or another entry point) may put in place of what the configuration would build. */
export interface InstanceDeleterOverrides extends DeleterComputeOptions {
  /** Where the deleter logs; a logger at the configured level by default. */
  logger?: Logger;
  /** The Compute client; by default {@link createDeleterComputeClient} from the configuration. */
  compute?: ComputeClient;
  verifier?: IdTokenVerifier;
  /** The clock of the shared reads' ages; `Date.now` by default. */
  now?: () => number;
}

/**
 * The deleter's Compute client at the configured endpoint: every call with a deadline
 * (`callTimeoutMs`), signed with credentials that have one too (`credentialsTimeoutMs`), looked up again
 * after a failure. One credential source serves all seven `@google-cloud/compute` clients, so they share
 * one access token instead of fetching seven.
 */
export function createDeleterComputeClient(
  config: InstanceDeleterConfig,
  options: DeleterComputeOptions = {},
): ComputeClient {
  const { authClient } = options;
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_COMPUTE_CALL_TIMEOUT_MS;
  const credentials = new ComputeAuthClient({
    createSource: authClient
      ? () => ({ getClient: async () => authClient })
      : () => new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }),
    credentialsTimeoutMs: options.credentialsTimeoutMs ?? DEFAULT_CREDENTIALS_TIMEOUT_MS,
    requestTimeoutMs: callTimeoutMs,
  });
  return createComputeClient({ ...config.computeEndpoint, authClient: credentials }, callTimeoutMs);
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
  const { now } = overrides;
  return createApp({
    verifier:
      overrides.verifier ?? createIdTokenVerifier({ audiences: config.audiences, certsUrl: config.certsUrl }),
    compute: overrides.compute ?? createDeleterComputeClient(config, overrides),
    migPattern: config.allowedMigPattern,
    logger:
      overrides.logger ?? createLogger({ level: config.logLevel, base: { service: 'instance-deleter' } }),
    requestTimeoutMs: config.requestTimeoutMs,
    ...(now === undefined ? {} : { now }),
    ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
  });
}
