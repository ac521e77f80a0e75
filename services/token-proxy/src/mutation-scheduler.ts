import Bottleneck from 'bottleneck';
import { HttpError } from '#shared';
import type { CallerIdentity } from '#shared';

/**
 * Who a mutating GitHub request is for. Callers are served round-robin first by `account` (the service
 * account, so one MIG's boot storm cannot starve another's VMs), then by `lane` within it (the instance, so
 * one VM cannot starve its siblings).
 */
export interface MutationCaller {
  /** The caller's service account (its email, or `sub:<id>` without one); `service` for the proxy's own. */
  account: string;
  /** The calling instance (`instance:<id>`), or one lane for a caller without Compute Engine claims. */
  lane: string;
}

/**
 * Whose turn a mutating GitHub request takes in the mutation scheduler: the service account, then the
 * instance (or the token's subject when it names no instance).
 */
export function mutationCallerOf(caller: CallerIdentity): MutationCaller {
  return {
    account: caller.email ?? `sub:${caller.sub}`,
    lane: caller.compute ? `instance:${caller.compute.instanceId}` : `sub:${caller.sub}`,
  };
}

/** The caller of a mutating request made without one (none of this service's requests is). */
export const SERVICE_CALLER: MutationCaller = { account: 'service', lane: 'service' };

export interface MutationSchedulerOptions {
  /**
   * Minimum time between the starts of two mutating requests, in ms (GITHUB_WRITE_INTERVAL_MS): GitHub asks
   * integrators to make mutating requests serially and spaced.
   * https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#avoid-concurrent-requests
   */
  intervalMs: number;
  /** Requests waiting at once, all callers together (MUTATION_QUEUE_LIMIT); beyond it, 429. */
  maxQueued: number;
  /** Requests one caller (one lane) may have waiting (MUTATION_QUEUE_LIMIT_PER_CALLER); beyond it, 429. */
  maxQueuedPerCaller: number;
  /**
   * How long a caller waits at most, in ms (GITHUB_DEADLINE_SECONDS). No more requests wait than the queue
   * serves in that time at its pace, one turn every `intervalMs` or every GitHub call, whichever is longer
   * (a running request holds the turn): a request beyond that would wait out its deadline, never sent, for
   * a 504, so it gets 429 and when to come back at once instead. Without it, only `maxQueued` bounds the queue.
   */
  maxWaitMs?: number;
}

/** What is waiting, for tests, logs and Retry-After estimates. */
export interface MutationQueueStats {
  queued: number;
  running: boolean;
  /** Waiting requests per account, then per lane. */
  byAccount: Record<string, Record<string, number>>;
}

/**
 * The one scheduler every mutating GitHub request of the service goes through (token creation, JIT
 * configs, runner deletion). One request runs at a time, starts at least `intervalMs` apart, and the next
 * one is chosen round-robin over callers, not first-come-first-served. A request whose caller went away
 * (its signal aborted: socket closed or deadline passed) is dropped before it reaches GitHub.
 */
