import crypto from 'node:crypto';
import { createFakeApp, listenOnLoopback } from './fake-server.js';
import type { FakeControls, RunningFake } from './fake-server.js';
import { signAppJwt } from './github/app-jwt.js';
import type { AppJwtSigning } from './github/app-jwt.js';
import { GitHubError, gitHubErrorBody, gitHubErrorHandler } from './github/github-error.js';
import { GitHubState } from './github/github-state.js';
import type {
  FakeRunner,
  InstallationOptions,
  IssuedTokens,
  NewRunner,
  RunnerScope,
} from './github/github-state.js';
import { createRestRouter } from './github/rest-routes.js';
import { createSandboxRouter } from './github/sandbox-routes.js';
import { createRunnerReleasesRouter } from './github/runner-releases.js';
import type { FakeRunnerRelease } from './github/runner-releases.js';
import { ActionsJobs } from './github/actions-jobs.js';
import type { FakeJob, NewJob } from './github/actions-jobs.js';
import { WebhookDeliveries } from './github/webhook-deliveries.js';
import type { DeliverySettings, FakeHookDelivery, WebhookTarget } from './github/webhook-deliveries.js';

export {
  DEFAULT_INSTALLATION_PERMISSIONS,
  DEFAULT_RUNNER_VERSION,
  gitHubUrlOf,
  scopeFromGitHubUrl,
} from './github/github-state.js';
export type {
  FakeRunner,
  InstallationOptions,
  IssuedInstallationToken,
  IssuedJitConfig,
  IssuedRunnerToken,
  IssuedTokens,
  NewRunner,
  PermissionLevel,
  Permissions,
  RunnerLabel,
  RunnerScope,
} from './github/github-state.js';
export type { AppJwtSigning } from './github/app-jwt.js';
export type { FakeRunnerRelease } from './github/runner-releases.js';
export type { FakeJob, NewJob } from './github/actions-jobs.js';
export type { DeliverySettings, FakeHookDelivery, WebhookTarget } from './github/webhook-deliveries.js';

/** The fake's GitHub App: what a test configures the token proxy (or `@octokit/app`) with. */
export interface FakeGitHubApp {
  id: number;
  clientId: string;
  /** PKCS#8, the only format `universal-github-app-jwt` signs with directly. */
  privateKeyPem: string;
  /** PKCS#1 (`BEGIN RSA PRIVATE KEY`), the format GitHub hands out when you generate an App key. */
  privateKeyPkcs1Pem: string;
  publicKeyPem: string;
}

export interface StartFakeGitHubOptions {
  port?: number;
  /** Default 4242. */
  appId?: number;
  /** Default `Iv23` + random hex, shaped like GitHub's client IDs. */
  clientId?: string;
  /** Lifetime of installation tokens; default 3600 as on GitHub. */
  tokenTtlSeconds?: number;
}

export interface SecondaryRateLimitOptions {
  method?: string;
  /** Default: every REST path (not the `/_sandbox/` ones). */
  path?: string | RegExp;
  /** The `retry-after` header; default 1. */
  retryAfterSeconds?: number;
  /** How many requests get the 403; default 1. */
  times?: number;
}

/**
 * A stateful stand-in for the GitHub REST API on loopback: App installations and their tokens, PATs, the
 * self-hosted runner endpoints of organizations, repositories and enterprises, workflow jobs handed to
 * runners, and the App's webhook with its delivery log. Every call is recorded in `controls`; faults and
 * latency are injected there too.
 */
