import crypto from 'node:crypto';
import http from 'node:http';
import type { Express } from 'express';
import type { OAuth2Client } from 'google-auth-library';
import request from 'supertest';
import type { Test } from 'supertest';
import { createMutationScheduler, createTokenProxy, loadConfig } from '#token-proxy';
import type { MutationScheduler } from '#token-proxy';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { ComputeEngineIdentity, FakeGoogleIssuer } from '#fakes/google-issuer';
import { captureLogs } from './log-capture.js';
import type { CapturedLogger } from './log-capture.js';

export const PROXY_AUDIENCE = 'https://token-proxy.example.run.app';
export const PAT = 'ghp_harnessPersonalAccessToken0123456789';

/**
 * A 19-digit Compute Engine instance id, the same for the same name (a VM's id is its own, and the proxy
 * binds runners and limits to it), different for different names.
 */
export function instanceIdOf(name: string): string {
  const n = BigInt(`0x${crypto.createHash('sha256').update(name).digest('hex').slice(0, 16)}`);
  return String(1_000_000_000_000_000_000n + (n % 9_000_000_000_000_000_000n));
}

/** A VM identity for tokens; override what a test cares about. */
export function vm(name: string, overrides: Partial<ComputeEngineIdentity> = {}): ComputeEngineIdentity {
  return {
    projectId: 'runners-prod',
    projectNumber: 123456789012,
    zone: 'us-central1-a',
    instanceId: instanceIdOf(name),
    instanceName: name,
    ...overrides,
  };
}

export interface ProxyOptions {
  credentials?: 'pat' | 'app' | 'app-discover';
  allowed?: string[];
  denied?: string[];
  policy?: object;
  reuseSeconds?: number;
  deadlineMs?: number;
  retries?: number;
  maxRateLimitWaitSeconds?: number;
  /** Deadline of each GitHub request attempt (default: the client's 20 s). */
  requestTimeoutMs?: number;
  /** Another GitHub in front of the fake (a test's hanging front); the fake's URL by default. */
  githubApiUrl?: string;
  /** Another certificate URL (a hanging front of the issuer); the fake issuer's by default. */
  certsUrl?: string;
  /** GITHUB_WRITE_INTERVAL_MS; default 0 (no spacing). */
  writeIntervalMs?: number;
  /** MUTATION_QUEUE_LIMIT and MUTATION_QUEUE_LIMIT_PER_CALLER; the service's defaults when absent. */
  mutationQueueLimit?: number;
  mutationQueueLimitPerCaller?: number;
  /** JIT_CONFIGS_PER_INSTANCE_PER_HOUR; the service default (2) when absent. */
  jitConfigsPerHour?: number;
  /** A scheduler the test watches, in place of the one the configuration builds. */
  mutationScheduler?: MutationScheduler;
  /** `GET /runner` requests per instance and minute; default 1000. */
  runnerReadsPerMinute?: number;
  /** VERIFY_INSTANCE_EXISTS against this fake Compute API, with this client's credentials. */
  verifyInstances?: { endpoint: string; authClient: OAuth2Client };
  /** The proxy's clock (limits, token cache); `Date.now` by default. */
  now?: () => number;
}

/** Fakes that outlive one proxy: start once per test file. */
export interface ProxyFakes {
  issuer: FakeGoogleIssuer;
  github: FakeGitHub;
  installationId: number;
  close(): Promise<void>;
}

/** The fake GitHub seeded with an org `my-org` (groups presubmit, postsubmit), repos and an enterprise. */
export async function startProxyFakes(): Promise<ProxyFakes> {
  const issuer = await startFakeGoogleIssuer();
  const github = await startFakeGitHub();
  github.addOrg('my-org', { runnerGroups: ['presubmit', 'postsubmit'] });
  github.addOrg('other-org');
  github.addRepo('my-org/app');
  github.addRepo('my-org/secret');
  github.addEnterprise('acme', { runnerGroups: ['enterprise-ci'] });
  github.addPat(PAT);
  const installationId = github.addInstallation({ account: 'my-org' });
  return {
    issuer,
    github,
    installationId,
    close: async () => {
      await Promise.all([issuer.close(), github.close()]);
    },
  };
}

export interface Proxy {
  app: Express;
  logs: CapturedLogger;
  /** An identity token for the proxy's audience. */
  token(options?: TokenOptions): string;
  /** A request to the proxy carrying a fresh identity token for `identity`; `.send(body)` it. */
  call(method: 'get' | 'post' | 'delete', path: string, identity?: TokenOptions): Test;
}

export interface TokenOptions {
  email?: string;
  compute?: ComputeEngineIdentity;
  audience?: string;
}

/**
 * Builds the token proxy as main.ts does (loadConfig, then createTokenProxy), configured by environment
 * variables pointed at the fakes, with short retry waits and no write spacing. Without `policy` it runs
 * with `POLICY=open`.
 */
