import { OAuth2Client } from 'google-auth-library';
import type { Express } from 'express';
import { createDeleterComputeClient, createInstanceDeleter, loadConfig } from '#instance-deleter';
import type { ComputeClient, DeleterComputeOptions, InstanceDeleterOverrides } from '#instance-deleter';
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeInstance, FakeMig } from '#fakes/compute-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { ComputeEngineIdentity, FakeGoogleIssuer } from '#fakes/google-issuer';
import { captureLogs } from './log-capture.js';
import type { CapturedLogger } from './log-capture.js';

export const DELETER_AUDIENCE = 'https://instance-deleter.example.run.app';
export const DELETER_PROJECT = { projectId: 'runners-prod', projectNumber: '123456789012' } as const;
export const DELETER_REGION = 'us-central1';
export const DELETER_ZONE = 'us-central1-a';
/** The deleter's own Compute access token: it must never reach a log or a response. */
export const DELETER_ACCESS_TOKEN = 'ya29.deleter-harness-access-token';

/** The fake issuer and Compute API behind an in-process deleter. */
export interface DeleterFakes {
  issuer: FakeGoogleIssuer;
  compute: FakeComputeApi;
  close(): Promise<void>;
}

/** Starts the fake issuer and a fake Compute API that knows project `runners-prod`. */
export async function startDeleterFakes(
  options: { deletionDelayMs?: number; issuer?: FakeGoogleIssuer } = {},
): Promise<DeleterFakes> {
  const issuer = options.issuer ?? (await startFakeGoogleIssuer());
  const compute = await startFakeComputeApi({ deletionDelayMs: options.deletionDelayMs ?? Infinity });
  compute.addProject(DELETER_PROJECT);
  return {
    issuer,
    compute,
    close: async () => {
      await Promise.all([compute.close(), options.issuer ? Promise.resolve() : issuer.close()]);
    },
  };
}

export interface DeleterOptions {
  /** The deadline of every request (REQUEST_TIMEOUT_SECONDS, here in ms); default 10 s. */
  requestTimeoutMs?: number;
  /** ALLOWED_MIG_PATTERN; default `gh-runner-[a-z0-9-]+`, which every MIG of {@link regionalMig} matches. */
  pattern?: string;
  /** The clock of the shared reads' ages (default `Date.now`). */
  now?: () => number;
  /** Where the deleter logs; a fresh capture by default. */
  logs?: CapturedLogger;
  /** COMPUTE_API_ENDPOINT; default the fake's (a server that never answers, say). */
  computeUrl?: string;
  /**
   * `fixed` (default): the Compute clients hold {@link DELETER_ACCESS_TOKEN}; `adc`: Application Default
   * Credentials, from whatever metadata server the environment names (GCE_METADATA_HOST).
   */
  credentials?: 'fixed' | 'adc';
  /** How long one Compute call / getting credentials may take (defaults: the service's). */
  callTimeoutMs?: number;
  credentialsTimeoutMs?: number;
  /**
   * Wraps the deleter's Compute client (the real clients against the fake, as production builds them):
   * tests order Compute calls with it, e.g. holding one deleter's reads until another has deleted.
   */
  wrapCompute?: (compute: ComputeClient) => ComputeClient;
}

export interface Deleter {
  app: Express;
  logs: CapturedLogger;
  /** The `format=full` identity token of `vm` for the deleter's audience (claims overridable). */
  token(vm: FakeInstance, overrides?: Partial<ComputeEngineIdentity>, audience?: string): string;
}

/**
 * The deleter as main.ts and the Cloud Function build it (loadConfig, then createInstanceDeleter), with
 * the real Compute clients pointed at the fake and holding {@link DELETER_ACCESS_TOKEN}. Each call builds
 * a separate deleter, with its own locks and shared reads: two of them stand for two processes.
 */
export function buildDeleter(fakes: DeleterFakes, options: DeleterOptions = {}): Deleter {
  const logs = options.logs ?? captureLogs();
  const { protocol, apiEndpoint, port } = fakes.compute.endpoint;
  const config = loadConfig({
    AUTH_AUDIENCE: DELETER_AUDIENCE,
    ID_TOKEN_CERTS_URL: fakes.issuer.certsUrl,
    ALLOWED_MIG_PATTERN: options.pattern ?? 'gh-runner-[a-z0-9-]+',
    COMPUTE_API_ENDPOINT: options.computeUrl ?? `${protocol}://${apiEndpoint}:${port}`,
  });
  // Tests wait less than the one second REQUEST_TIMEOUT_SECONDS can express.
  config.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const computeOptions: DeleterComputeOptions = {};
  if (options.credentials !== 'adc') {
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: DELETER_ACCESS_TOKEN });
    computeOptions.authClient = auth;
  }
  if (options.callTimeoutMs !== undefined) computeOptions.callTimeoutMs = options.callTimeoutMs;
  if (options.credentialsTimeoutMs !== undefined) {
    computeOptions.credentialsTimeoutMs = options.credentialsTimeoutMs;
  }
  const overrides: InstanceDeleterOverrides = { logger: logs.logger, ...computeOptions };
  if (options.wrapCompute) {
    overrides.compute = options.wrapCompute(createDeleterComputeClient(config, computeOptions));
  }
  if (options.now) overrides.now = options.now;
  const app = createInstanceDeleter(config, overrides);
  return {
    app,
    logs,
    token: (vm, overrides, audience) => deleterToken(fakes, vm, overrides, audience),
  };
}

/** The `format=full` identity token `vm` gets from its metadata server for the deleter (claims overridable). */
export function deleterToken(
  fakes: Pick<DeleterFakes, 'issuer'>,
  vm: FakeInstance,
  overrides: Partial<ComputeEngineIdentity> = {},
  audience = DELETER_AUDIENCE,
): string {
  return fakes.issuer.mintIdentityToken({
    audience,
    email: `runner@${DELETER_PROJECT.projectId}.iam.gserviceaccount.com`,
    compute: {
      projectId: DELETER_PROJECT.projectId,
      projectNumber: Number(DELETER_PROJECT.projectNumber),
      zone: vm.zone,
      instanceId: vm.id,
      instanceName: vm.name,
      ...overrides,
    },
  });
}

let serial = 0;

/** A regional MIG `name` in us-central1 (a fresh name each call unless given). */
export function regionalMig(
  fakes: DeleterFakes,
  name = `gh-runner-adv${(serial += 1).toString(36)}`,
): FakeMig {
  return fakes.compute.addMig({ project: DELETER_PROJECT.projectId, region: DELETER_REGION, name });
}

/** A VM of `mig` in us-central1-a. */
export function memberOf(
  fakes: DeleterFakes,
  mig: FakeMig,
  name = `${mig.name}-vm${(serial += 1).toString(36)}`,
): FakeInstance {
  return fakes.compute.addInstance({ project: DELETER_PROJECT.projectId, zone: DELETER_ZONE, name, mig });
}
