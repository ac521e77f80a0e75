import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { Webhooks } from '@octokit/webhooks';
import { OAuth2Client } from 'google-auth-library';
import request from 'supertest';
import type { Response } from 'supertest';
import { createComputeMigApi, createService, INSTANCE_ID_LABEL_PREFIX, loadConfig } from '#autoscaler';
import type { AutoscalerService, ServiceOverrides } from '#autoscaler';
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeComputeApiOptions, FakeInstance, FakeMig } from '#fakes/compute-api';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub, FakeRunner } from '#fakes/github-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { captureLogs } from '#test-support/log-capture';
import type { CapturedLogger } from '#test-support/log-capture';

export const AUDIENCE = 'https://autoscaler.example.run.app';
export const WEBHOOK_SECRET = 'harness-webhook-secret-current';
export const PREVIOUS_WEBHOOK_SECRET = 'harness-webhook-secret-previous';
export const SCHEDULER = 'scheduler@runners-prod.iam.gserviceaccount.com';
export const STATUS_READER = 'fleet-status@runners-prod.iam.gserviceaccount.com';
export const PROJECT = { projectId: 'runners-prod', projectNumber: '123456789012' } as const;
/** The autoscaler's own Compute access token: it must never reach a log or a response. */
export const COMPUTE_ACCESS_TOKEN = 'ya29.autoscaler-harness-access-token';

/** The default pools: CPU jobs in a regional MIG with a zonal fallback; GPU jobs in two zones, capped at 4. */
export const POOLS = {
  pools: [
    {
      name: 'linux-cpu',
      scopes: ['my-org', 'match:partner/ci-.*'],
      labels: ['self-hosted', 'linux', 'x64', 'cpu'],
      migs: [
        `projects/${PROJECT.projectId}/regions/us-central1/instanceGroupManagers/gh-cpu`,
        `projects/${PROJECT.projectId}/zones/us-east1-b/instanceGroupManagers/gh-cpu-east`,
      ],
      runnerScope: 'my-org',
      runnerGroup: 'linux',
      maxRunners: 2000,
      instanceNamePrefix: 'gh-cpu',
    },
    {
      name: 'linux-gpu',
      scopes: ['my-org'],
      labels: ['self-hosted', 'linux', 'x64', 'gpu'],
      migs: [
        `projects/${PROJECT.projectId}/zones/us-central1-a/instanceGroupManagers/gh-gpu-a`,
        `projects/${PROJECT.projectId}/zones/us-central1-b/instanceGroupManagers/gh-gpu-b`,
      ],
      runnerScope: 'my-org',
      maxRunners: 4,
      instanceNamePrefix: 'gh-gpu',
    },
  ],
};

/** The loopback fakes behind an in-process autoscaler. */
export interface AutoscalerFakes {
  github: FakeGitHub;
  compute: FakeComputeApi;
  issuer: FakeGoogleIssuer;
  installationId: number;
  migs: { cpu: FakeMig; cpuEast: FakeMig; gpuA: FakeMig; gpuB: FakeMig };
  close(): Promise<void>;
}

