import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck';
import { z } from 'zod';
import { createDeadlineFetch } from '#shared';
import type { Logger } from '#shared';
import type { GitHubAppCredentials } from './config.js';
import { GitHubError, toGitHubError } from './github-error.js';
import { formatRunnerScope } from './pool-config.js';
import type { RunnerScope } from './pool-config.js';

/** One attempt to deliver a webhook, as `GET /app/hook/deliveries` lists it. */
export interface HookDelivery {
  id: number;
  /** Shared by every attempt of one event. */
  guid: string;
  deliveredAt: string;
  redelivery: boolean;
  /** GitHub's summary: `OK`, `Invalid HTTP Response: 503`, `timed out`, … */
  status: string;
  /** Our answer's status, 0 when there was none. */
  statusCode: number;
  event: string;
  action: string | null;
  installationId: number | null;
  repositoryId: number | null;
}

/** A runner as the runner list (or `GET …/runners/{id}`) reports it. */
export interface RunnerInfo {
  id: number;
  name: string;
  /** `online` or `offline`. */
  status: string;
  busy: boolean;
  /** Label names. */
  labels: string[];
  /**
   * The actions/runner version it connected with (`2.323.0`); null until it has connected once, or when GitHub
   * (an older GHES) does not say. https://docs.github.com/rest/actions/self-hosted-runners#get-a-self-hosted-runner-for-an-organization
   */
  version: string | null;
}

/** What the autoscaler asks GitHub, as the App (deliveries) or as one of its installations (jobs, runners). */
export interface GitHubAppApi {
  /** One page (100) of the App's webhook deliveries, newest first, and the cursor of the next page. */
  listDeliveries(cursor?: string): Promise<{ deliveries: HookDelivery[]; nextCursor: string | undefined }>;
  /** Asks GitHub to deliver a delivery again (it answers 202 and delivers shortly after). */
  redeliver(deliveryId: number): Promise<void>;
  /** The payload GitHub sent in a delivery. */
  getDeliveryPayload(deliveryId: number): Promise<unknown>;
  /** The job's status now (`queued`, `in_progress`, `completed`, …). */
  getJobStatus(installationId: number, repository: string, jobId: number): Promise<string>;
  /** The runners registered in an org or repository. */
  listRunners(scope: RunnerScope): Promise<RunnerInfo[]>;
  /** One runner, read again; a {@link GitHubError} `not-found` when it is gone. */
  getRunner(scope: RunnerScope, runnerId: number): Promise<RunnerInfo>;
  /**
   * The runners of `scope` named `name` (GitHub's `name` filter of the runner list, one page: names are
   * unique within a scope); what the reaper reads again before deleting a VM that had no runner in its list.
   */
  findRunnersNamed(scope: RunnerScope, name: string): Promise<RunnerInfo[]>;
  /**
   * Removes a runner. GitHub refuses (422, a `refused` {@link GitHubError}) while the runner runs a job, so
   * a runner deleted here will never start one. https://docs.github.com/rest/actions/self-hosted-runners
   */
  deleteRunner(scope: RunnerScope, runnerId: number): Promise<void>;
}

export interface GitHubAppApiOptions {
  app: GitHubAppCredentials;
  baseUrl: string;
  logger: Logger;
  /**
   * Cuts off each attempt of a GitHub request this long after it is sent; default 5 s. A write's wait for
   * its turn in the write queue (`writeIntervalMs`) does not count.
   */
  requestTimeoutMs?: number;
  /** Retries of a 5xx or network error (plugin-retry); default 1. */
  retries?: number;
  retryBaseMs?: number;
  /**
   * Minimum spacing of POST requests (redeliveries), to stay under GitHub's secondary rate limits (900
   * points a minute, 5 per POST); default 350 ms.
   */
  writeIntervalMs?: number;
  now?: () => number;
}

const AppOctokit = Octokit.plugin(retry, throttling);

const runnerSchema = z.object({
  id: z.number(),
  name: z.string(),
  status: z.string(),
  busy: z.boolean(),
  labels: z.array(z.object({ name: z.string() })),
  // Nullable in GitHub's OpenAPI description; a value that is not a string is taken as not reported.
  version: z.string().max(64).nullable().optional().catch(null),
});
const toRunnerInfo = (runner: z.output<typeof runnerSchema>): RunnerInfo => ({
  ...runner,
  labels: runner.labels.map((label) => label.name),
  version: runner.version || null,
});

