import { z } from 'zod';
import { HttpError, withDeadline } from '#shared';
import type { Logger } from '#shared';
import type { FleetState, JobStatus, TrackedJob } from './fleet-state.js';
import { GitHubError } from './github-error.js';
import type { GitHubAppApi } from './github-app-api.js';
import { instanceNameFor } from './instance-name.js';
import { METRIC_LOG_MESSAGES } from './log-messages.js';
import { matchPool } from './match-pool.js';
import type { Pool } from './pool-config.js';
import type { PoolScaler } from './pool-scaler.js';

/** What the autoscaler needs to act on a `workflow_job` delivery. */
export interface WorkflowJobDeps {
  pools: readonly Pool[];
  scalers: ReadonlyMap<string, PoolScaler>;
  github: GitHubAppApi;
  fleet: FleetState;
  /** `GITHUB_INSTALLATION_ID`: deliveries from any other installation are not acted on. */
  installationId?: number;
  logger: Logger;
  now: () => number;
  /** How long a delivery may wait for its VM request to be accepted before it is answered 503. */
  deadlineMs: number;
  /** Why a pool may create no VMs now (a runner version past GitHub's window), or undefined. */
  scaleUpBlockedReason?: (pool: string) => string | undefined;
}

/** How a delivery was handled; the body of its 200. */
export interface WorkflowJobResult {
  outcome: 'created' | 'exists' | 'not-queued' | 'recorded' | 'ignored' | 'blocked';
  jobId: number;
  action: string;
  pool?: string;
  instance?: string;
  mig?: string;
  reason?: string;
}

/** The fields of a `workflow_job` payload the autoscaler reads (https://docs.github.com/webhooks/webhook-events-and-payloads#workflow_job). */
const payloadSchema = z.object({
  action: z.string(),
  workflow_job: z.object({
    id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    labels: z.array(z.string()),
    created_at: z.string().optional(),
    started_at: z.string().nullish(),
    runner_name: z.string().nullish(),
  }),
  repository: z.object({ full_name: z.string().regex(/^[^/\s]+\/[^/\s]+$/) }),
  installation: z.object({ id: z.number().int() }).optional(),
});

/** A job created longer ago than this is checked with the jobs API before it gets a VM. */
export const CHECK_JOBS_OLDER_THAN_MS = 60_000;

const ACTION_STATUS: Readonly<Record<string, JobStatus>> = {
  queued: 'queued',
  waiting: 'waiting',
  in_progress: 'in_progress',
  completed: 'completed',
};

/** Reads a verified delivery's payload; a payload without the fields GitHub documents is a 400. */
export function parseWorkflowJob(payload: unknown): z.output<typeof payloadSchema> {
  const parsed = payloadSchema.safeParse(payload);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.join('.') ?? '';
    throw new HttpError(400, `not a workflow_job payload: ${where || 'fields'} missing or malformed`);
  }
  return parsed.data;
}

/**
 * Acts on one `workflow_job` delivery. A `queued` job of a pool's labels and scopes gets one VM,
 * `<prefix>-<job id>`, requested from the pool's scaler (batched, capped, deduplicated); the delivery is
 * answered 200 only once Compute accepted it or the VM exists. Other actions only update what the service
 * remembers. A job older than a minute is first checked to be still queued (a redelivery may come late).
 * Throws an {@link HttpError} 503 when the VM could not be requested: GitHub records the delivery as
 * failed, and the reconciler delivers it again.
 */
