import { LRUCache } from 'lru-cache';

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
  jobId: number;
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
  };
}
