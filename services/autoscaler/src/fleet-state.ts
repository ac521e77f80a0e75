import { LRUCache } from 'lru-cache';
import type { FleetRow } from './join-fleet.js';
import type { ReapKind } from './plan-reaping.js';
import type { ReaperDecision } from './reap-pool.js';

/** A `workflow_job` status as deliveries and the jobs API report it. */
export type JobStatus = 'queued' | 'waiting' | 'in_progress' | 'completed' | 'requested' | 'pending';

/** A job the autoscaler heard of, with what it did about it. */
export interface TrackedJob {
  id: number;
  /** The pool whose labels and scopes it matched. */
  pool: string;
  /** `owner/repo`. */
  repository: string;
  installationId: number | undefined;
  labels: string[];
  /** `workflow_job.created_at`, ms. */
  createdAt: number;
  status: JobStatus;
  /** The attempt suffix of the last VM requested for it (1: `<prefix>-<job id>`). */
  attempt: number;
  /** What became of the last VM request: `created`, `exists`, `at-capacity`, `failed`, `not-queued`. */
  outcome: string | undefined;
  /** When the jobs API last confirmed its status (ms). */
  checkedAt: number | undefined;
}

/** One scale-up decision, for the fleet view. */
export interface ScaleDecision {
  at: string;
  pool: string;
  /** The job the VM was requested for; null for a warm pool's VM. */
  jobId: number | null;
  instance: string;
  outcome: string;
  mig?: string;
  /** Why a VM was not requested or not created. */
  reason?: string;
  /** `webhook` or `reconcile`. */
  source: string;
}

/** A delivery this service answered with a failure, or redelivered. */
export interface DeliveryRecord {
  at: string;
  guid: string;
  deliveryId?: number;
  jobId?: number;
  status?: number;
  reason?: string;
}

/** The service's memory: bounded, rebuilt from GitHub and Compute after a restart. */
export interface FleetState {
  /** Jobs by id, at most `maxJobs`, forgotten 24 hours after they were last touched. */
  readonly jobs: LRUCache<number, TrackedJob>;
  queuedJobs(pool: string): TrackedJob[];
  recordDecision(decision: ScaleDecision): void;
  decisions(pool: string): readonly ScaleDecision[];
  recordFailedDelivery(record: DeliveryRecord): void;
  recordRedelivery(record: DeliveryRecord): void;
  readonly failedDeliveries: readonly DeliveryRecord[];
  readonly redeliveries: readonly DeliveryRecord[];
  /** Keeps a pool's latest join (the fleet view's table), made at `at` (ms). */
  setRows(pool: string, rows: readonly FleetRow[], at: number): void;
  rows(pool: string): { rows: readonly FleetRow[]; at: number } | undefined;
  /** Records a reaper decision (the latest 50 per pool are kept) and counts what was deleted. */
  recordReaping(decision: ReaperDecision): void;
  reaping(pool: string): readonly ReaperDecision[];
  /** Rows deleted since the start, by why. */
  reapedTotals(pool: string): Readonly<Record<ReapKind, number>>;
  /** Adds VM time spent with an idle runner (what the fleet wasted), in ms. */
  addIdleTime(pool: string, ms: number): void;
  idleTime(pool: string): number;
}

/** GitHub fails a job that waited 24 hours for a runner; a job older than that no longer needs one. */
export const JOB_MEMORY_MS = 24 * 60 * 60 * 1000;

function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

/** Creates the in-memory view; every list in it is bounded. */
export function createFleetState(options: { maxJobs?: number; maxRecords?: number } = {}): FleetState {
  const maxRecords = options.maxRecords ?? 50;
  const jobs = new LRUCache<number, TrackedJob>({ max: options.maxJobs ?? 20_000, ttl: JOB_MEMORY_MS });
  const decisions = new Map<string, ScaleDecision[]>();
  const failedDeliveries: DeliveryRecord[] = [];
  const redeliveries: DeliveryRecord[] = [];
  const joins = new Map<string, { rows: readonly FleetRow[]; at: number }>();
  const reapings = new Map<string, ReaperDecision[]>();
  const totals = new Map<string, Record<ReapKind, number>>();
  const idle = new Map<string, number>();
  const totalsOf = (pool: string): Record<ReapKind, number> => {
    let counts = totals.get(pool);
    if (!counts) {
      counts = { lost: 0, unregistered: 0, idle: 0, 'runner-left': 0 };
      totals.set(pool, counts);
    }
    return counts;
  };
  return {
    jobs,
    queuedJobs: (pool) =>
      [...jobs.values()]
        .filter((job) => job.pool === pool && job.status === 'queued')
        .sort((a, b) => a.createdAt - b.createdAt),
    recordDecision: (decision) => {
      const list = decisions.get(decision.pool) ?? [];
      pushBounded(list, decision, maxRecords);
      decisions.set(decision.pool, list);
    },
    decisions: (pool) => decisions.get(pool) ?? [],
    recordFailedDelivery: (record) => pushBounded(failedDeliveries, record, maxRecords),
    recordRedelivery: (record) => pushBounded(redeliveries, record, maxRecords),
    failedDeliveries,
    redeliveries,
    setRows: (pool, rows, at) => joins.set(pool, { rows, at }),
    rows: (pool) => joins.get(pool),
    recordReaping: (decision) => {
      const list = reapings.get(decision.pool) ?? [];
      pushBounded(list, decision, maxRecords);
      reapings.set(decision.pool, list);
      if (decision.outcome === 'deleted') totalsOf(decision.pool)[decision.kind] += 1;
    },
    reaping: (pool) => reapings.get(pool) ?? [],
    reapedTotals: (pool) => totalsOf(pool),
    addIdleTime: (pool, ms) => idle.set(pool, (idle.get(pool) ?? 0) + ms),
    idleTime: (pool) => idle.get(pool) ?? 0,
  };
}
