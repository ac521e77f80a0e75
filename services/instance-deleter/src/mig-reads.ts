import { LRUCache } from 'lru-cache';
import type { ComputeClient, ManagedInstanceInfo, MigInfo } from './compute-client.js';
import { withComputeContext } from './compute-error.js';
import { describeResource, formatMigRef } from './resource-ref.js';
import type { ResourceRef } from './resource-ref.js';

/**
 * What the deleter reads about a MIG to decide: its members, its state (`targetSize`, `isStable`, its
 * autoscaler) and its autoscaler's recommendation. Failures are `HttpError`s naming what was read.
 */
export interface MigReads {
  members(mig: ResourceRef): Promise<ManagedInstanceInfo[]>;
  state(mig: ResourceRef): Promise<MigInfo>;
  /** `undefined` while the autoscaler has no recommendation yet. */
  recommendedSize(autoscaler: ResourceRef, mig: ResourceRef): Promise<number | undefined>;
}

/** Reads straight from Compute Engine, every time: what a deletion decides on. */
export function createMigReads(compute: ComputeClient): MigReads {
  return {
    members: (mig) =>
      withComputeContext(`list the VMs of MIG ${describeResource(mig)}`, () =>
        compute.listManagedInstances(mig),
      ),
    state: (mig) => withComputeContext(`read MIG ${describeResource(mig)}`, () => compute.getMig(mig)),
    recommendedSize: (autoscaler, mig) =>
      withComputeContext(`read autoscaler ${describeResource(autoscaler)} of MIG ${mig.name}`, () =>
        compute.getRecommendedSize(autoscaler),
      ),
  };
}

export interface SharedMigReadsOptions {
  /** How long a result is reused, in ms, counted from when it arrived. */
  maxAgeMs: number;
  /** Milliseconds, like `Date.now`. */
  now: () => number;
}

/** Bounds the memory of the caches; only MIGs that pass ALLOWED_MIG_PATTERN ever get an entry. */
const MAX_ENTRIES = 1000;

/**
 * Reads shared among the requests of one deleter: concurrent reads of the same MIG or autoscaler become
 * one Compute call, and a result is reused for `maxAgeMs`. A failed read is shared by the requests that
 * waited for it and then forgotten. For answers that may be a moment old (`GET /`), never for a deletion.
 */
export function createSharedMigReads(compute: ComputeClient, options: SharedMigReadsOptions): MigReads {
  const direct = createMigReads(compute);
  const shared = <T>() => {
    // lru-cache's fetch joins a read already under way for the key; values are boxed, since `undefined`
    // (no recommendation yet) is a value here. https://github.com/isaacs/node-lru-cache#fetch
    const cache = new LRUCache<string, { value: T }, () => Promise<T>>({
      max: MAX_ENTRIES,
      ttl: options.maxAgeMs,
      ttlResolution: 0,
      perf: { now: options.now },
      fetchMethod: async (_key, _stale, { context }) => ({ value: await context() }),
    });
    return async (key: string, read: () => Promise<T>): Promise<T> =>
      (await cache.forceFetch(key, { context: read })).value;
  };
  const members = shared<ManagedInstanceInfo[]>();
  const state = shared<MigInfo>();
  const recommendedSize = shared<number | undefined>();
  return {
    members: (mig) => members(formatMigRef(mig), () => direct.members(mig)),
    state: (mig) => state(formatMigRef(mig), () => direct.state(mig)),
    recommendedSize: (autoscaler, mig) =>
      recommendedSize(
        `projects/${autoscaler.project}/${autoscaler.scope}/${autoscaler.location}/autoscalers/${autoscaler.name}`,
        () => direct.recommendedSize(autoscaler, mig),
      ),
  };
}

/** The calling VM's entry among `members`, if it is one. */
export function findMember(
  members: readonly ManagedInstanceInfo[],
  vm: { zone: string; instanceName: string },
): ManagedInstanceInfo | undefined {
  return members.find((member) => member.zone === vm.zone && member.name === vm.instanceName);
}