/** Starts the fakes: org `my-org` with the App installed (runners and actions readable), and the MIGs of {@link POOLS}. */
export async function startAutoscalerFakes(compute: FakeComputeApiOptions = {}): Promise<AutoscalerFakes> {
  const [github, fakeCompute, issuer] = await Promise.all([
    startFakeGitHub(),
    startFakeComputeApi({ bootDelayMs: Infinity, deletionDelayMs: 0, ...compute }),
    startFakeGoogleIssuer(),
  ]);
  github.addOrg('my-org', { runnerGroups: ['linux'] });
  github.addRepo('my-org/app');
  github.addRepo('my-org/web');
  const installationId = github.addInstallation({
    account: 'my-org',
    permissions: { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' },
  });
  fakeCompute.addProject(PROJECT);
  const project = PROJECT.projectId;
  const migs = {
    cpu: fakeCompute.addMig({ project, region: 'us-central1', name: 'gh-cpu' }),
    cpuEast: fakeCompute.addMig({ project, zone: 'us-east1-b', name: 'gh-cpu-east' }),
    gpuA: fakeCompute.addMig({ project, zone: 'us-central1-a', name: 'gh-gpu-a' }),
    gpuB: fakeCompute.addMig({ project, zone: 'us-central1-b', name: 'gh-gpu-b' }),
  };
  return {
    github,
    compute: fakeCompute,
    issuer,
    installationId,
    migs,
    close: async () => {
      await Promise.all([github.close(), fakeCompute.close(), issuer.close()]);
    },
  };
}

export interface AutoscalerOptions {
  /** Variables over the harness's own (which point at the fakes). */
  env?: Record<string, string | undefined>;
  overrides?: ServiceOverrides;
  computeTimeoutMs?: number;
}

/** A signed delivery's options: by default, signed with the current secret. */
export interface DeliveryOptions {
  event?: string;
  guid?: string;
  secret?: string;
  /** Sends exactly this signature header (or none, with `null`). */
  signature?: string | null;
}

export interface Autoscaler extends AutoscalerService {
  logs: CapturedLogger;
  /** Signs `payload` (as GitHub does: HMAC-SHA256 of the exact body) and POSTs it to /webhook. */
  deliver(payload: unknown, options?: DeliveryOptions): Promise<Response>;
  /** POST /reconcile with an identity token for `email` (default: the scheduler). */
  reconcile(email?: string): Promise<Response>;
  /** GET /fleet with an identity token for `email` (default: the status reader). */
  getFleet(email?: string): Promise<Response>;
  /** An identity token for the service's audience. */
  token(email: string, audience?: string): string;
}

/** Builds the autoscaler exactly as main.ts does, from variables pointing at the fakes, with the real clients. */
export function buildAutoscaler(fakes: AutoscalerFakes, options: AutoscalerOptions = {}): Autoscaler {
  const logs = captureLogs();
  const env: Record<string, string | undefined> = {
    AUTH_AUDIENCE: AUDIENCE,
    ID_TOKEN_CERTS_URL: fakes.issuer.certsUrl,
    GITHUB_API_URL: fakes.github.baseUrl,
    GITHUB_APP_ID: String(fakes.github.app.id),
    GITHUB_APP_PRIVATE_KEY: fakes.github.app.privateKeyPkcs1Pem,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GITHUB_WEBHOOK_SECRET_PREVIOUS: PREVIOUS_WEBHOOK_SECRET,
    POOLS: JSON.stringify(POOLS),
    COMPUTE_API_ENDPOINT: fakes.compute.url,
    // actions/runner's releases from the fake too (none unless a test lists some): nothing leaves loopback.
    RUNNER_RELEASES_API_URL: fakes.github.baseUrl,
    RECONCILE_CALLERS: SCHEDULER,
    FLEET_VIEWERS: STATUS_READER,
    BATCH_WINDOW_MS: '50',
    ...options.env,
  };
  const config = loadConfig(env);
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: COMPUTE_ACCESS_TOKEN });
  const service = createService(config, {
    logger: logs.logger,
    compute: createComputeMigApi(fakes.compute.clientOptions(auth), {
      timeoutMs: options.computeTimeoutMs ?? 4000,
    }),
    ...options.overrides,
  });
  const token = (email: string, audience = AUDIENCE) => fakes.issuer.mintIdentityToken({ audience, email });
  return {
    ...service,
    logs,
    token,
    deliver: async (payload, o = {}) => {
      const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
      const signature =
        o.signature === undefined
          ? await new Webhooks({ secret: o.secret ?? WEBHOOK_SECRET }).sign(body)
          : o.signature;
      const call = request(service.app)
        .post('/webhook')
        .set('Content-Type', 'application/json')
        .set('X-GitHub-Event', o.event ?? 'workflow_job')
        .set('X-GitHub-Delivery', o.guid ?? crypto.randomUUID())
        .set('User-Agent', 'GitHub-Hookshot/harness');
      if (signature !== null) call.set('X-Hub-Signature-256', signature);
      return call.send(body);
    },
    reconcile: (email = SCHEDULER) =>
      request(service.app)
        .post('/reconcile')
        .set('Authorization', `Bearer ${token(email)}`),
    getFleet: (email = STATUS_READER) =>
      request(service.app)
        .get('/fleet')
        .set('Authorization', `Bearer ${token(email)}`),
  };
}

const require = createRequire(import.meta.url);
const definitions = require('@octokit/webhooks-examples') as Array<{
  name: string;
  examples: Array<Record<string, unknown> & { action?: string; installation?: unknown }>;
}>;

/** A real example payload of `event` (and `action`) from @octokit/webhooks-examples, deep-copied. */
export function examplePayload(event: string, action?: string): Record<string, unknown> {
  const examples = definitions.find((d) => d.name === event)?.examples ?? [];
  const example =
    examples.find((e) => (action === undefined || e.action === action) && e.installation !== undefined) ??
    examples.find((e) => action === undefined || e.action === action);
  if (!example) throw new Error(`no example for ${event} ${action ?? ''}`);
  return structuredClone(example);
}

