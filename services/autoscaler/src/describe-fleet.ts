import type { RequestHandler } from 'express';
import type { DeliveryRecord, FleetState, ScaleDecision } from './fleet-state.js';
import type { FleetRow, RowState, RunnerView } from './join-fleet.js';
import type { ReapKind } from './plan-reaping.js';
import type { Pool } from './pool-config.js';
import type { MigView, PoolScaler } from './pool-scaler.js';
import type { ReaperDecision } from './reap-pool.js';
import type { RunnerVersionCheck } from './runner-version-check.js';
import { minIdleAt } from './warm-pool.js';

/** One row of a pool's join, as a person reads it: ages in seconds, times as ISO strings. */
export interface RowView {
  state: RowState;
  instance: string | null;
  instanceId: string | null;
  zone: string | null;
  mig: string | null;
  /** The VM's status (`RUNNING`, …) and the MIG's current action on it. */
  status: string | null;
  currentAction: string | null;
  /** Labelled `github-runner-keep=true`; null when unknown. */
  keep: boolean | null;
  runner: RunnerView | null;
  extraRunners: RunnerView[];
  /** Seconds since this process first saw the VM. */
  ageSeconds: number;
  /** Seconds its runner has been idle; null when not idle. */
  idleSeconds: number | null;
  /** Seconds without a connected runner, and on how many runs in a row; null when it has one. */
  noRunnerSeconds: number | null;
  noRunnerRuns: number;
  busyWhenLastOnline: boolean;
  offlineRuns: number;
  vmGoneSince: string | null;
}
/** One pool in `GET /fleet`. */
export interface PoolView {
  name: string;
  labels: string[];
  maxRunners: number;
  /** Sum of the MIGs' targetSize as last known; null before the first read. */
  inUse: number | null;
  migs: Array<
    Omit<MigView, 'targetSize' | 'listedAt' | 'shortage'> & {
      targetSize: number | null;
      listedAt: string | null;
      shortage: string | null;
    }
  >;
  /**
   * Why the pool creates no VMs (its runners report a version past GitHub's 30-day window); null while it
   * may grow.
   */
  scaleUpBlockedReason: string | null;
  /**
   * The versions its runners reported, as the last reconciliation judged them against the actions/runner
   * releases: runners per version (`null`: not connected yet), and the oldest one's deadline. Null before
   * the first judgement, or when the releases are not read.
   */
  runnerVersion: {
    reported: Record<string, number>;
    oldest: string | null;
    level: string;
    daysLeft: number | null;
    message: string;
    checkedAt: string;
  } | null;
  /** Jobs still queued whose last VM request did not succeed (at capacity, Compute failing, scale-up stopped). */
  queuedWithoutCapacity: Array<{ jobId: number; repository: string; queuedAt: string; outcome: string }>;
  queuedJobs: number;
  /** The latest scale-up decisions, newest last (at most 50). */
  recentDecisions: readonly ScaleDecision[];
  /** Idle runners the pool keeps now (its warm pool). */
  minIdle: number;
  /** The latest join of its VMs and runners (`POST /reconcile`); `joinedAt` null before the first. */
  joinedAt: string | null;
  rows: RowView[];
  reaper: {
    /** Rows deleted since the start, by why. */
    reaped: Readonly<Record<ReapKind, number>>;
    /** VM minutes spent with an idle runner since the start: what the fleet wasted. */
    idleVmMinutes: number;
    /** The latest decisions, newest last (at most 50). */
    recentDecisions: readonly ReaperDecision[];
  };
}

/** The body of `GET /fleet`: the autoscaler's in-memory view, for the fleet status page. */
export interface FleetView {
  generatedAt: string;
  pools: PoolView[];
  deliveries: { failed: readonly DeliveryRecord[]; redelivered: readonly DeliveryRecord[] };
  /**
   * The actions/runner releases as the reconciler last read them: `error` says why they could not be read (no
   * pool is stopped for its version then). Null before the first reconciliation, or when not read at all.
   */
  runnerReleases: { fetchedAt: string | null; error: string | null } | null;
}