export interface FakeGitHub extends RunningFake {
  /** What Octokit's `baseUrl` option takes (same as `url`). */
  readonly baseUrl: string;
  readonly controls: FakeControls;
  readonly app: FakeGitHubApp;
  /** Registration/remove tokens, installation tokens and JIT configs issued so far, in order. */
  readonly issuedTokens: IssuedTokens;
  /** Adds an organization. Every org has runner group `Default` (id 1); `runnerGroups` get ids 2, 3, … */
  addOrg(login: string, options?: { runnerGroups?: string[] }): void;
  /** Adds a repository, `owner/name`; the owner may be an org or a user. */
  addRepo(fullName: string): void;
  /** Renames (or transfers) a repository; requests for its former name get GitHub's 301/307 redirect. */
  renameRepo(from: string, to: string): void;
  /** Adds an enterprise; runner groups as for {@link FakeGitHub.addOrg}. */
  addEnterprise(slug: string, options?: { runnerGroups?: string[] }): void;
  /** Installs the App on an account; returns the installation id. */
  addInstallation(options: InstallationOptions): number;
  /** Accepts `token` as a personal access token that may do everything, enterprises included. */
  addPat(token: string, options?: { scopes?: string[] }): void;
  listRunners(scope: RunnerScope): FakeRunner[];
  addRunner(scope: RunnerScope, runner: NewRunner): FakeRunner;
  /**
   * Flips a runner's status, busy flag or reported version (ids are unique across scopes). Throws when there
   * is no such runner.
   */
  setRunner(
    id: number,
    patch: { status?: 'online' | 'offline'; busy?: boolean; version?: string | null },
  ): FakeRunner;
  /** Sets the (global) primary rate-limit budget; at 0, authenticated requests get 403. */
  setRateLimitRemaining(remaining: number, resetInSeconds?: number): void;
  /** Makes the next matching request(s) fail with GitHub's secondary rate limit 403 and `retry-after`. */
  injectSecondaryRateLimit(options?: SecondaryRateLimitOptions): void;
  /**
   * Enforces GitHub's secondary limit on REST points (off by default): a GET, HEAD or OPTIONS costs 1
   * point, any other method 5, and a request that would take the last 60 s past `pointsPerMinute` (GitHub
   * documents 900) is refused with the secondary-limit 403 and a `retry-after` (refused requests cost
   * nothing). `undefined` turns it off.
   * https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits
   */
  limitPointsPerMinute(pointsPerMinute: number | undefined): void;
  /** Requests refused by {@link FakeGitHub.limitPointsPerMinute}'s budget so far. */
  readonly pointsLimitRefusals: number;
  /** Moves the fake's clock (and its Date header) by `seconds`: skews JWT checks, ages tokens. */
  setClockOffset(seconds: number): void;
  /**
   * Signs an App JWT: by default a valid one, as `universal-github-app-jwt` builds it on the fake's clock;
   * `claims` override `iat`, `exp`, `iss`; `signing` breaks the signature on purpose.
   */
  signAppJwt(claims?: Record<string, unknown>, signing?: AppJwtSigning): string;

  // --- The App's webhook and Actions jobs (the autoscaler's side of GitHub) ------------------------

  /** Points the App's webhook at `target` (the autoscaler's `/webhook` URL and secret); `undefined` turns it off. */
  setWebhook(target: WebhookTarget | undefined): void;
  /** Drop share, randomness and timeout of deliveries; change them in place. */
  readonly deliverySettings: DeliverySettings;
  /** Records the next `count` deliveries as failed without sending them (lost on the way). */
  dropNextDeliveries(count: number): void;
  /** Every delivery attempt so far, oldest first (what `GET /app/hook/deliveries` pages through, newest first). */
  readonly deliveries: readonly FakeHookDelivery[];
  /** Resolves once every delivery under way has been answered or has timed out. */
  deliveriesSettled(): Promise<void>;
  /**
   * Queues a job and sends its `queued` delivery; GitHub hands it to an online idle runner whose labels
   * include all of the job's (in the repository's org or the repository), sending `in_progress`.
   */
  queueJob(job: NewJob): FakeJob;
  getJob(id: number): FakeJob | undefined;
  listJobs(): FakeJob[];
  /** Completes a job (sending `completed`); its runner is free again, or removed if ephemeral. */
  completeJob(id: number, conclusion?: string): FakeJob;
  /** When set, jobs complete by themselves this long after they start. */
  autoCompleteJobsAfterMs: number | undefined;

  /** The releases `GET /repos/actions/runner/releases` lists (none at first); replace the list at will. */
  runnerReleases: FakeRunnerRelease[];
}

const SECONDARY_RATE_LIMIT =
  'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.';

