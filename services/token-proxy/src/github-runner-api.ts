import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck';
import { z } from 'zod';
import { createDeadlineFetch, HttpError } from '#shared';
import type { Logger } from '#shared';
import type { GitHubCredentials } from './config.js';
import {
  createRateLimitBackoff,
  failureCacheMs,
  GitHubCallError,
  toGitHubCallError,
} from './github-call-error.js';
import { createLookupCache } from './lookup-cache.js';
import { SERVICE_CALLER } from './mutation-scheduler.js';
import type { MutationCaller, MutationScheduler } from './mutation-scheduler.js';
import { DEFAULT_RUNNER_GROUP } from './policy.js';
import { scopeCacheKey, scopePath } from './scope.js';
import type { Scope } from './scope.js';

/** A registration or remove token as GitHub issued it. */
export interface RunnerToken {
  token: string;
  /** RFC 3339. */
  expiresAt: string;
}

export interface JitConfigRequest {
  name: string;
  runnerGroupId: number;
  labels: string[];
  workFolder?: string;
}

export interface JitConfig {
  encodedJitConfig: string;
  runner: { id: number; name: string; labels: string[] };
}

export interface RunnerInfo {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  /** Label names; the instance-id label (derived-labels.ts) binds the runner to its VM. */
  labels: string[];
}

/**
 * Who a mutating call is for, so the mutation scheduler can serve callers in turn and drop the call when
 * `signal` aborts (the caller went away, or its deadline passed) before it reaches GitHub.
 */
export interface GitHubCallContext {
  caller: MutationCaller;
  signal?: AbortSignal;
}

export interface RunnerGroupInfo {
  id: number;
  name: string;
}

/** What the proxy needs from GitHub; the Octokit adapter below is the production implementation. */
export interface GitHubRunnerApi {
  createToken(
    scope: Scope,
    kind: 'registration' | 'remove',
    context?: GitHubCallContext,
  ): Promise<RunnerToken>;
  generateJitConfig(scope: Scope, request: JitConfigRequest, context?: GitHubCallContext): Promise<JitConfig>;
  findRunner(scope: Scope, name: string): Promise<RunnerInfo | undefined>;
  deleteRunner(scope: Scope, runnerId: number, context?: GitHubCallContext): Promise<void>;
  listRunnerGroups(scope: Scope): Promise<RunnerGroupInfo[]>;
}

export interface OctokitRunnerApiOptions {
  credentials: GitHubCredentials;
  baseUrl: string;
  logger: Logger;
  /** Retries of a 5xx or network error (plugin-retry). */
  retries?: number;
  /** Base of plugin-retry's quadratic backoff, in ms (tests shorten it). */
  retryBaseMs?: number;
  /** A rate limit whose `retry-after` is longer than this is not waited for: the caller gets 503. */
  maxRateLimitWaitSeconds?: number;
  /**
   * The one scheduler of the service's mutating requests (mutation-scheduler.ts): it spaces them
   * (GITHUB_WRITE_INTERVAL_MS) and serves callers in turn. Without it, mutating requests are not spaced.
   */
  mutationScheduler?: MutationScheduler;
  /** Cuts off any single GitHub request after this long. */
  requestTimeoutMs?: number;
  /** How long a looked-up installation id is trusted. */
  installationCacheMs?: number;
  now?: () => number;
}

/** Installation-token requests: the proxy's own, shared by callers; plugin-throttling treats them apart too. */
const AUTH_REQUEST = /^\/app\/installations\/[^/]+\/access_tokens$/;

/**
 * Sends every mutating request (not GET or HEAD, not an installation token) through the mutation
 * scheduler, with the caller its `request.mutation` option names. Registered after plugin-retry and
 * plugin-throttling, so it wraps them: a request waits for its turn once, and its retries and
 * rate-limit waits happen in its turn, holding back the other mutations as GitHub asks.
 *
 * Every request also gets its whole-call deadline here, `callTimeoutMs` for all its attempts and waits
 * together, and for a mutation it starts when its turn comes: a deadline that ran while the request
 * waited in the queue would fail it unsent and waste the turn (a boot storm's queue is longer than the
 * deadline).
 */
