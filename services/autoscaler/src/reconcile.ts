import type { RequestHandler } from 'express';
import type { Logger } from '#shared';
import { ComputeError } from './compute-error.js';
import type { ComputeMigApi, MigMember } from './compute-mig-api.js';
import type { ReaperSettings } from './config.js';
import type { FleetState, TrackedJob } from './fleet-state.js';
import { JOB_MEMORY_MS } from './fleet-state.js';
import { GitHubError } from './github-error.js';
import type { GitHubAppApi, HookDelivery, RunnerInfo } from './github-app-api.js';
import { CHECK_JOBS_OLDER_THAN_MS, parseWorkflowJob } from './handle-workflow-job.js';
import { instanceNameFor, isWarmInstanceName, parseInstanceName, warmInstanceName } from './instance-name.js';
import { createFleetMemory, joinFleet } from './join-fleet.js';
import type { FleetMemory, FleetRow, RowState } from './join-fleet.js';
import { matchPool } from './match-pool.js';
import { METRIC_LOG_MESSAGES } from './log-messages.js';
import { formatMigRef } from './mig-ref.js';
import { planReaping } from './plan-reaping.js';
import { formatRunnerScope } from './pool-config.js';
import type { Pool } from './pool-config.js';
import type { CreateOutcome, PoolScaler } from './pool-scaler.js';
import { reapPool } from './reap-pool.js';
import type { ReaperDecision } from './reap-pool.js';
import type { InstanceIdOfLabels } from './runner-instance-id.js';
import type { RunnerVersionCheck } from './runner-version-check.js';
import { minIdleAt } from './warm-pool.js';

export interface ReconcileDeps {
  pools: readonly Pool[];
  scalers: ReadonlyMap<string, PoolScaler>;
  compute: ComputeMigApi;
  github: GitHubAppApi;
  fleet: FleetState;
  logger: Logger;
  now: () => number;
  /** `GITHUB_INSTALLATION_ID`, for jobs whose delivery named none. */
  installationId?: number;
  stuckCreatingMs: number;
  maxRedeliveriesPerRun: number;
  /** Pages of 100 deliveries read per run; default 10. */
  maxDeliveryPages?: number;
  /** Jobs checked with the jobs API per run; default 100. */
  maxJobChecks?: number;
  /** Delivery payloads fetched to rebuild the queued jobs after a start; default 100. */
  maxRebuildFetches?: number;
  /** What the reaper may do; default: enforce, 25 % of a pool per run. */
  reaper?: Pick<ReaperSettings, 'mode' | 'maxDeletePercent'>;
  /** How runners name their VM (the token proxy's instance-id label); default `instanceIdOfLabels`. */
  instanceIdOf?: InstanceIdOfLabels;
  /** Judges each pool's reported runner versions and stops the scale-up of a pool past GitHub's window. */
  versions?: RunnerVersionCheck;
}

/** What one pool's reconciliation did. */
export interface PoolReconciliation {
  /** Jobs still queued that the pool serves. */
  queued: number;
  /** Its VMs that are booting or idle (not running a job, not being deleted); null when not counted. */
  available: number | null;
  /** VMs requested for the shortfall of queued jobs over available VMs. */
  requested: Array<{ jobId: number; instance: string; outcome: string }>;
  /** Members stuck in creation, deleted and requested again in the pool's next MIG. */
  moved: Array<{ instance: string; from: string; replacement: string; outcome: string }>;
  /** Idle runners the pool keeps now (its `minIdle`, or a schedule's). */
  minIdle: number;
  /** VMs requested for the warm pool, bound to no job. */
  warmRequested: Array<{ instance: string; outcome: string }>;
  /** The join's rows by state; null when the pool could not be joined this run. */
  rows: Partial<Record<RowState, number>> | null;
  /** What the reaper decided, one entry per row it looked at (kept VMs left out). */
  reaped: ReaperDecision[];
  /** Why no VM was requested for the shortfall or the warm pool (a runner version past GitHub's window). */
  scaleUpBlockedReason?: string;
}

