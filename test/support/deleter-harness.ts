import { OAuth2Client } from 'google-auth-library';
import type { Express } from 'express';
import { createInstanceDeleter, loadConfig } from '#instance-deleter';
import type { InstanceDeleterOverrides } from '#instance-deleter';
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
  /** Default 10 s; the stability wait uses the real clock unless `now` and `sleep` are given. */
  stabilizeTimeoutMs?: number;
  /** ALLOWED_MIG_PATTERN; default `gh-runner-[a-z0-9-]+`, which every MIG of {@link regionalMig} matches. */
  pattern?: string;
  /** The stability wait's clock and jitter (default: no jitter). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Where the deleter logs; a fresh capture by default. */
  logs?: CapturedLogger;
}

export interface Deleter {
  app: Express;
  logs: CapturedLogger;
  /** The `format=full` identity token of `vm` for the deleter's audience (claims overridable). */
  token(vm: FakeInstance, overrides?: Partial<ComputeEngineIdentity>, audience?: string): string;
}

/**
 * The deleter as main.ts and the Cloud Function build it (loadConfig, then createInstanceDeleter), with
 * the real Compute clients pointed at the fake and holding {@link DELETER_ACCESS_TOKEN}.
 */
export function buildDeleter(fakes: DeleterFakes, options: DeleterOptions = {}): Deleter {
  const logs = options.logs ?? captureLogs();
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: DELETER_ACCESS_TOKEN });
  const { protocol, apiEndpoint, port } = fakes.compute.endpoint;
  const config = loadConfig({
    AUTH_AUDIENCE: DELETER_AUDIENCE,
    ID_TOKEN_CERTS_URL: fakes.issuer.certsUrl,
    ALLOWED_MIG_PATTERN: options.pattern ?? 'gh-runner-[a-z0-9-]+',
    COMPUTE_API_ENDPOINT: `${protocol}://${apiEndpoint}:${port}`,
  });
  // Tests wait less than the one second STABILIZE_TIMEOUT_SECONDS can express.
  config.stabilizeTimeoutMs = options.stabilizeTimeoutMs ?? 10_000;
  const { now, sleep } = options;
  const overrides: InstanceDeleterOverrides = {
    logger: logs.logger,
    computeAuthClient: auth,
    random: options.random ?? (() => 0),
    ...(now === undefined ? {} : { now }),
    ...(sleep === undefined ? {} : { sleep }),
  };
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