export interface MutationScheduler {
  /**
   * Runs `work` when `caller`'s turn comes. Rejects with 429 ({@link HttpError}, `Retry-After`) when the
   * caller's or the total queue is full; when `signal` aborts first, with its reason if that is an
   * {@link HttpError} (a 504 for a deadline), else with {@link CallerGoneError}.
   */
  schedule<T>(caller: MutationCaller, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T>;
  /** Seconds a refused caller should wait: about how long the current queue takes to drain. */
  retryAfterSeconds(): number;
  stats(): MutationQueueStats;
}

/** The caller of a queued request went away (socket closed, deadline passed): it never reached GitHub. */
export class CallerGoneError extends HttpError {
  constructor() {
    // Nobody reads this answer: the caller has left, or has already been told 504.
    super(503, 'the request was dropped before reaching GitHub: its caller went away');
  }
}

interface Job {
  caller: MutationCaller;
  /** Runs the work and says true, or drops it (false) when the caller has gone meanwhile. */
  start(): boolean;
  /** Settles (never rejects) when the work has, or when the job was dropped. */
  settled: Promise<void>;
}

/**
 * Builds the {@link MutationScheduler}: a FIFO queue per caller, served round-robin one request per turn
 * (accounts in turn, then lanes in turn within the account), on top of one Bottleneck limiter
 * (`maxConcurrent: 1`, `minTime`) that keeps requests serial and spaced. Maps keep insertion order, so
 * "move to the back of the ring" is delete-and-set.
 */
export function createMutationScheduler(options: MutationSchedulerOptions): MutationScheduler {
  const limiter = new Bottleneck({ maxConcurrent: 1, minTime: options.intervalMs });
  const accounts = new Map<string, Map<string, Job[]>>();
  let queued = 0;
  let running = false;
  let slotPending = false;
  /** How long the requests that ran took, start to settled: a moving average (the last ones weigh most). */
  let callMs: number | undefined;
  /** How long one turn takes: the spacing, or the GitHub call when that is longer. */
  const turnMs = () => Math.max(options.intervalMs, callMs ?? 0);
  /** How many may wait: `maxQueued`, and no more than reach their turn within `maxWaitMs` (one turn kept for the call). */
  const admissible = () =>
    options.maxWaitMs === undefined || turnMs() === 0
      ? options.maxQueued
      : Math.min(options.maxQueued, Math.max(1, Math.floor(options.maxWaitMs / turnMs()) - 1));

  const remove = (job: Job): boolean => {
    const lanes = accounts.get(job.caller.account);
    const lane = lanes?.get(job.caller.lane);
    const at = lane?.indexOf(job) ?? -1;
    if (!lanes || !lane || at < 0) return false;
    lane.splice(at, 1);
    queued -= 1;
    if (lane.length === 0) lanes.delete(job.caller.lane);
    if (lanes.size === 0) accounts.delete(job.caller.account);
    return true;
  };

  /** The next request in round-robin order, taken off its queue; its account and lane go to the back. */
  const takeNext = (): Job | undefined => {
    const first = accounts.entries().next();
    if (first.done) return undefined;
    const [account, lanes] = first.value;
    const [laneKey, lane] = lanes.entries().next().value!;
    const job = lane.shift()!;
    queued -= 1;
    lanes.delete(laneKey);
    if (lane.length > 0) lanes.set(laneKey, lane);
    accounts.delete(account);
    if (lanes.size > 0) accounts.set(account, lanes);
    return job;
  };

  // One Bottleneck job per dispatch, and the request is chosen only when the limiter lets it start, so a
  // caller that left while the previous request ran is skipped, never sent.
  const pump = (): void => {
    if (slotPending || queued === 0) return;
    slotPending = true;
    const next = () => {
      running = false;
      slotPending = false;
      pump();
    };
    limiter
      .schedule(async () => {
        const job = takeNext();
        if (!job) return;
        running = true;
        const started = performance.now();
        if (job.start()) {
          await job.settled;
          const took = performance.now() - started;
          callMs = callMs === undefined ? took : 0.8 * callMs + 0.2 * took;
        }
      })
      .then(next, next);
  };

  const retryAfterSeconds = (): number =>
    Math.max(1, Math.ceil(((queued + 1) * Math.max(turnMs(), 250)) / 1000));

  return {
    schedule<T>(caller: MutationCaller, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
      const dropped = (): HttpError =>
        signal?.reason instanceof HttpError ? signal.reason : new CallerGoneError();
      if (signal?.aborted) return Promise.reject(dropped());
      const laneLength = accounts.get(caller.account)?.get(caller.lane)?.length ?? 0;
      if (laneLength >= options.maxQueuedPerCaller) {
        return Promise.reject(
          new HttpError(429, `this caller already has ${laneLength} GitHub changes waiting; retry later`, {
            'Retry-After': String(retryAfterSeconds()),
          }),
        );
      }
      if (queued >= admissible()) {
        return Promise.reject(
          new HttpError(429, `the token proxy has ${queued} GitHub changes waiting; retry later`, {
            'Retry-After': String(retryAfterSeconds()),
          }),
        );
      }
      return new Promise<T>((resolve, reject) => {
        let settle!: () => void;
        const settled = new Promise<void>((done) => (settle = done));
        const dropIfQueued = () => {
          if (remove(job)) {
            reject(dropped());
            settle();
          }
        };
        const job: Job = {
          caller,
          settled,
          start: () => {
            signal?.removeEventListener('abort', dropIfQueued);
            if (signal?.aborted) {
              reject(dropped());
              settle();
              return false;
            }
            let result: Promise<T>;
            try {
              result = work();
            } catch (error) {
              result = Promise.reject(error);
            }
            result.then(resolve, reject).finally(settle);
            return true;
          },
        };
        signal?.addEventListener('abort', dropIfQueued, { once: true });
        let lanes = accounts.get(caller.account);
        if (!lanes) {
          lanes = new Map();
          accounts.set(caller.account, lanes);
        }
        let lane = lanes.get(caller.lane);
        if (!lane) {
          lane = [];
          lanes.set(caller.lane, lane);
        }
        lane.push(job);
        queued += 1;
        pump();
      });
    },

    retryAfterSeconds,

    stats() {
      const byAccount: Record<string, Record<string, number>> = {};
      for (const [account, lanes] of accounts) {
        byAccount[account] = Object.fromEntries([...lanes].map(([lane, jobs]) => [lane, jobs.length]));
      }
      return { queued, running, byAccount };
    },
  };
}