/** The answer of `POST /reconcile`. */
export interface ReconcileSummary {
  startedAt: string;
  durationMs: number;
  deliveries: {
    /** Delivery attempts read from the App's delivery log. */
    listed: number;
    /** `workflow_job` events whose every attempt failed. */
    failed: number;
    redelivered: Array<{ id: number; guid: string; action: string | null }>;
  };
  /** After a start: queued jobs recovered from the delivery log. */
  rebuilt?: { payloadsRead: number; jobs: number };
  /** Outside calls the reaper's join made: runner lists (pages) and keep-label lists (one per project). */
  joinCalls: { runnerLists: number; keepLists: number };
  jobsChecked: number;
  pools: Record<string, PoolReconciliation>;
  /** Steps that failed; the rest of the run went on. */
  problems: string[];
}

export interface Reconciler {
  /** Runs a reconciliation; a call while one runs gets that run's summary. */
  run(): Promise<ReconcileSummary>;
}

/** GitHub fails a job that waited this long; older deliveries are not worth redelivering. */
const LOOKBACK_MS = JOB_MEMORY_MS;
const MAX_ATTEMPT = 999;

const describe = (error: unknown): string =>
  error instanceof GitHubError
    ? `GitHub: ${error.githubMessage || error.failure}`
    : error instanceof ComputeError
      ? `Compute Engine: ${error.computeMessage || error.failure}`
      : 'internal error';

/**
 * The reconciler behind `POST /reconcile` (Cloud Scheduler, every minute). Each run:
 *
 * 1. reads the App's webhook delivery log (newest first, up to 24 hours back) and redelivers every
 *    `workflow_job` event whose attempts all failed, newest first, at most `maxRedeliveriesPerRun`: GitHub
 *    does not redeliver failed deliveries by itself
 *    (https://docs.github.com/webhooks/using-webhooks/handling-failed-webhook-deliveries);
 * 2. after a start, reads the payloads of recent queued deliveries to learn the jobs that may still wait;
 * 3. lists every MIG of every pool: a member the MIG has failed to create (`lastAttempt.errors`) for
 *    `stuckCreatingMs` is deleted and requested again, with the next attempt suffix, in the pool's next MIG;
 * 4. joins each pool's members with its runners ({@link joinFleet}, on the instance-id label) and reaps
 *    what should not be there ({@link planReaping}, {@link reapPool}): VMs whose runner never came
 *    online, idle runners past their timeout beyond the warm pool, VMs that died mid-job, runners left by
 *    vanished VMs;
 * 5. checks jobs older than a minute with the jobs API, and for each pool requests VMs for the jobs still
 *    queued, plus its warm pool's `minIdle`, beyond its VMs that are booting or idle (a VM is not bound to
 *    its job: another job may have taken it), within `maxRunners`.
 */