const iso = (ms: number | null | undefined): string | null =>
  ms === undefined || ms === null ? null : new Date(ms).toISOString();
const secondsSince = (now: number, ms: number | null): number | null =>
  ms === null ? null : Math.max(0, Math.round((now - ms) / 1000));

/** A join row as {@link RowView} shows it. */
export function describeRow(row: FleetRow, now: number): RowView {
  return {
    state: row.state,
    instance: row.instance,
    instanceId: row.instanceId,
    zone: row.zone,
    mig: row.mig,
    status: row.instanceStatus,
    currentAction: row.currentAction,
    keep: row.keep,
    runner: row.runner,
    extraRunners: row.extraRunners,
    ageSeconds: secondsSince(now, row.firstSeenAt)!,
    idleSeconds: secondsSince(now, row.idleSince),
    noRunnerSeconds: secondsSince(now, row.noRunnerSince),
    noRunnerRuns: row.noRunnerRuns,
    busyWhenLastOnline: row.busyWhenLastOnline,
    offlineRuns: row.offlineRuns,
    vmGoneSince: iso(row.vmGoneSince),
  };
}

/** Builds the fleet view from what the service remembers; no outside call. */
export function describeFleet(
  pools: readonly Pool[],
  scalers: ReadonlyMap<string, PoolScaler>,
  fleet: FleetState,
  now: number,
  versions?: RunnerVersionCheck,
): FleetView {
  const releases = versions?.lastRead();
  return {
    generatedAt: new Date(now).toISOString(),
    pools: pools.map((pool) => {
      const scaler = scalers.get(pool.name)!;
      const queued = fleet.queuedJobs(pool.name);
      const version = versions?.state(pool.name);
      return {
        name: pool.name,
        labels: pool.labels,
        maxRunners: pool.maxRunners,
        inUse: scaler.inUse() ?? null,
        migs: scaler.view().map((m) => ({
          mig: m.mig,
          targetSize: m.targetSize ?? null,
          listedAt: iso(m.listedAt),
          shortage: m.shortage ?? null,
        })),
        scaleUpBlockedReason: versions?.scaleUpBlockedReason(pool.name) ?? null,
        runnerVersion: version
          ? {
              reported: version.reported,
              oldest: version.oldest.version,
              level: version.oldest.level,
              daysLeft: version.oldest.daysLeft,
              message: version.oldest.message,
              checkedAt: new Date(version.checkedAt).toISOString(),
            }
          : null,
        queuedJobs: queued.length,
        queuedWithoutCapacity: queued
          .filter((job) => ['at-capacity', 'failed', 'blocked'].includes(job.outcome ?? ''))
          .slice(0, 100)
          .map((job) => ({
            jobId: job.id,
            repository: job.repository,
            queuedAt: new Date(job.createdAt).toISOString(),
            outcome: job.outcome!,
          })),
        recentDecisions: fleet.decisions(pool.name),
        minIdle: minIdleAt(pool, now),
        joinedAt: iso(fleet.rows(pool.name)?.at),
        rows: (fleet.rows(pool.name)?.rows ?? []).map((row) => describeRow(row, now)),
        reaper: {
          reaped: fleet.reapedTotals(pool.name),
          idleVmMinutes: Math.round(fleet.idleTime(pool.name) / 600) / 100,
          recentDecisions: fleet.reaping(pool.name),
        },
      };
    }),
    deliveries: { failed: fleet.failedDeliveries, redelivered: fleet.redeliveries },
    runnerReleases: releases ? { fetchedAt: iso(releases.fetchedAt), error: releases.error } : null,
  };
}

/** `GET /fleet`: the fleet view, built from memory on each request. */
export function createFleetHandler(
  pools: readonly Pool[],
  scalers: ReadonlyMap<string, PoolScaler>,
  fleet: FleetState,
  now: () => number,
  versions?: RunnerVersionCheck,
): RequestHandler {
  return (_req, res) => {
    res.json(describeFleet(pools, scalers, fleet, now(), versions));
  };
}
