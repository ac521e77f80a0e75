import { LRUCache } from 'lru-cache';
import { HttpError } from '#shared';

export interface InstanceLimitsOptions {
  /** JIT configs one instance id may get in any hour (JIT_CONFIGS_PER_INSTANCE_PER_HOUR). */
  jitConfigsPerHour: number;
  /** `GET /runner` requests one instance id may make in any minute. */
  runnerReadsPerMinute: number;
  /**
   * Instance ids remembered at most (least recently used forgotten first), which bounds memory: an
   * instance forgotten under that pressure starts counting again.
   */
  maxInstances?: number;
  /** Seconds a caller refused for a request already in flight should wait (the mutation queue's estimate). */
  busyRetryAfterSeconds?: () => number;
  now?: () => number;
}

/**
 * Limits per calling instance id, kept in this process: at most one runner change (JIT config or runner
 * deletion) in flight, at most `jitConfigsPerHour` JIT configs, at most `runnerReadsPerMinute` status reads.
 * Refusals are 429 with `Retry-After`. Several proxy instances (Cloud Run) each keep their own counts.
 */
export interface InstanceLimits {
  /**
   * Marks a runner change of `instanceId` as in flight and returns the function that ends it. 429 while
   * another one is: a VM does one thing at a time, and a second request would only queue behind it.
   */
  beginRunnerChange(instanceId: string, action: string): () => void;
  /** 429 when the instance already got its JIT configs for the hour. */
  assertMayGetJitConfig(instanceId: string): void;
  /** Counts one JIT config issued to the instance. */
  recordJitConfig(instanceId: string): void;
  /** Counts one status read, or refuses it with 429 past the per-minute limit. */
  takeRunnerRead(instanceId: string): void;
}

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/** Times within the last `windowMs`, oldest first. */
function recent(times: readonly number[] | undefined, now: number, windowMs: number): number[] {
  return (times ?? []).filter((t) => t > now - windowMs);
}

export function createInstanceLimits(options: InstanceLimitsOptions): InstanceLimits {
  const now = options.now ?? Date.now;
  const max = options.maxInstances ?? 50_000;
  const busyRetryAfter = options.busyRetryAfterSeconds ?? (() => 5);
  const inFlight = new Map<string, string>();
  const jitIssued = new LRUCache<string, number[]>({ max });
  const reads = new LRUCache<string, number[]>({ max });

  const retryAfter = (oldest: number, windowMs: number) =>
    String(Math.max(1, Math.ceil((oldest + windowMs - now()) / 1000)));

  return {
    beginRunnerChange(instanceId, action) {
      const current = inFlight.get(instanceId);
      if (current !== undefined) {
        throw new HttpError(
          429,
          `this instance is already ${current}; wait for that answer before asking again`,
          { 'Retry-After': String(busyRetryAfter()) },
        );
      }
      inFlight.set(instanceId, action);
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        inFlight.delete(instanceId);
      };
    },

    assertMayGetJitConfig(instanceId) {
      const times = recent(jitIssued.get(instanceId), now(), HOUR_MS);
      if (times.length >= options.jitConfigsPerHour) {
        throw new HttpError(
          429,
          `this instance already got ${times.length} JIT configs in the last hour (the limit): a VM registers one runner; replace the VM instead`,
          { 'Retry-After': retryAfter(times[0]!, HOUR_MS) },
        );
      }
    },

    recordJitConfig(instanceId) {
      const times = recent(jitIssued.get(instanceId), now(), HOUR_MS);
      times.push(now());
      jitIssued.set(instanceId, times.slice(-options.jitConfigsPerHour));
    },

    takeRunnerRead(instanceId) {
      const times = recent(reads.get(instanceId), now(), MINUTE_MS);
      if (times.length >= options.runnerReadsPerMinute) {
        throw new HttpError(
          429,
          `this instance asked for its runner ${times.length} times in the last minute (the limit)`,
          { 'Retry-After': retryAfter(times[0]!, MINUTE_MS) },
        );
      }
      times.push(now());
      reads.set(instanceId, times);
    },
  };
}