export function buildProxy(fakes: ProxyFakes, options: ProxyOptions = {}): Proxy {
  const logs = captureLogs();
  const mode = options.credentials ?? 'pat';
  const credentials: Record<string, string> =
    mode === 'pat'
      ? { GITHUB_TOKEN: PAT }
      : {
          GITHUB_APP_ID: String(fakes.github.app.id),
          GITHUB_APP_PRIVATE_KEY: fakes.github.app.privateKeyPkcs1Pem,
          ...(mode === 'app' ? { GITHUB_INSTALLATION_ID: String(fakes.installationId) } : {}),
        };
  const config = loadConfig({
    AUTH_AUDIENCE: PROXY_AUDIENCE,
    ID_TOKEN_CERTS_URL: options.certsUrl ?? fakes.issuer.certsUrl,
    GITHUB_API_URL: options.githubApiUrl ?? fakes.github.baseUrl,
    ...credentials,
    ALLOWED_SCOPES: (options.allowed ?? ['my-org', 'match:my-org/.*', 'enterprise:acme']).join(';'),
    ...(options.denied ? { DENIED_SCOPES: options.denied.join(';') } : {}),
    // Without a policy the proxy refuses to start unless told explicitly that everything is open.
    POLICY: options.policy ? JSON.stringify(options.policy) : 'open',
    TOKEN_REUSE_MIN_REMAINING_SECONDS: String(options.reuseSeconds ?? 900),
    GITHUB_WRITE_INTERVAL_MS: String(options.writeIntervalMs ?? 0),
    ...(options.mutationQueueLimit === undefined
      ? {}
      : { MUTATION_QUEUE_LIMIT: String(options.mutationQueueLimit) }),
    ...(options.mutationQueueLimitPerCaller === undefined
      ? {}
      : { MUTATION_QUEUE_LIMIT_PER_CALLER: String(options.mutationQueueLimitPerCaller) }),
    ...(options.jitConfigsPerHour === undefined
      ? {}
      : { JIT_CONFIGS_PER_INSTANCE_PER_HOUR: String(options.jitConfigsPerHour) }),
    ...(options.verifyInstances
      ? { VERIFY_INSTANCE_EXISTS: 'true', COMPUTE_API_ENDPOINT: options.verifyInstances.endpoint }
      : {}),
  });
  // Tests wait less than the one second GITHUB_DEADLINE_SECONDS can express.
  config.githubDeadlineMs = options.deadlineMs ?? 10_000;
  const app = createTokenProxy(config, {
    logger: logs.logger,
    githubClient: {
      retries: options.retries ?? 3,
      retryBaseMs: 5,
      maxRateLimitWaitSeconds: options.maxRateLimitWaitSeconds ?? 2,
      ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
    },
    runnerReadsPerMinute: options.runnerReadsPerMinute ?? 1000,
    ...(options.now ? { now: options.now } : {}),
    ...(options.mutationScheduler ? { mutationScheduler: options.mutationScheduler } : {}),
    ...(options.verifyInstances ? { computeAuthClient: options.verifyInstances.authClient } : {}),
  });
  const token = ({
    email = 'runner@runners-prod.iam.gserviceaccount.com',
    compute,
    audience = PROXY_AUDIENCE,
  }: TokenOptions = {}) =>
    fakes.issuer.mintIdentityToken({ audience, email, ...(compute ? { compute } : {}) });
  return {
    app,
    logs,
    token,
    call: (method, path, identity) =>
      request(app)
        [method](path)
        .set('Authorization', `Bearer ${token(identity)}`),
  };
}

/**
 * Waits until `condition` holds, polling: for states a test cannot await directly (a request queued inside
 * the proxy). Not a timing assertion: the limit only turns a hang into a failure that names `what`.
 */
export async function until(what: string, condition: () => boolean, limitMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > limitMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A mutation scheduler whose one slot is held until `release()`, so requests queue deterministically. */
export async function blockedMutationScheduler(
  limits: { maxQueued?: number; maxQueuedPerCaller?: number } = {},
): Promise<{ scheduler: MutationScheduler; release(): void }> {
  const scheduler = createMutationScheduler({
    intervalMs: 0,
    maxQueued: limits.maxQueued ?? 100,
    maxQueuedPerCaller: limits.maxQueuedPerCaller ?? 4,
  });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await new Promise<void>((started) => {
    scheduler
      .schedule({ account: 'test', lane: 'blocker' }, undefined, () => {
        started();
        return gate;
      })
      .catch(() => {});
  });
  return { scheduler, release };
}

/** An answer read off a real socket. */
export interface SocketAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { error?: string } & Record<string, unknown>;
}

/**
 * A request on its own socket, which the test may close before the answer (a caller that gives up).
 * `answer` resolves to `undefined` when the socket was closed first.
 */
export function openRequest(
  url: string,
  request: { method: string; path: string; token: string; body?: unknown },
): { answer: Promise<SocketAnswer | undefined>; close(): void } {
  const req = http.request(`${url}${request.path}`, {
    method: request.method,
    agent: false,
    headers: { authorization: `Bearer ${request.token}`, 'content-type': 'application/json' },
  });
  const answer = new Promise<SocketAnswer | undefined>((resolve) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: SocketAnswer['body'] = {};
        try {
          body = JSON.parse(text) as SocketAnswer['body'];
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
  });
  req.end(request.body === undefined ? undefined : JSON.stringify(request.body));
  return { answer, close: () => req.destroy() };
}