export async function handleWorkflowJob(deps: WorkflowJobDeps, payload: unknown): Promise<WorkflowJobResult> {
  const { fleet, logger } = deps;
  const data = parseWorkflowJob(payload);
  const { action } = data;
  const job = data.workflow_job;
  const repository = data.repository.full_name;
  const installationId = data.installation?.id;
  const base = { jobId: job.id, action };

  if (deps.installationId !== undefined && installationId !== deps.installationId) {
    logger.warn({ ...base, repository, installationId }, 'delivery from another installation: not acted on');
    return { ...base, outcome: 'ignored', reason: 'another installation of the App' };
  }

  const match = matchPool(deps.pools, { labels: job.labels, repository });
  if (match.kind !== 'matched') {
    const reason =
      match.kind === 'no-labels'
        ? 'the job has no labels'
        : match.kind === 'no-pool'
          ? 'no pool has all of its labels'
          : `the repository is outside the scopes of ${match.pools.join(', ')}`;
    if (action === 'queued') {
      const log = match.kind === 'out-of-scope' ? logger.warn.bind(logger) : logger.info.bind(logger);
      log({ ...base, repository, labels: job.labels, reason }, 'queued job gets no VM');
    }
    return { ...base, outcome: 'ignored', reason };
  }
  const { pool } = match;
  const createdAt = Date.parse(job.created_at ?? '') || deps.now();
  let tracked = fleet.jobs.get(job.id);
  /** True for the first `in_progress` of a job (a redelivery or a late duplicate logs nothing). */
  let started = false;
  if (!tracked) {
    started = action === 'in_progress';
    tracked = {
      id: job.id,
      pool: pool.name,
      repository,
      installationId,
      labels: job.labels,
      createdAt,
      status: ACTION_STATUS[action] ?? 'queued',
      attempt: 1,
      outcome: undefined,
      checkedAt: undefined,
    };
    fleet.jobs.set(job.id, tracked);
  } else if (action !== 'queued' || (tracked.status !== 'in_progress' && tracked.status !== 'completed')) {
    // Deliveries can arrive out of order: a late `queued` does not undo `in_progress`.
    started = action === 'in_progress' && tracked.status !== 'in_progress' && tracked.status !== 'completed';
    tracked.status = ACTION_STATUS[action] ?? tracked.status;
  }
  if (started) {
    // The job-wait metric reads waitSeconds (deploy/monitoring/metrics/gh-autoscaler-job-wait.json).
    const startedAt = Date.parse(job.started_at ?? '');
    logger.info(
      {
        jobId: job.id,
        pool: pool.name,
        repository,
        runnerName: job.runner_name ?? null,
        ...(Number.isFinite(startedAt) && { waitSeconds: Math.max(0, (startedAt - createdAt) / 1000) }),
      },
      METRIC_LOG_MESSAGES.jobStarted,
    );
  }
  if (action !== 'queued') return { ...base, outcome: 'recorded', pool: pool.name };
  if (tracked.status === 'in_progress' || tracked.status === 'completed') {
    // A `queued` that arrives after the job started: a runner took it, perhaps the VM requested for
    // another job. That job's need is counted by the reconciler (queued jobs against idle VMs), once.
    const reason = `the job is already ${tracked.status === 'completed' ? 'completed' : 'in progress'}`;
    decide(deps, tracked, pool, 'not-queued', { reason });
    return { ...base, outcome: 'not-queued', pool: pool.name, reason };
  }

  if (
    deps.now() - createdAt > CHECK_JOBS_OLDER_THAN_MS &&
    (installationId ?? deps.installationId) !== undefined
  ) {
    const status = await currentStatus(deps, tracked, installationId ?? deps.installationId!);
    // Only a job a runner took, that ended, or that GitHub no longer knows needs no VM; `waiting`,
    // `pending` and the like still will.
    if (status === 'in_progress' || status === 'completed' || status === 'not found') {
      decide(deps, tracked, pool, 'not-queued', { reason: `the job is ${status}` });
      return { ...base, outcome: 'not-queued', pool: pool.name, reason: `the job is ${status}` };
    }
  }

  // A pool whose runners GitHub sends no jobs creates none: answered 2xx, so GitHub records no failure and the
  // reconciler does not redeliver it; the job stays queued here and gets a VM once the pool may grow again.
  const blocked = deps.scaleUpBlockedReason?.(pool.name);
  if (blocked !== undefined) {
    const reason = `scale-up stopped: ${blocked}`;
    tracked.outcome = 'blocked';
    decide(deps, tracked, pool, 'blocked', { reason });
    return { ...base, outcome: 'blocked', pool: pool.name, reason };
  }

  const instance = instanceNameFor(pool.instanceNamePrefix, job.id, tracked.attempt);
  const scaler = deps.scalers.get(pool.name)!;
  // Past the deadline the request carries on: a VM Compute accepts late is found by the job's redelivery.
  const outcome = await withDeadline(
    deps.deadlineMs,
    () =>
      new HttpError(
        503,
        `Compute Engine did not accept VM ${instance} in time; GitHub will be asked to deliver job ${job.id} again`,
        { 'Retry-After': '60' },
      ),
    () => scaler.request(instance),
  );
  tracked.outcome = outcome.result;
  switch (outcome.result) {
    case 'created':
    case 'exists':
      decide(deps, tracked, pool, outcome.result, { instance, ...(outcome.mig && { mig: outcome.mig }) });
      return {
        ...base,
        outcome: outcome.result,
        pool: pool.name,
        instance,
        ...(outcome.mig && { mig: outcome.mig }),
      };
    case 'at-capacity': {
      const reason = `pool ${pool.name} is at maxRunners (${pool.maxRunners})`;
      decide(deps, tracked, pool, outcome.result, { instance, reason });
      throw new HttpError(503, `${reason}; job ${job.id} will be delivered again`, { 'Retry-After': '60' });
    }
    case 'failed':
      decide(deps, tracked, pool, outcome.result, { instance, reason: outcome.reason });
      throw new HttpError(503, `could not request VM ${instance}: ${outcome.reason}`, {
        'Retry-After': '60',
      });
  }
}