const deliverySchema = z.object({
  id: z.number(),
  guid: z.string(),
  delivered_at: z.string(),
  redelivery: z.boolean(),
  status: z.string(),
  status_code: z.number(),
  event: z.string(),
  action: z.string().nullable().optional(),
  installation_id: z.number().nullable().optional(),
  repository_id: z.number().nullable().optional(),
});

/** The `cursor` of the `rel="next"` link, if there is one. */
function nextCursor(link: string | undefined): string | undefined {
  const next = link?.split(',').find((part) => /rel="next"/.test(part));
  const url = next && /<([^>]+)>/.exec(next)?.[1];
  return url ? (new URL(url).searchParams.get('cursor') ?? undefined) : undefined;
}

/**
 * The {@link GitHubAppApi} on Octokit: App JWT for `/app/hook/…`, installation tokens down-scoped to one
 * permission for jobs (`actions: read`) and runners (`organization_self_hosted_runners` or
 * `administration`: read to list and read, write to delete). @octokit/auth-app caches those tokens and shares concurrent requests for one. Every
 * request has a deadline; a rate limit is not waited out but reported (the reconciler tries next minute).
 */
export function createGitHubAppApi(options: GitHubAppApiOptions): GitHubAppApi {
  const { app, logger } = options;
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const octokit = new AppOctokit({
    baseUrl: options.baseUrl,
    userAgent: 'gce-github-runners-autoscaler',
    // The deadline starts when an attempt is sent, not when it joins plugin-throttling's write queue:
    // writes queued behind others would otherwise time out unsent.
    request: { fetch: createDeadlineFetch(timeoutMs, 'GitHub') },
    retry: { retries: options.retries ?? 1, retryAfterBaseValue: options.retryBaseMs ?? 500 },
    throttle: {
      id: `autoscaler-${options.baseUrl}`,
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: options.writeIntervalMs ?? 350 }),
      fallbackSecondaryRateRetryAfter: 60,
      onRateLimit: (retryAfter: number, request: { method: string; url: string }) => {
        logger.warn({ retryAfter, method: request.method, url: request.url }, 'GitHub primary rate limit');
        return false;
      },
      onSecondaryRateLimit: (retryAfter: number, request: { method: string; url: string }) => {
        logger.warn({ retryAfter, method: request.method, url: request.url }, 'GitHub secondary rate limit');
        return false;
      },
    },
    // Octokit would log failures with their text; this service logs its own classified lines instead.
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  const appAuth = createAppAuth({ appId: app.appId, privateKey: app.privateKey, request: octokit.request });

  const installations = new Map<string, { id: Promise<number>; expires: number }>();
  const now = options.now ?? Date.now;

  async function request(route: string, parameters: Record<string, unknown>, authorization: string) {
    try {
      return await octokit.request(route, {
        ...parameters,
        headers: { authorization },
      });
    } catch (error) {
      throw toGitHubError(error);
    }
  }

  async function asApp(route: string, parameters: Record<string, unknown> = {}) {
    let token: string;
    try {
      ({ token } = await appAuth({ type: 'app' }));
    } catch (error) {
      throw toGitHubError(error);
    }
    return request(route, parameters, `bearer ${token}`);
  }

  async function asInstallation(
    installationId: number,
    permissions: Record<string, 'read' | 'write'>,
    route: string,
    parameters: Record<string, unknown>,
  ) {
    let token: string;
    try {
      ({ token } = await appAuth({ type: 'installation', installationId, permissions }));
    } catch (error) {
      throw toGitHubError(error);
    }
    return request(route, parameters, `token ${token}`);
  }

  /** The installation on a runner scope: pinned, or looked up and kept for 10 minutes. */
  function installationOf(scope: RunnerScope): Promise<number> {
    if (app.installationId !== undefined) return Promise.resolve(app.installationId);
    const key = formatRunnerScope(scope).toLowerCase();
    const cached = installations.get(key);
    if (cached && cached.expires > now()) return cached.id;
    const id = (async () => {
      const response =
        scope.kind === 'org'
          ? await asApp('GET /orgs/{org}/installation', { org: scope.org })
          : await asApp('GET /repos/{owner}/{repo}/installation', { owner: scope.owner, repo: scope.repo });
      const parsed = z.object({ id: z.number() }).safeParse(response.data);
      if (!parsed.success)
        throw new GitHubError('unavailable', 200, 'unexpected answer to the installation lookup');
      return parsed.data.id;
    })();
    installations.set(key, { id, expires: now() + 10 * 60_000 });
    id.catch(() => installations.delete(key));
    return id;
  }

  /**
   * The installation, the one permission (read or write) and the route of a scope's runners: org runners
   * need `organization_self_hosted_runners`, repository runners `administration`.
   */
  async function runnerRoute(scope: RunnerScope, level: 'read' | 'write') {
    const installationId = await installationOf(scope);
    return scope.kind === 'org'
      ? {
          installationId,
          permissions: { organization_self_hosted_runners: level },
          route: 'GET /orgs/{org}/actions/runners',
          where: { org: scope.org },
        }
      : {
          installationId,
          permissions: { administration: level },
          route: 'GET /repos/{owner}/{repo}/actions/runners',
          where: { owner: scope.owner, repo: scope.repo },
        };
  }

  return {
    async listDeliveries(cursor) {
      const response = await asApp('GET /app/hook/deliveries', {
        per_page: 100,
        ...(cursor === undefined ? {} : { cursor }),
      });
      const parsed = z.array(deliverySchema).safeParse(response.data);
      if (!parsed.success)
        throw new GitHubError('unavailable', 200, 'unexpected answer listing webhook deliveries');
      return {
        deliveries: parsed.data.map((d) => ({
          id: d.id,
          guid: d.guid,
          deliveredAt: d.delivered_at,
          redelivery: d.redelivery,
          status: d.status,
          statusCode: d.status_code,
          event: d.event,
          action: d.action ?? null,
          installationId: d.installation_id ?? null,
          repositoryId: d.repository_id ?? null,
        })),
        nextCursor: nextCursor(response.headers.link),
      };
    },

    async redeliver(deliveryId) {
      await asApp('POST /app/hook/deliveries/{delivery_id}/attempts', { delivery_id: deliveryId });
    },

    async getDeliveryPayload(deliveryId) {
      const response = await asApp('GET /app/hook/deliveries/{delivery_id}', { delivery_id: deliveryId });
      return (response.data as { request?: { payload?: unknown } }).request?.payload;
    },

    async getJobStatus(installationId, repository, jobId) {
      const [owner = '', repo = ''] = repository.split('/');
      const response = await asInstallation(
        installationId,
        { actions: 'read' },
        'GET /repos/{owner}/{repo}/actions/jobs/{job_id}',
        { owner, repo, job_id: jobId },
      );
      const parsed = z.object({ status: z.string() }).safeParse(response.data);
      if (!parsed.success) throw new GitHubError('unavailable', 200, 'unexpected answer reading a job');
      return parsed.data.status;
    },

    async listRunners(scope) {
      const { installationId, permissions, route, where } = await runnerRoute(scope, 'read');
      const schema = z.object({ total_count: z.number(), runners: z.array(runnerSchema) });
      const runners: RunnerInfo[] = [];
      for (let page = 1; page <= 50; page += 1) {
        const response = await asInstallation(installationId, permissions, route, {
          ...where,
          per_page: 100,
          page,
        });
        const parsed = schema.safeParse(response.data);
        if (!parsed.success) throw new GitHubError('unavailable', 200, 'unexpected answer listing runners');
        runners.push(...parsed.data.runners.map(toRunnerInfo));
        if (parsed.data.runners.length < 100 || runners.length >= parsed.data.total_count) break;
      }
      return runners;
    },

    async findRunnersNamed(scope, name) {
      const { installationId, permissions, route, where } = await runnerRoute(scope, 'read');
      const response = await asInstallation(installationId, permissions, route, {
        ...where,
        name,
        per_page: 100,
      });
      const parsed = z.object({ runners: z.array(runnerSchema) }).safeParse(response.data);
      if (!parsed.success) throw new GitHubError('unavailable', 200, 'unexpected answer listing runners');
      return parsed.data.runners.map(toRunnerInfo);
    },

    async getRunner(scope, runnerId) {
      const { installationId, permissions, route, where } = await runnerRoute(scope, 'read');
      const response = await asInstallation(installationId, permissions, `${route}/{runner_id}`, {
        ...where,
        runner_id: runnerId,
      });
      const parsed = runnerSchema.safeParse(response.data);
      if (!parsed.success) throw new GitHubError('unavailable', 200, 'unexpected answer reading a runner');
      return toRunnerInfo(parsed.data);
    },

    async deleteRunner(scope, runnerId) {
      const { installationId, permissions, route, where } = await runnerRoute(scope, 'write');
      await asInstallation(installationId, permissions, `DELETE ${route.slice('GET '.length)}/{runner_id}`, {
        ...where,
        runner_id: runnerId,
      });
    },
  };
}