function scheduleMutations(scheduler: MutationScheduler | undefined, callTimeoutMs: number) {
  return (octokit: Octokit) => {
    octokit.hook.wrap('request', async (request, parameters) => {
      const send = async () => {
        const deadline = AbortSignal.timeout(callTimeoutMs);
        const given = parameters.request?.signal;
        // In place: before-after-hook hands every inner layer (plugin-throttling, plugin-retry, fetch) the
        // options object of the outermost call, so a copy passed on here would never reach them.
        parameters.request = {
          ...parameters.request,
          signal: given ? AbortSignal.any([given, deadline]) : deadline,
        };
        return request(parameters);
      };
      const method = parameters.method.toUpperCase();
      const { pathname } = new URL(parameters.url, 'https://github.invalid');
      if (!scheduler || method === 'GET' || method === 'HEAD' || AUTH_REQUEST.test(pathname)) return send();
      const context = (parameters.request as { mutation?: GitHubCallContext } | undefined)?.mutation;
      return scheduler.schedule(context?.caller ?? SERVICE_CALLER, context?.signal, send);
    });
    return {};
  };
}

/**
 * Statuses plugin-retry must not repeat: its defaults (400, 401, 403, 404, 410, 422, 451) plus 409 and 412.
 * A 409 from generate-jitconfig means the runner name is taken, possibly by this very request's first
 * attempt; repeating the POST cannot change that, and the proxy's own conflict handling needs to see it at
 * once. https://github.com/octokit/plugin-retry.js#options
 */
export const DO_NOT_RETRY = [400, 401, 403, 404, 409, 410, 412, 422, 451];

/**
 * The fetch every GitHub request goes through, App JWT and installation-token requests included:
 * - `redirect: 'manual'`: a credential never follows a redirect. GitHub redirects requests for a renamed
 *   or transferred repository (https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#follow-redirects),
 *   and following one would act on a scope the allow and deny lists never saw; the 3xx becomes a 502.
 * - a deadline per attempt, `timeoutMs` from when the attempt is sent ({@link createDeadlineFetch}), on
 *   top of the call's own: a GitHub that accepts the connection and never answers cannot hold a shared
 *   request (a token being minted for every waiting caller) forever.
 */
export function createGitHubFetch(
  timeoutMs: number,
  fetchImpl: typeof fetch = globalThis.fetch,
): typeof fetch {
  const withDeadline = createDeadlineFetch(timeoutMs, 'GitHub', fetchImpl);
  return (input, init = {}) => withDeadline(input, { ...init, redirect: 'manual' });
}

/** Installation-token permissions that runner management needs, and nothing more. */
function permissionsFor(scope: Scope): Record<string, 'write'> {
  return scope.kind === 'org' ? { organization_self_hosted_runners: 'write' } : { administration: 'write' };
}

/**
 * Builds the GitHub adapter on Octokit with plugin-retry (5xx and network errors, with backoff),
 * plugin-throttling (rate limits honoured) and the mutation scheduler (mutating requests serial, spaced
 * and fair). With a GitHub App, every call uses
 * an installation token down-scoped to the permission its scope needs (and, for a repository, to that one
 * repository); @octokit/auth-app caches those tokens and shares concurrent requests for one.
 */
