import { GoogleAuth } from 'google-auth-library';
import { createService, loadConfig } from '#fleet-status';
import type { FleetStatusOverrides, FleetStatusService } from '#fleet-status';
import { COMPUTE_API_ROOT } from '#fakes/compute-api';
import type { FakeComputeApi, FakeMig } from '#fakes/compute-api';
import type { FakeGitHub } from '#fakes/github-api';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { startFakeIapIssuer } from '#fakes/iap-issuer';
import type { FakeIapIssuer } from '#fakes/iap-issuer';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import type { FakeMetadataServer } from '#fakes/metadata-server';
import { isolateGoogleClientEnv } from '#test-support/google-client-env';
import { captureLogs } from '#test-support/log-capture';
import type { CapturedLogger } from '#test-support/log-capture';

export const PROJECT = { projectId: 'runners-prod', projectNumber: '123456789012' } as const;
/** What IAP puts in `aud` for a Cloud Run service it protects. */
export const IAP_AUDIENCE = `/projects/${PROJECT.projectNumber}/locations/us-central1/services/fleet-status`;
/** The status service's own service account: the one in the autoscaler's FLEET_VIEWERS. */
export const STATUS_ACCOUNT = 'fleet-status@runners-prod.iam.gserviceaccount.com';
export const VIEWERS = 'domain:example.com, bob@partner.example';
export const DAY_MS = 86_400_000;

export const templateUrl = (name: string) =>
  `${COMPUTE_API_ROOT}/projects/${PROJECT.projectId}/global/instanceTemplates/${name}`;

/** The templates the fixtures use: the fleet's stable release and a canary of a newer one. */
export const TEMPLATES = {
  stable: { name: 'gh-runner-2-329-0', version: '2.329.0' },
  canary: { name: 'gh-runner-2-331-0', version: '2.331.0' },
} as const;

/** actions/runner releases relative to `now`: 2.330.0 came out 20 days ago, so 2.329.0 is in the warning. */
export function runnerReleases(now: number) {
  return [
    { version: '2.329.0', publishedAt: new Date(now - 45 * DAY_MS).toISOString() },
    { version: '2.330.0', publishedAt: new Date(now - 20 * DAY_MS).toISOString() },
    { version: '2.331.0', publishedAt: new Date(now - 5 * DAY_MS).toISOString() },
    { version: '2.332.0', publishedAt: new Date(now - 1 * DAY_MS).toISOString(), prerelease: true },
  ];
}

/** Adds the two templates (their `github-runner-version` metadata) and gives every MIG the stable one. */
export function addTemplates(
  compute: FakeComputeApi,
  migs: readonly FakeMig[],
): { stable: string; canary: string } {
  const add = ({ name, version }: { name: string; version: string }) =>
    compute.addInstanceTemplate({
      project: PROJECT.projectId,
      name,
      metadata: { 'github-runner-version': version, 'github-runner-sha256': 'ab'.repeat(32) },
      properties: { machineType: 'e2-standard-4' },
    });
  const urls = { stable: add(TEMPLATES.stable), canary: add(TEMPLATES.canary) };
  for (const mig of migs) compute.setInstanceTemplate(mig, urls.stable);
  return urls;
}

/** A canary of one VM on `canary`, the rest on `stable` (as `npm run fleet -- rollout canary` sets it). */
export function startCanary(mig: FakeMig, urls: { stable: string; canary: string }): void {
  mig.versions = [
    { name: 'canary', instanceTemplate: urls.canary, targetSize: { fixed: 1 } },
    { name: 'stable', instanceTemplate: urls.stable },
  ];
  mig.updatePolicy = { type: 'OPPORTUNISTIC' };
}

/** The status service's own world: IAP's signer, and a metadata server for its service account. */
export interface StatusSide {
  iap: FakeIapIssuer;
  metadata: FakeMetadataServer;
  restoreEnv: () => void;
  close(): Promise<void>;
}

/**
 * Starts IAP's signer and the status service's metadata server (identity tokens signed by `google`, the issuer
 * the autoscaler trusts), and points google-auth-library at that server only.
 */
export async function startStatusSide(google: FakeGoogleIssuer): Promise<StatusSide> {
  const iap = await startFakeIapIssuer();
  const metadata = await startFakeMetadataServer({
    issuer: google,
    vm: {
      projectId: PROJECT.projectId,
      projectNumber: Number(PROJECT.projectNumber),
      zone: 'us-central1-1',
      instanceId: '7312345678901234567',
      instanceName: 'cloud-run-fleet-status',
      serviceAccountEmail: STATUS_ACCOUNT,
      attributes: {},
    },
  });
  const restoreEnv = isolateGoogleClientEnv(metadata.host);
  return {
    iap,
    metadata,
    restoreEnv,
    close: async () => {
      restoreEnv();
      await Promise.all([iap.close(), metadata.close()]);
    },
  };
}

export interface StatusOptions {
  autoscalerUrl: string;
  autoscalerAudience: string;
  compute: FakeComputeApi;
  github: FakeGitHub;
  side: StatusSide;
  env?: Record<string, string>;
  overrides?: FleetStatusOverrides;
}

export interface StatusUnderTest extends FleetStatusService {
  logs: CapturedLogger;
  /** An IAP assertion for this service: a member of example.com by default; `hd` null for a consumer account. */
  assertion(email?: string, hd?: string | null): string;
}

/** Builds the status service as main.ts does, from variables pointing at the fakes, with the real clients. */
export function buildStatus(options: StatusOptions): StatusUnderTest {
  const logs = captureLogs();
  const config = loadConfig({
    IAP_AUDIENCE,
    IAP_PUBLIC_KEYS_URL: options.side.iap.publicKeysUrl,
    STATUS_VIEWERS: VIEWERS,
    AUTOSCALER_URL: options.autoscalerUrl,
    AUTOSCALER_AUDIENCE: options.autoscalerAudience,
    GITHUB_API_URL: options.github.baseUrl,
    COMPUTE_API_ENDPOINT: options.compute.url,
    ...options.env,
  });
  const service = createService(config, {
    logger: logs.logger,
    auth: new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }),
    ...options.overrides,
  });
  return {
    ...service,
    logs,
    assertion: (email = 'alice@example.com', hd: string | null = 'example.com') =>
      options.side.iap.mintAssertion({ audience: IAP_AUDIENCE, email, hd: hd ?? undefined }),
  };
}
