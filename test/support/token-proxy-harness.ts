import type { Express } from 'express';
import request from 'supertest';
import type { Test } from 'supertest';
import { createTokenProxy, loadConfig } from '#token-proxy';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { ComputeEngineIdentity, FakeGoogleIssuer } from '#fakes/google-issuer';
import { captureLogs } from './log-capture.js';
import type { CapturedLogger } from './log-capture.js';

export const PROXY_AUDIENCE = 'https://token-proxy.example.run.app';
export const PAT = 'ghp_harnessPersonalAccessToken0123456789';

/** A VM identity for tokens; override what a test cares about. */
export function vm(name: string, overrides: Partial<ComputeEngineIdentity> = {}): ComputeEngineIdentity {
  return {
    projectId: 'runners-prod',
    projectNumber: 123456789012,
    zone: 'us-central1-a',
    instanceId: '9223372036854775809',
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
  call(method: 'post' | 'delete', path: string, identity?: TokenOptions): Test;
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
    GITHUB_WRITE_INTERVAL_MS: '0',
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
