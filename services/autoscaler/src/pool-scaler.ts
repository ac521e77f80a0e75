import { LRUCache } from 'lru-cache';
import type { Logger } from '#shared';
import { admitWithinCap } from './admit-within-cap.js';
import { createBatcher } from './batcher.js';
import { ComputeError } from './compute-error.js';
import type { ComputeMigApi, MigMember } from './compute-mig-api.js';
import { METRIC_LOG_MESSAGES } from './log-messages.js';
import { formatMigRef } from './mig-ref.js';
import type { MigRef } from './mig-ref.js';
import { createMutex } from './mutex.js';
import type { Pool } from './pool-config.js';

/** What became of one requested VM. */
export type CreateOutcome =
  /** Compute accepted the request: the VM is CREATING in `mig`. */
  | { result: 'created'; mig: string }
  /** A VM of that name is already in the pool (or Compute said so): nothing to do. */
  | { result: 'exists'; mig?: string }
  /** The pool is at `maxRunners`. */
  | { result: 'at-capacity'; inUse: number }
  /** Compute could not be asked, or refused in every MIG; the detail is Compute's own message. */
  | { result: 'failed'; reason: string };

/** What the scaler knows about one of its pool's MIGs. */
export interface MigView {
  mig: string;
  /** `undefined` until first read. */
  targetSize: number | undefined;
  /** Why the MIG is passed over for new VMs (its members were stuck in creation), if it is. */
  shortage: string | undefined;
  /** When the MIG was last listed (ms), if ever. */
  listedAt: number | undefined;
}

export interface PoolScaler {
  readonly pool: Pool;
  /**
   * Requests a VM named `name`, batched with others for `BATCH_WINDOW_MS`. `startAt` is the index of the
   * first MIG to try (the reconciler moves a stuck VM to the next one).
   */
  request(name: string, startAt?: number): Promise<CreateOutcome>;
  /**
   * Takes in a listing of MIG `index` made by the reconciler from `listedAt` on (members and targetSize),
   * outside the pool's lock, so webhook batches never wait for it.
   */
  observe(index: number, members: readonly MigMember[], targetSize: number, listedAt: number): Promise<void>;
  /** Deletes members of MIG `index` (stuck in creation) and lowers the pool's count. */
  deleteMembers(index: number, members: ReadonlyArray<{ zone: string; name: string }>): Promise<void>;
  /** Marks MIG `index` as unable to create VMs (`reason`), or able again (`undefined`). */
  setShortage(index: number, reason: string | undefined): void;
  /** True when a MIG of the pool is known to have `name`. */
  has(name: string): boolean;
  /**
   * True when this process had a MIG of the pool create a VM of this name, in the last day (at most
   * 50,000 names): how a runner left by a VM that vanished before any listing showed its id is known.
   */
  wasCreated(name: string): boolean;
  /** Every member name known: the last listings plus what was accepted since (nothing being deleted). */
  memberNames(): string[];
  /** Sum of the MIGs' targetSize as last known (undefined if some MIG was never read). */
  inUse(): number | undefined;
  view(): MigView[];
}