export function createOctokitRunnerApi(options: OctokitRunnerApiOptions): GitHubRunnerApi {
  const { credentials, logger } = options;
  const now = options.now ?? Date.now;
  const maxWait = options.maxRateLimitWaitSeconds ?? 10;
  const timeoutMs = options.requestTimeoutMs ?? 20_000;
  const ProxyOctokit = Octokit.plugin(
    retry,
    throttling,
    scheduleMutations(options.mutationScheduler, timeoutMs),
  );
  const octokit = new ProxyOctokit({
    baseUrl: options.baseUrl,
    userAgent: 'gce-github-runners-token-proxy',
    ...(credentials.kind === 'pat' ? { auth: credentials.token } : {}),
    retry: {
      retries: options.retries ?? 3,
      retryAfterBaseValue: options.retryBaseMs ?? 500,
      doNotRetry: DO_NOT_RETRY,
    },
    request: { fetch: createGitHubFetch(timeoutMs), redirect: 'manual' },
    throttle: {
      id: `token-proxy-${options.baseUrl}`,
      // The mutation scheduler spaces mutating requests; plugin-throttling's own write queue (FIFO, and
      // shared by the whole process by default) would undo its round-robin, so it lets everything pass.
      write: new Bottleneck.Group({ maxConcurrent: null, minTime: 0 }),
      fallbackSecondaryRateRetryAfter: 60,
      onRateLimit: (
        retryAfter: number,
        request: { method: string; url: string },
        _o: unknown,
        retryCount: number,
      ) => {
        logger.warn({ retryAfter, method: request.method, url: request.url }, 'GitHub primary rate limit');
        return retryCount < 1 && retryAfter <= maxWait;
      },
      onSecondaryRateLimit: (
        retryAfter: number,
        request: { method: string; url: string },
        _o: unknown,
        retryCount: number,
      ) => {
        logger.warn({ retryAfter, method: request.method, url: request.url }, 'GitHub secondary rate limit');
        return retryCount < 2 && retryAfter <= maxWait;
      },
    },
    // Octokit logs request failures with their text; this service logs its own classified lines instead.
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });

  // A redirect (fetched with redirect: 'manual', above) is refused after retries and throttling, whoever
  // made the request: this hook is registered last, so it runs outermost.
  octokit.hook.after('request', (response) => {
    if (response.status >= 300 && response.status < 400) {
      throw new GitHubCallError('moved', response.status, `HTTP ${response.status}`);
    }
  });
  const secondaryBackoff = createRateLimitBackoff();

  const appAuth =
    credentials.kind === 'app'
      ? createAppAuth({
          appId: credentials.appId,
          privateKey: credentials.privateKey,
          request: octokit.request,
        })
      : undefined;

  // Bounded, and a scope the App is not installed on is remembered for a while too (failureCacheMs).
  const installations = createLookupCache<number>({
    maxEntries: 1000,
    ttlMs: options.installationCacheMs ?? 10 * 60_000,
    failureTtlMs: failureCacheMs,
    now,
  });

  async function findInstallation(scope: Scope): Promise<number> {
    if (credentials.kind === 'app' && credentials.installationId !== undefined)
      return credentials.installationId;
    const key =
      scope.kind === 'repo'
        ? scopeCacheKey(scope)
        : scopeCacheKey({ kind: 'org', org: (scope as { org: string }).org });
    return installations.get(key, async () => {
      const { token } = await appAuth!({ type: 'app' });
      const route =
        scope.kind === 'repo' ? 'GET /repos/{owner}/{repo}/installation' : 'GET /orgs/{org}/installation';
      const response = await octokit.request(route, {
        ...(scope.kind === 'repo'
          ? { owner: scope.owner, repo: scope.repo }
          : { org: (scope as { org: string }).org }),
        headers: { authorization: `bearer ${token}` },
      });
      return (response.data as { id: number }).id;
    });
  }

  /** Headers that authenticate one call for `scope`. */
  async function authHeaders(scope: Scope): Promise<Record<string, string>> {
    if (!appAuth) return {};
    if (scope.kind === 'enterprise') {
      throw new GitHubCallError(
        'refused',
        0,
        'a GitHub App cannot manage enterprise runners; configure a PAT',
      );
    }
    let installationId: number;
    try {
      installationId = await findInstallation(scope);
    } catch (error) {
      const failure = toGitHubCallError(error, now, secondaryBackoff);
      if (failure.failure === 'not-found') {
        throw new GitHubCallError(
          'not-found',
          404,
          `the GitHub App is not installed on ${scopeCacheKey(scope)}`,
        );
      }
      throw failure;
    }
    const { token } = await appAuth({
      type: 'installation',
      installationId,
      permissions: permissionsFor(scope),
      ...(scope.kind === 'repo' ? { repositoryNames: [scope.repo] } : {}),
    });
    return { authorization: `token ${token}` };
  }

  /**
   * Makes one call and checks the answer's shape: a 2xx whose body is not what GitHub documents (an HTML
   * page from a proxy, truncated JSON) is GitHub failing, not something to hand a caller.
   */
  async function call<S extends z.ZodType>(
    scope: Scope,
    route: string,
    schema: S,
    parameters: Record<string, unknown> = {},
    context?: GitHubCallContext,
  ): Promise<z.output<S>> {
    let data: unknown;
    try {
      const headers = await authHeaders(scope);
      const response = await octokit.request(route, {
        ...parameters,
        headers,
        request: { mutation: context },
      });
      data = response.data;
      secondaryBackoff.succeeded(now());
    } catch (error) {
      // The scheduler's own answers (429 queue full, caller gone) are meant for the caller as they are.
      if (error instanceof HttpError) throw error;
      throw toGitHubCallError(error, now, secondaryBackoff);
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) throw new GitHubCallError('unavailable', 200, `unexpected response to ${route}`);
    return parsed.data;
  }

  const base = (scope: Scope) => `${scopePath(scope)}/actions`;
  const labelSchema = z.object({ name: z.string() });
  const runnerSchema = z.object({
    id: z.number(),
    name: z.string(),
    status: z.string(),
    busy: z.boolean(),
    labels: z.array(labelSchema),
  });
  const schemas = {
    token: z.object({ token: z.string().min(1), expires_at: z.string().min(1) }),
    jitConfig: z.object({
      encoded_jit_config: z.string().min(1),
      runner: z.object({ id: z.number(), name: z.string(), labels: z.array(labelSchema) }),
    }),
    runners: z.object({ runners: z.array(runnerSchema) }),
    groups: z.object({
      total_count: z.number(),
      runner_groups: z.array(z.object({ id: z.number(), name: z.string() })),
    }),
    none: z.unknown(),
  };

  return {
    async createToken(scope, kind, context) {
      const suffix = kind === 'registration' ? 'registration-token' : 'remove-token';
      const data = await call(scope, `POST ${base(scope)}/runners/${suffix}`, schemas.token, {}, context);
      return { token: data.token, expiresAt: data.expires_at };
    },

    async generateJitConfig(scope, request, context) {
      const data = await call(
        scope,
        `POST ${base(scope)}/runners/generate-jitconfig`,
        schemas.jitConfig,
        {
          name: request.name,
          runner_group_id: request.runnerGroupId,
          labels: request.labels,
          ...(request.workFolder !== undefined ? { work_folder: request.workFolder } : {}),
        },
        context,
      );
      return {
        encodedJitConfig: data.encoded_jit_config,
        runner: { id: data.runner.id, name: data.runner.name, labels: data.runner.labels.map((l) => l.name) },
      };
    },

    async findRunner(scope, name) {
      const data = await call(scope, `GET ${base(scope)}/runners`, schemas.runners, {
        name,
        per_page: 100,
      });
      const runner = data.runners.find((r) => r.name.toLowerCase() === name.toLowerCase());
      return (
        runner && {
          id: runner.id,
          name: runner.name,
          status: runner.status,
          busy: runner.busy,
          labels: runner.labels.map((l) => l.name),
        }
      );
    },

    async deleteRunner(scope, runnerId, context) {
      await call(scope, `DELETE ${base(scope)}/runners/${runnerId}`, schemas.none, {}, context);
    },

    async listRunnerGroups(scope) {
      if (scope.kind === 'repo') return [{ id: 1, name: DEFAULT_RUNNER_GROUP }];
      const groups: RunnerGroupInfo[] = [];
      for (let page = 1; page <= 20; page += 1) {
        const data = await call(scope, `GET ${base(scope)}/runner-groups`, schemas.groups, {
          per_page: 100,
          page,
        });
        groups.push(...data.runner_groups.map((g) => ({ id: g.id, name: g.name })));
        if (data.runner_groups.length < 100 || groups.length >= data.total_count) break;
      }
      return groups;
    },
  };
}