function decide(
  deps: WorkflowJobDeps,
  job: TrackedJob,
  pool: Pool,
  outcome: string,
  fields: { instance?: string; mig?: string; reason?: string },
): void {
  deps.fleet.recordDecision({
    at: new Date(deps.now()).toISOString(),
    pool: pool.name,
    jobId: job.id,
    instance: fields.instance ?? '',
    outcome,
    source: 'webhook',
    ...(fields.mig !== undefined && { mig: fields.mig }),
    ...(fields.reason !== undefined && { reason: fields.reason }),
  });
  const line = {
    jobId: job.id,
    repository: job.repository,
    labels: job.labels,
    pool: pool.name,
    outcome,
    ...fields,
  };
  if (outcome === 'at-capacity' || outcome === 'failed' || outcome === 'blocked')
    deps.logger.warn(line, METRIC_LOG_MESSAGES.noVmForQueuedJob);
  else
    deps.logger.info(
      line,
      outcome === 'not-queued' ? 'job no longer queued: no VM' : 'VM requested for queued job',
    );
}

/** The job's status from the jobs API; a 503 when GitHub cannot say. */
async function currentStatus(
  deps: WorkflowJobDeps,
  job: TrackedJob,
  installationId: number,
): Promise<string> {
  try {
    const status = await withDeadline(
      Math.min(deps.deadlineMs, 5000),
      () =>
        new HttpError(503, `GitHub did not say in time whether job ${job.id} is still queued`, {
          'Retry-After': '60',
        }),
      () => deps.github.getJobStatus(installationId, job.repository, job.id),
    );
    job.checkedAt = deps.now();
    if (status in ACTION_STATUS) job.status = ACTION_STATUS[status]!;
    return status;
  } catch (error) {
    if (!(error instanceof GitHubError)) throw error;
    // The run was deleted, or the App lost access to the repository: nothing will run the job.
    if (error.failure === 'not-found') return 'not found';
    throw new HttpError(
      503,
      `GitHub could not say whether job ${job.id} is still queued: ${error.githubMessage}`,
      {
        'Retry-After': '60',
      },
    );
  }
}