export interface PoolScalerOptions {
  pool: Pool;
  compute: ComputeMigApi;
  logger: Logger;
  batchWindowMs: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

/** createInstances takes at most 1000 instances a call. */
const MAX_BATCH = 1000;
/**
 * Names remembered per MIG between listings (which replace them): enough for any MIG this service sizes,
 * and a bound if the reconciler stops running. Forgetting a name only costs Compute's "already exists".
 */
const MAX_KNOWN_NAMES = 20_000;

function remember(members: Map<string, number>, name: string, at: number): void {
  members.delete(name);
  members.set(name, at);
  if (members.size > MAX_KNOWN_NAMES) members.delete(members.keys().next().value!);
}

interface MigState {
  ref: MigRef;
  key: string;
  targetSize: number | undefined;
  /** Names known to be members, with when we learnt it (ms). */
  members: Map<string, number>;
  shortage: string | undefined;
  listedAt: number | undefined;
}

/** The result of asking one MIG for some names. */
interface MigAttempt {
  created: string[];
  exists: string[];
  /** Definitely not created here: another MIG may. */
  passOn: string[];
  /** May or may not have been created: not sent anywhere else. */
  unknown: string[];
  reason: string;
}

/**
 * Turns VM requests for one pool into as few createInstances calls as it can, without ever letting the
 * pool exceed `maxRunners`:
 *
 * - requests arriving within `BATCH_WINDOW_MS` form one batch; a name already known in the pool (or twice
 *   in a batch) is answered without a call;
 * - batches run one at a time per pool, and the count they are admitted against (the sum of `targetSize`)
 *   includes every earlier batch; when a batch does not fit, the MIGs are read again first (VMs that
 *   deleted themselves free room), and what still does not fit is refused;
 * - a batch goes to the first MIG that is not short of capacity; a MIG that refuses it (a quota, a
 *   stock-out, a refusal) passes what it did not create on to the next MIG in the pool's order;
 * - a batch Compute refuses as a whole because of one name (it does not document what it answers for a
 *   name that exists) is split in halves and retried until the offending names stand alone, so one
 *   duplicate costs about 2·log2(n) extra calls instead of failing the other jobs; a name refused alone as
 *   existing counts as created;
 * - a call that may or may not have been carried out (a timeout, a 5xx) fails its names: the caller answers
 *   503, GitHub records a failed delivery, and a redelivery finds the VM or creates it.
 */
export function createPoolScaler(options: PoolScalerOptions): PoolScaler {
  const { pool, compute, logger } = options;
  const migs: MigState[] = pool.migs.map((ref) => ({
    ref,
    key: formatMigRef(ref),
    targetSize: undefined,
    members: new Map(),
    shortage: undefined,
    listedAt: undefined,
  }));
  const lock = createMutex();
  const created = new LRUCache<string, true>({ max: 50_000, ttl: 24 * 60 * 60 * 1000 });
  const inUse = (): number | undefined =>
    migs.every((m) => m.targetSize !== undefined)
      ? migs.reduce((sum, m) => sum + (m.targetSize ?? 0), 0)
      : undefined;
  const migOf = (name: string): MigState | undefined => migs.find((m) => m.members.has(name));

  /** Reads every MIG's targetSize; throws a ComputeError when one cannot be read. */
  async function readSizes(): Promise<number> {
    const sizes = await Promise.all(migs.map((m) => compute.getTargetSize(m.ref)));
    sizes.forEach((size, i) => {
      migs[i]!.targetSize = size;
    });
    return sizes.reduce((a, b) => a + b, 0);
  }

  /** Asks one MIG for `names`, splitting a batch refused as a whole until the culprits stand alone. */
  async function askMig(mig: MigState, names: string[]): Promise<MigAttempt> {
    const attempt: MigAttempt = { created: [], exists: [], passOn: [], unknown: [], reason: '' };
    const ask = async (part: string[]): Promise<void> => {
      try {
        await compute.createInstances(mig.ref, part);
        const at = options.now();
        for (const name of part) {
          remember(mig.members, name, at);
          created.set(name, true);
        }
        mig.targetSize = (mig.targetSize ?? 0) + part.length;
        attempt.created.push(...part);
        return;
      } catch (error) {
        if (!(error instanceof ComputeError)) throw error;
        attempt.reason = error.computeMessage || error.failure;
        if (error.failure === 'unavailable') {
          attempt.unknown.push(...part);
        } else if (error.failure === 'no-capacity') {
          mig.shortage = error.code ?? error.computeMessage;
          attempt.passOn.push(...part);
        } else if (part.length > 1) {
          const half = Math.ceil(part.length / 2);
          await ask(part.slice(0, half));
          await ask(part.slice(half));
        } else if (error.failure === 'already-exists') {
          remember(mig.members, part[0]!, options.now());
          attempt.exists.push(...part);
        } else {
          attempt.passOn.push(...part);
        }
      }
    };
    for (let i = 0; i < names.length; i += MAX_BATCH) await ask(names.slice(i, i + MAX_BATCH));
    return attempt;
  }

  /** MIG preference for a batch: from `startAt` round the list, MIGs short of capacity last. */
  function order(startAt: number): MigState[] {
    const rotated = migs.map((_, i) => migs[(startAt + i) % migs.length]!);
    return [...rotated.filter((m) => !m.shortage), ...rotated.filter((m) => m.shortage)];
  }

  async function createWithFallback(
    names: string[],
    startAt: number,
    outcomes: Map<string, CreateOutcome>,
  ): Promise<void> {
    let remaining = names;
    let reason = 'no MIG could create the VM';
    for (const mig of order(startAt)) {
      if (remaining.length === 0) break;
      const attempt = await askMig(mig, remaining);
      for (const name of attempt.created) outcomes.set(name, { result: 'created', mig: mig.key });
      for (const name of attempt.exists) outcomes.set(name, { result: 'exists', mig: mig.key });
      for (const name of attempt.unknown) {
        outcomes.set(name, { result: 'failed', reason: `${mig.key}: ${attempt.reason}` });
      }
      if (attempt.passOn.length > 0) {
        reason = `${mig.key}: ${attempt.reason}`;
        logger.warn(
          { pool: pool.name, mig: mig.key, names: attempt.passOn.length, reason: attempt.reason },
          METRIC_LOG_MESSAGES.migDidNotCreate,
        );
      }
      remaining = attempt.passOn;
    }
    for (const name of remaining) outcomes.set(name, { result: 'failed', reason });
  }

  async function flush(entries: ReadonlyMap<string, number>): Promise<Map<string, CreateOutcome>> {
    return lock.run(async () => {
      const outcomes = new Map<string, CreateOutcome>();
      const fresh: string[] = [];
      for (const name of entries.keys()) {
        const known = migOf(name);
        if (known) outcomes.set(name, { result: 'exists', mig: known.key });
        else fresh.push(name);
      }
      if (fresh.length === 0) return outcomes;

      let count = inUse();
      try {
        if (count === undefined || count + fresh.length > pool.maxRunners) count = await readSizes();
      } catch (error) {
        if (!(error instanceof ComputeError)) throw error;
        const reason = `cannot read the size of the pool's MIGs: ${error.computeMessage || error.failure}`;
        for (const name of fresh) outcomes.set(name, { result: 'failed', reason });
        return outcomes;
      }
      const { admitted, refused } = admitWithinCap(fresh, count, pool.maxRunners);
      for (const name of refused) outcomes.set(name, { result: 'at-capacity', inUse: count });
      const byStart = new Map<number, string[]>();
      for (const name of admitted) {
        const start = entries.get(name) ?? 0;
        byStart.set(start, [...(byStart.get(start) ?? []), name]);
      }
      for (const [start, names] of byStart) await createWithFallback(names, start, outcomes);
      return outcomes;
    });
  }

  const batcher = createBatcher<string, number, CreateOutcome>({
    windowMs: options.batchWindowMs,
    maxSize: MAX_BATCH,
    sleep: options.sleep,
    flush,
  });

  return {
    pool,
    request: (name, startAt = 0) => batcher.add(name, startAt % migs.length),

    observe: (index, members, targetSize, listedAt) =>
      lock.run(async () => {
        const mig = migs[index]!;
        const listed = new Map(
          members.filter((m) => m.currentAction !== 'DELETING').map((m) => [m.name, listedAt]),
        );
        // Names accepted after the listing began are kept, and counted on top of its targetSize unless it
        // already shows them: the count may then be too high for a minute, never too low.
        let acceptedSince = 0;
        for (const [name, at] of mig.members) {
          if (at < listedAt || listed.has(name)) continue;
          listed.set(name, at);
          acceptedSince += 1;
        }
        mig.members = listed;
        mig.targetSize = targetSize + acceptedSince;
        mig.listedAt = listedAt;
      }),

    deleteMembers: (index, members) =>
      lock.run(async () => {
        const mig = migs[index]!;
        await compute.deleteInstances(mig.ref, members);
        for (const { name } of members) mig.members.delete(name);
        mig.targetSize = Math.max(0, (mig.targetSize ?? members.length) - members.length);
      }),

    setShortage: (index, reason) => {
      migs[index]!.shortage = reason;
    },
    has: (name) => migOf(name) !== undefined,
    wasCreated: (name) => created.has(name),
    memberNames: () => migs.flatMap((m) => [...m.members.keys()]),
    inUse,
    view: () =>
      migs.map((m) => ({ mig: m.key, targetSize: m.targetSize, shortage: m.shortage, listedAt: m.listedAt })),
  };
}