export function createReconciler(deps: ReconcileDeps): Reconciler {
  const { fleet, logger } = deps;
  /** When each member was first seen CREATING, per MIG; pruned to the latest listing. */
  const creatingSince = new Map<string, Map<string, number>>();
  const memories = new Map<string, FleetMemory>(deps.pools.map((pool) => [pool.name, createFleetMemory()]));
  /** When each pool was last joined, for the idle VM time between two joins. */
  const joinedAt = new Map<string, number>();
  const reaper = deps.reaper ?? { mode: 'enforce', maxDeletePercent: 25 };
  let rebuilt = false;
  let running: Promise<ReconcileSummary> | undefined;

  async function readDeliveries(summary: ReconcileSummary): Promise<HookDelivery[]> {
    const cutoff = deps.now() - LOOKBACK_MS;
    const all: HookDelivery[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < (deps.maxDeliveryPages ?? 10); page += 1) {
      const { deliveries, nextCursor } = await deps.github.listDeliveries(cursor);
      all.push(...deliveries);
      const oldest = deliveries.at(-1);
      if (!nextCursor || !oldest || Date.parse(oldest.deliveredAt) < cutoff) break;
      cursor = nextCursor;
    }
    summary.deliveries.listed = all.length;
    return all.filter((d) => Date.parse(d.deliveredAt) >= cutoff);
  }

  /** Attempts grouped by event (guid), newest attempt first; whether any attempt was answered 2xx. */
  function byEvent(
    deliveries: HookDelivery[],
  ): Array<{ latest: HookDelivery; ok: HookDelivery | undefined }> {
    const events = new Map<string, { latest: HookDelivery; ok: HookDelivery | undefined }>();
    for (const d of deliveries) {
      const ok = d.statusCode >= 200 && d.statusCode < 300;
      const event = events.get(d.guid);
      if (!event) events.set(d.guid, { latest: d, ok: ok ? d : undefined });
      else {
        if (Date.parse(d.deliveredAt) > Date.parse(event.latest.deliveredAt)) event.latest = d;
        if (ok) event.ok ??= d;
      }
    }
    return [...events.values()].sort(
      (a, b) => Date.parse(b.latest.deliveredAt) - Date.parse(a.latest.deliveredAt),
    );
  }

  async function redeliver(events: ReturnType<typeof byEvent>, summary: ReconcileSummary): Promise<void> {
    const failed = events.filter((e) => !e.ok && e.latest.event === 'workflow_job');
    summary.deliveries.failed = failed.length;
    for (const { latest } of failed.slice(0, deps.maxRedeliveriesPerRun)) {
      try {
        await deps.github.redeliver(latest.id);
      } catch (error) {
        summary.problems.push(`redelivering delivery ${latest.id}: ${describe(error)}`);
        logger.warn(
          { deliveryId: latest.id, guid: latest.guid, action: latest.action, reason: describe(error) },
          METRIC_LOG_MESSAGES.redeliveryFailed,
        );
        if (error instanceof GitHubError && error.failure === 'rate-limited') return;
        continue;
      }
      summary.deliveries.redelivered.push({ id: latest.id, guid: latest.guid, action: latest.action });
      fleet.recordRedelivery({
        at: new Date(deps.now()).toISOString(),
        guid: latest.guid,
        deliveryId: latest.id,
      });
    }
  }

  /** After a start: the queued jobs of deliveries that succeeded before it (their payloads, newest first). */
  async function rebuild(events: ReturnType<typeof byEvent>, summary: ReconcileSummary): Promise<void> {
    const queued = events.filter(
      (e) => e.ok && e.latest.event === 'workflow_job' && e.latest.action === 'queued',
    );
    let payloadsRead = 0;
    let jobs = 0;
    for (const { ok } of queued.slice(0, deps.maxRebuildFetches ?? 100)) {
      let data;
      try {
        data = parseWorkflowJob(await deps.github.getDeliveryPayload(ok!.id));
      } catch (error) {
        if (error instanceof GitHubError) {
          summary.problems.push(`rebuilding from delivery ${ok!.id}: ${describe(error)}`);
          return; // try again next run
        }
        continue; // a payload without the documented fields
      }
      payloadsRead += 1;
      const match = matchPool(deps.pools, {
        labels: data.workflow_job.labels,
        repository: data.repository.full_name,
      });
      if (match.kind !== 'matched' || fleet.jobs.has(data.workflow_job.id)) continue;
      fleet.jobs.set(data.workflow_job.id, {
        id: data.workflow_job.id,
        pool: match.pool.name,
        repository: data.repository.full_name,
        installationId: data.installation?.id,
        labels: data.workflow_job.labels,
        createdAt: Date.parse(data.workflow_job.created_at ?? '') || Date.parse(ok!.deliveredAt),
        status: 'queued',
        attempt: 1,
        outcome: undefined,
        checkedAt: undefined,
      });
      jobs += 1;
    }
    summary.rebuilt = { payloadsRead, jobs };
    rebuilt = true;
  }

  /** Confirms with the jobs API that jobs older than a minute are still queued (bounded per run). */
  async function checkJobs(summary: ReconcileSummary): Promise<void> {
    const now = deps.now();
    const due = deps.pools
      .flatMap((pool) => fleet.queuedJobs(pool.name))
      .filter((job) => now - job.createdAt > CHECK_JOBS_OLDER_THAN_MS)
      .filter((job) => job.checkedAt === undefined || now - job.checkedAt > CHECK_JOBS_OLDER_THAN_MS)
      .sort((a, b) => (a.checkedAt ?? 0) - (b.checkedAt ?? 0))
      .slice(0, deps.maxJobChecks ?? 100);
    for (const job of due) {
      const installationId = job.installationId ?? deps.installationId;
      if (installationId === undefined) continue;
      try {
        const status = await deps.github.getJobStatus(installationId, job.repository, job.id);
        job.checkedAt = deps.now();
        summary.jobsChecked += 1;
        if (status === 'in_progress' || status === 'completed') job.status = status;
      } catch (error) {
        if (error instanceof GitHubError && error.failure === 'not-found') {
          job.status = 'completed'; // the run was deleted, or the App lost access: nothing will run it
          continue;
        }
        summary.problems.push(`checking job ${job.id}: ${describe(error)}`);
        if (error instanceof GitHubError && error.failure === 'rate-limited') return;
      }
    }
  }

  function record(
    pool: Pool,
    job: TrackedJob | undefined,
    jobId: number | null,
    instance: string,
    outcome: CreateOutcome,
    reason?: string,
  ): void {
    if (job) job.outcome = outcome.result;
    fleet.recordDecision({
      at: new Date(deps.now()).toISOString(),
      pool: pool.name,
      jobId,
      instance,
      outcome: outcome.result,
      source: 'reconcile',
      ...('mig' in outcome && outcome.mig !== undefined && { mig: outcome.mig }),
      ...(reason !== undefined && { reason }),
      ...(outcome.result === 'failed' && { reason: outcome.reason }),
      ...(outcome.result === 'at-capacity' && { reason: `pool at maxRunners (${pool.maxRunners})` }),
    });
  }

  /** Deletes members stuck in creation and requests each again, next attempt, in the pool's next MIG. */
  async function moveStuck(
    pool: Pool,
    scaler: PoolScaler,
    lists: MigMember[][],
    result: PoolReconciliation,
    summary: ReconcileSummary,
  ) {
    const now = deps.now();
    for (const [index, members] of lists.entries()) {
      const key = formatMigRef(pool.migs[index]!);
      const seen = creatingSince.get(key) ?? new Map<string, number>();
      const next = new Map<string, number>();
      for (const m of members) if (m.currentAction === 'CREATING') next.set(m.name, seen.get(m.name) ?? now);
      creatingSince.set(key, next);
      const failing = members.filter((m) => m.currentAction === 'CREATING' && m.lastAttemptErrors.length > 0);
      scaler.setShortage(index, failing[0]?.lastAttemptErrors[0]?.code || undefined);
      if (failing.length > 0) {
        // Logged for pools of one MIG too, where nothing moves: the stock-out alert counts this line.
        const oldest = Math.min(...failing.map((m) => next.get(m.name) ?? now));
        logger.warn(
          {
            pool: pool.name,
            mig: key,
            failing: failing.length,
            errors: [...new Set(failing.flatMap((m) => m.lastAttemptErrors.map((e) => e.code)))],
            oldestSeconds: Math.round((now - oldest) / 1000),
          },
          METRIC_LOG_MESSAGES.migMembersFailing,
        );
      }
      if (pool.migs.length < 2) continue; // nowhere to move them: the MIG keeps trying
      const stuck = failing
        .filter((m) => now - (next.get(m.name) ?? now) >= deps.stuckCreatingMs)
        .flatMap((m): Array<{ member: MigMember; jobId: number | null; attempt: number }> => {
          const parsed = parseInstanceName(pool.instanceNamePrefix, m.name);
          if (parsed && parsed.attempt < MAX_ATTEMPT) return [{ member: m, ...parsed }];
          // A warm VM is bound to no job: its replacement is another warm VM.
          return isWarmInstanceName(pool.instanceNamePrefix, m.name)
            ? [{ member: m, jobId: null, attempt: 0 }]
            : [];
        });
      if (stuck.length === 0) continue;
      try {
        await scaler.deleteMembers(
          index,
          stuck.map(({ member }) => member),
        );
      } catch (error) {
        summary.problems.push(`deleting stuck VMs from ${key}: ${describe(error)}`);
        continue;
      }
      await Promise.all(
        stuck.map(async ({ member, jobId, attempt }) => {
          next.delete(member.name);
          const replacement =
            jobId === null
              ? warmInstanceName(pool.instanceNamePrefix)
              : instanceNameFor(pool.instanceNamePrefix, jobId, attempt + 1);
          const job = jobId === null ? undefined : fleet.jobs.get(jobId);
          if (job && job.attempt <= attempt) job.attempt = attempt + 1;
          const outcome = await scaler.request(replacement, index + 1);
          record(pool, job, jobId, replacement, outcome);
          result.moved.push({ instance: member.name, from: key, replacement, outcome: outcome.result });
          logger.warn(
            {
              pool: pool.name,
              instance: member.name,
              mig: key,
              errors: member.lastAttemptErrors,
              replacement,
              outcome: outcome.result,
            },
            METRIC_LOG_MESSAGES.stuckMoved,
          );
        }),
      );
    }
  }

  /**
   * Joins the pool's members with its scope's runners (shared by the pools of a scope) and the VMs
   * labelled to be kept (one list per project); keeps the rows for the fleet view. `undefined` when the
   * runners could not be listed: then nothing is reaped and no shortfall counted.
   */
  async function join(
    pool: Pool,
    scaler: PoolScaler,
    lists: MigMember[][],
    runners: (pool: Pool) => Promise<RunnerInfo[]>,
    kept: (project: string) => Promise<ReadonlySet<string>>,
    summary: ReconcileSummary,
  ): Promise<FleetRow[] | undefined> {
    const now = deps.now();
    const memory = memories.get(pool.name)!;
    let listed: RunnerInfo[];
    try {
      listed = await runners(pool);
    } catch (error) {
      summary.problems.push(
        `listing the runners of ${formatRunnerScope(pool.runnerScope)}: ${describe(error)}`,
      );
      return undefined;
    }
    let keptIds: Set<string> | undefined;
    if (lists.some((list) => list.some((m) => m.id !== ''))) {
      try {
        const sets = await Promise.all([...new Set(pool.migs.map((m) => m.project))].map(kept));
        keptIds = new Set(sets.flatMap((set) => [...set]));
      } catch (error) {
        summary.problems.push(
          `listing the VMs labelled to be kept for pool ${pool.name}: ${describe(error)}`,
        );
      }
    }
    const rows = joinFleet({
      pool,
      members: lists,
      runners: listed,
      keptIds,
      memory,
      now,
      isVanishedVm: (name) => scaler.wasCreated(name) && !scaler.has(name),
      ...(deps.instanceIdOf && { instanceIdOf: deps.instanceIdOf }),
    });
    // What the fleet wasted: VM time with an idle runner since the last join (at most since it idles).
    const last = joinedAt.get(pool.name);
    if (last !== undefined) {
      const idleMs = rows
        .filter((row) => row.state === 'idle')
        .reduce((sum, row) => sum + Math.min(now - last, now - row.idleSince!), 0);
      fleet.addIdleTime(pool.name, idleMs);
    }
    joinedAt.set(pool.name, now);
    fleet.setRows(pool.name, rows, now);
    return rows;
  }

  /** Plans and carries out the pool's reaping; returns the names of VMs whose runner or VM it deleted. */
  async function reap(pool: Pool, scaler: PoolScaler, rows: FleetRow[], result: PoolReconciliation) {
    const plan = planReaping({
      pool,
      rows,
      now: deps.now(),
      queued: fleet.queuedJobs(pool.name).length,
      minIdle: result.minIdle,
      maxDeletePercent: reaper.maxDeletePercent,
    });
    const decisions = await reapPool(
      { pool, scaler, github: deps.github, logger, now: deps.now, mode: reaper.mode },
      plan,
    );
    for (const decision of decisions) {
      if (decision.held === 'kept') continue; // listed in the rows; not a decision to keep repeating
      fleet.recordReaping(decision);
      result.reaped.push(decision);
    }
    // The rows the fleet view shows say what was just done: a deleted VM is leaving, a deleted runner gone.
    for (const decision of decisions.filter((d) => d.outcome === 'deleted')) {
      const row = rows.find(
        (r) => r.instanceId === decision.instanceId && (r.runner?.id ?? null) === decision.runnerId,
      );
      if (!row) continue;
      if (decision.action === 'delete-runner') rows.splice(rows.indexOf(row), 1);
      else Object.assign(row, { state: 'deleting', currentAction: 'DELETING', runner: null });
    }
    return new Set(
      decisions.filter((d) => d.outcome === 'deleted' && d.instance !== null).map((d) => d.instance!),
    );
  }

  /**
   * Requests VMs for the pool's queued jobs, and for its warm pool, beyond its VMs that are booting or
   * idle: queued jobs take those first; what is left over counts toward `minIdle`.
   */
  async function fillShortfall(
    pool: Pool,
    scaler: PoolScaler,
    lists: MigMember[][],
    rows: FleetRow[] | undefined,
    reaped: ReadonlySet<string>,
    result: PoolReconciliation,
  ) {
    const queued = fleet.queuedJobs(pool.name);
    result.queued = queued.length;
    if ((queued.length === 0 && result.minIdle === 0) || rows === undefined) return;
    const blocked = deps.versions?.scaleUpBlockedReason(pool.name);
    if (blocked !== undefined) {
      result.scaleUpBlockedReason = blocked; // logged when it began, and in this run's summary
      return;
    }
    // Rows whose VM will take no job: running one, dead, never registered, being deleted, kept and not
    // idle (someone is working on it), or on a runner version past GitHub's window.
    const taken = new Set(
      rows
        .filter(
          (row) =>
            row.instance !== null &&
            (['busy', 'lost', 'unregistered', 'deleting'].includes(row.state) ||
              (row.keep === true && row.state !== 'idle') ||
              // Its runner reports a release GitHub sends no jobs to: idle, but no use to a queued job.
              deps.versions?.isPastDeadline(row.runner?.version ?? null) === true),
        )
        .map((row) => row.instance!),
    );
    // The listing, plus VMs accepted since it was taken (a webhook batch may have landed meanwhile).
    const leaving = new Set(
      lists
        .flat()
        .filter((m) => m.currentAction === 'DELETING' || m.currentAction === 'ABANDONING')
        .map((m) => m.name),
    );
    const available = scaler
      .memberNames()
      .filter((name) => !leaving.has(name) && !taken.has(name) && !reaped.has(name));
    result.available = available.length;
    const jobShortfall = Math.max(0, queued.length - available.length);
    const warmShortfall = Math.max(0, result.minIdle - Math.max(0, available.length - queued.length));
    const nameOf = (job: TrackedJob) => instanceNameFor(pool.instanceNamePrefix, job.id, job.attempt);
    // Jobs that never got a VM first; then jobs whose VM another job took, with their next attempt.
    const chosen = [
      ...queued.filter((j) => !scaler.has(nameOf(j))),
      ...queued.filter((j) => scaler.has(nameOf(j))),
    ]
      .filter((job) => job.attempt < MAX_ATTEMPT || !scaler.has(nameOf(job)))
      .slice(0, jobShortfall);
    await Promise.all([
      ...chosen.map(async (job) => {
        if (scaler.has(nameOf(job))) job.attempt += 1;
        const instance = nameOf(job);
        const outcome = await scaler.request(instance);
        record(pool, job, job.id, instance, outcome);
        result.requested.push({ jobId: job.id, instance, outcome: outcome.result });
      }),
      ...Array.from({ length: warmShortfall }, async () => {
        const instance = warmInstanceName(pool.instanceNamePrefix);
        const outcome = await scaler.request(instance);
        record(pool, undefined, null, instance, outcome, `warm pool: minIdle ${result.minIdle}`);
        result.warmRequested.push({ instance, outcome: outcome.result });
      }),
    ]);
  }

  async function reconcile(): Promise<ReconcileSummary> {
    const started = deps.now();
    const summary: ReconcileSummary = {
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      deliveries: { listed: 0, failed: 0, redelivered: [] },
      joinCalls: { runnerLists: 0, keepLists: 0 },
      jobsChecked: 0,
      pools: {},
      problems: [],
    };
    // Read alongside the rest of the run (cached for hours; never throws): each pool's join is judged on it.
    const releases = deps.versions?.readReleases();
    try {
      const events = byEvent(await readDeliveries(summary));
      await redeliver(events, summary);
      if (!rebuilt) await rebuild(events, summary);
    } catch (error) {
      summary.problems.push(`reading the webhook delivery log: ${describe(error)}`);
    }
    await checkJobs(summary);

    const runnerLists = new Map<string, Promise<RunnerInfo[]>>();
    const runners = (pool: Pool): Promise<RunnerInfo[]> => {
      const key = formatRunnerScope(pool.runnerScope).toLowerCase();
      let list = runnerLists.get(key);
      if (!list) {
        list = deps.github.listRunners(pool.runnerScope);
        summary.joinCalls.runnerLists += 1;
        runnerLists.set(key, list);
      }
      return list;
    };
    const keptLists = new Map<string, Promise<ReadonlySet<string>>>();
    const kept = (project: string): Promise<ReadonlySet<string>> => {
      let list = keptLists.get(project);
      if (!list) {
        list = deps.compute.listKeptInstances(project).then((vms) => new Set(vms.map((vm) => vm.id)));
        summary.joinCalls.keepLists += 1;
        keptLists.set(project, list);
      }
      return list;
    };
    await Promise.all(
      deps.pools.map(async (pool) => {
        const scaler = deps.scalers.get(pool.name)!;
        const result: PoolReconciliation = {
          queued: 0,
          available: null,
          requested: [],
          moved: [],
          minIdle: minIdleAt(pool, deps.now()),
          warmRequested: [],
          rows: null,
          reaped: [],
        };
        summary.pools[pool.name] = result;
        let lists: MigMember[][];
        try {
          const listedAt = deps.now();
          lists = await Promise.all(
            pool.migs.map(async (mig, index) => {
              const [size, members] = await Promise.all([
                deps.compute.getTargetSize(mig),
                deps.compute.listMembers(mig),
              ]);
              await scaler.observe(index, members, size, listedAt);
              return members;
            }),
          );
        } catch (error) {
          summary.problems.push(`listing the MIGs of pool ${pool.name}: ${describe(error)}`);
          return;
        }
        await moveStuck(pool, scaler, lists, result, summary);
        const rows = await join(pool, scaler, lists, runners, kept, summary);
        if (releases) deps.versions!.judge(pool, rows, await releases);
        let reaped: ReadonlySet<string> = new Set();
        if (rows) {
          result.rows = {};
          for (const row of rows) result.rows[row.state] = (result.rows[row.state] ?? 0) + 1;
          if (reaper.mode !== 'off') reaped = await reap(pool, scaler, rows, result);
        }
        await fillShortfall(pool, scaler, lists, rows, reaped, result);
      }),
    );
    summary.durationMs = deps.now() - started;
    const log = summary.problems.length > 0 ? logger.warn.bind(logger) : logger.info.bind(logger);
    log(
      {
        redelivered: summary.deliveries.redelivered.length,
        failedDeliveries: summary.deliveries.failed,
        jobsChecked: summary.jobsChecked,
        pools: Object.fromEntries(
          Object.entries(summary.pools).map(([name, p]) => [
            name,
            {
              queued: p.queued,
              available: p.available,
              requested: p.requested.length,
              moved: p.moved.length,
              minIdle: p.minIdle,
              warmRequested: p.warmRequested.length,
              reaped: p.reaped.filter((d) => d.outcome === 'deleted').length,
              ...(p.scaleUpBlockedReason !== undefined && { scaleUpBlocked: true }),
            },
          ]),
        ),
        problems: summary.problems,
      },
      METRIC_LOG_MESSAGES.reconciled,
    );
    return summary;
  }

  return {
    run() {
      running ??= reconcile().finally(() => {
        running = undefined;
      });
      return running;
    },
  };
}

/**
 * `POST /reconcile`: runs the reconciler and answers its summary, 200 when every step ran and 502 (with
 * `error` naming the failed steps) when one did not, so Cloud Scheduler records a failed attempt.
 */
export function createReconcileHandler(reconciler: Reconciler): RequestHandler {
  return (_req, res, next) => {
    reconciler.run().then((summary) => {
      if (summary.problems.length === 0) res.json(summary);
      else
        res
          .status(502)
          .json({ error: `reconciliation incomplete: ${summary.problems.join('; ')}`, ...summary });
    }, next);
  };
}
