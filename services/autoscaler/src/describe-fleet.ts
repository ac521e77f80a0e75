import type { RequestHandler } from 'express';
import type { DeliveryRecord, FleetState, ScaleDecision } from './fleet-state.js';
import type { Pool } from './pool-config.js';
import type { MigView, PoolScaler } from './pool-scaler.js';

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
  /** Jobs still queued whose last VM request did not succeed (at capacity, Compute failing). */
  queuedWithoutCapacity: Array<{ jobId: number; repository: string; queuedAt: string; outcome: string }>;
  queuedJobs: number;
  /** The latest scale-up decisions, newest last (at most 50). */
  recentDecisions: readonly ScaleDecision[];
}

/** The body of `GET /fleet`: the autoscaler's in-memory view, for the fleet status page. */
export interface FleetView {
  generatedAt: string;
  pools: PoolView[];
  deliveries: { failed: readonly DeliveryRecord[]; redelivered: readonly DeliveryRecord[] };
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Builds the fleet view from what the service remembers; no outside call. */
export function describeFleet(
  pools: readonly Pool[],
  scalers: ReadonlyMap<string, PoolScaler>,
  fleet: FleetState,
  now: number,
): FleetView {
  return {
    generatedAt: new Date(now).toISOString(),
    pools: pools.map((pool) => {
      const scaler = scalers.get(pool.name)!;
      const queued = fleet.queuedJobs(pool.name);
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
        queuedJobs: queued.length,
        queuedWithoutCapacity: queued
          .filter((job) => job.outcome === 'at-capacity' || job.outcome === 'failed')
          .slice(0, 100)
          .map((job) => ({
            jobId: job.id,
            repository: job.repository,
            queuedAt: new Date(job.createdAt).toISOString(),
            outcome: job.outcome!,
          })),
        recentDecisions: fleet.decisions(pool.name),
      };
    }),
    deliveries: { failed: fleet.failedDeliveries, redelivered: fleet.redeliveries },
  };
}

/** `GET /fleet`: the fleet view, built from memory on each request. */
export function createFleetHandler(
  pools: readonly Pool[],
  scalers: ReadonlyMap<string, PoolScaler>,
  fleet: FleetState,
  now: () => number,
): RequestHandler {
  return (_req, res) => {
    res.json(describeFleet(pools, scalers, fleet, now()));
  };
}