export interface JobFields {
  id: number;
  action?: 'queued' | 'in_progress' | 'completed' | 'waiting';
  labels?: string[];
  repository?: string;
  installationId?: number;
  /** Default: now. */
  createdAt?: Date;
}

let nextJobId = 7_000_000_000;
/** A fresh job id, above anything the examples use. */
export const jobId = (): number => (nextJobId += 1);

/**
 * The `workflow_job` example payload for `action`, with the fields a test sets: the job's id and labels,
 * the repository (`owner/name`) and installation. The rest stays as GitHub sent it.
 */
export function workflowJob(fields: JobFields): Record<string, unknown> {
  const action = fields.action ?? 'queued';
  const payload = examplePayload('workflow_job', action === 'waiting' ? 'waiting' : action);
  const job = payload.workflow_job as Record<string, unknown>;
  const [owner = 'my-org', name = 'app'] = (fields.repository ?? 'my-org/app').split('/');
  payload.action = action;
  job.id = fields.id;
  job.labels = fields.labels ?? ['self-hosted', 'linux', 'x64', 'cpu'];
  job.status = action;
  job.created_at = (fields.createdAt ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const repository = payload.repository as Record<string, unknown>;
  repository.full_name = `${owner}/${name}`;
  repository.name = name;
  (repository.owner as Record<string, unknown>).login = owner;
  payload.installation = {
    id: fields.installationId ?? 1,
    node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==',
  };
  return payload;
}

/** Counts the fake Compute's createInstances calls and the instances they listed. */
export function createCalls(compute: FakeComputeApi): { calls: number; instances: string[] } {
  const calls = compute.controls.callsTo('POST', /\/createInstances$/);
  return {
    calls: calls.length,
    instances: calls.flatMap((c) =>
      ((c.body as { instances?: Array<{ name: string }> }).instances ?? []).map((i) => i.name),
    ),
  };
}

/** The runner labels a VM's JIT config gets from the token proxy: the pool's, plus its instance-id label. */
export function runnerLabels(instance: FakeInstance, labels: readonly string[]): string[] {
  return [...labels, `${INSTANCE_ID_LABEL_PREFIX}${instance.id}`];
}

/** The VM named `name` in any of the harness's MIGs (it must exist). */
export function vmNamed(fakes: AutoscalerFakes, name: string): FakeInstance {
  for (const mig of Object.values(fakes.migs)) {
    const instance = mig.members.get(name)?.instance;
    if (instance) return instance;
  }
  throw new Error(`no VM named ${name}`);
}

/**
 * Registers the runner a booted VM would (an ephemeral JIT runner in `my-org`, named after the VM, with
 * the pool's labels and its instance-id label); online unless said otherwise.
 */
export function registerRunner(
  fakes: AutoscalerFakes,
  name: string,
  labels: readonly string[],
  options: { status?: 'online' | 'offline'; busy?: boolean; version?: string | null } = {},
): FakeRunner {
  return fakes.github.addRunner(
    { kind: 'org', org: 'my-org' },
    { name, labels: runnerLabels(vmNamed(fakes, name), labels), ephemeral: true, ...options },
  );
}

/** `POOLS` for the harness's pools, with fields changed per pool name (`minIdle`, timeouts, …). */
export function poolsWith(changes: Record<string, Record<string, unknown>>): string {
  return JSON.stringify({
    pools: POOLS.pools.map((pool) => ({ ...pool, ...changes[pool.name] })),
  });
}

/** Deletes a VM from its MIG as the VM itself would (through the deleter): it is gone right after. */
export async function vmDeletesItself(fakes: AutoscalerFakes, name: string): Promise<void> {
  const mig = Object.values(fakes.migs).find((m) => m.members.has(name));
  if (!mig) throw new Error(`no member named ${name}`);
  const member = mig.members.get(name)!;
  const response = await fetch(
    `${fakes.compute.url}/compute/v1/projects/${PROJECT.projectId}/${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}/deleteInstances`,
    {
      method: 'POST',
      headers: { authorization: 'Bearer ya29.vm-stand-in', 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [`zones/${member.zone}/instances/${name}`] }),
    },
  );
  if (response.status !== 200) throw new Error(`deleteInstances answered ${response.status}`);
  await new Promise((resolve) => setTimeout(resolve, 5)); // deletionDelayMs 0: gone on the next turn
}