/** Starts the fake GitHub API on 127.0.0.1 with a freshly generated App key. */
export async function startFakeGitHub(options: StartFakeGitHubOptions = {}): Promise<FakeGitHub> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const appInfo: FakeGitHubApp = {
    id: options.appId ?? 4242,
    clientId: options.clientId ?? `Iv23${crypto.randomBytes(8).toString('hex')}`,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKeyPkcs1Pem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicKeyPem,
  };
  const state = new GitHubState(options.tokenTtlSeconds ?? 3600);

  const deliveries = new WebhookDeliveries(appInfo.id, () => state.now());
  const jobs = new ActionsJobs(state, deliveries);
  const actions = { deliveries, jobs };

  const { app, controls } = createFakeApp();
  app.use('/_sandbox', createSandboxRouter(state, actions));
  const points = { perMinute: undefined as number | undefined, spent: [] as number[][], refusals: 0 };
  app.use((req, res, next) => {
    if (points.perMinute === undefined) {
      next();
      return;
    }
    const now = Date.now();
    while (points.spent.length > 0 && points.spent[0]![0]! <= now - 60_000) points.spent.shift();
    const cost = ['GET', 'HEAD', 'OPTIONS'].includes(req.method) ? 1 : 5;
    let used = cost;
    for (const [, spent] of points.spent) used += spent!;
    if (used <= points.perMinute) {
      points.spent.push([now, cost]);
      next();
      return;
    }
    // Wait until enough of the window has passed for this request to fit.
    let freed = used - points.perMinute;
    let until = now;
    for (const [time, spent] of points.spent) {
      freed -= spent!;
      until = time! + 60_000;
      if (freed <= 0) break;
    }
    points.refusals += 1;
    res
      .status(403)
      .set({
        ...state.rateLimitHeaders(),
        'retry-after': String(Math.max(1, Math.ceil((until - now) / 1000))),
      })
      .json(
        gitHubErrorBody(
          403,
          SECONDARY_RATE_LIMIT,
          'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        ),
      );
  });
  app.use(createRestRouter(state, { id: appInfo.id, clientId: appInfo.clientId, publicKey }, actions));
  let runnerReleases: FakeRunnerRelease[] = [];
  app.use(createRunnerReleasesRouter(() => runnerReleases));
  app.use(() => {
    throw new GitHubError(404, 'Not Found');
  });
  app.use(gitHubErrorHandler);
  const running = await listenOnLoopback(app, options.port);

  return {
    ...running,
    close: async () => {
      jobs.stop();
      await running.close();
    },
    baseUrl: running.url,
    controls,
    app: appInfo,
    issuedTokens: state.issued,
    addOrg: (login, o) => state.addOrg(login, o),
    addRepo: (fullName) => state.addRepo(fullName),
    renameRepo: (from, to) => state.renameRepo(from, to),
    addEnterprise: (slug, o) => state.addEnterprise(slug, o),
    addInstallation: (o) => state.addInstallation(o),
    addPat: (token, o) => state.addPat(token, o),
    listRunners: (scope) => state.listRunners(scope),
    addRunner: (scope, runner) => state.addRunner(scope, runner),
    setRunner: (id, patch) => state.setRunner(id, patch),
    setRateLimitRemaining: (remaining, resetInSeconds) =>
      state.setRateLimitRemaining(remaining, resetInSeconds),
    injectSecondaryRateLimit: ({ method, path, retryAfterSeconds = 1, times = 1 } = {}) => {
      controls.addFault({
        ...(method !== undefined && { method }),
        path: path ?? /^\/(?!_sandbox\/)/,
        times,
        status: 403,
        headers: { ...state.rateLimitHeaders(), 'retry-after': String(retryAfterSeconds) },
        body: gitHubErrorBody(
          403,
          SECONDARY_RATE_LIMIT,
          'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        ),
      });
    },
    limitPointsPerMinute: (pointsPerMinute) => {
      points.perMinute = pointsPerMinute;
      points.spent = [];
    },
    get pointsLimitRefusals() {
      return points.refusals;
    },
    setClockOffset: (seconds) => {
      state.clockOffsetSeconds = seconds;
    },
    signAppJwt: (claims = {}, signing) => {
      const iat = Math.floor(state.now() / 1000) - 30;
      const payload = { iat, exp: iat + 600, iss: String(appInfo.id), ...claims };
      return signAppJwt(payload, { privateKey, publicKeyPem }, signing);
    },
    setWebhook: (target) => {
      deliveries.target = target;
    },
    deliverySettings: deliveries.settings,
    dropNextDeliveries: (count) => deliveries.dropNext(count),
    deliveries: deliveries.log,
    deliveriesSettled: () => deliveries.settled(),
    queueJob: (job) => jobs.queue(job),
    getJob: (id) => jobs.get(id),
    listJobs: () => jobs.list(),
    completeJob: (id, conclusion) => jobs.complete(id, conclusion),
    get autoCompleteJobsAfterMs() {
      return jobs.autoCompleteAfterMs;
    },
    set autoCompleteJobsAfterMs(ms: number | undefined) {
      jobs.autoCompleteAfterMs = ms;
    },
    get runnerReleases() {
      return runnerReleases;
    },
    set runnerReleases(list: FakeRunnerRelease[]) {
      runnerReleases = list;
    },
  };
}
