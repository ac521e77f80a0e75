import fc from 'fast-check';
import {
  admitWithinCap,
  ComputeError,
  createBatcher,
  createPoolScaler,
  formatMigRef,
  operationError,
  parsePoolConfig,
  toComputeError,
} from '#autoscaler';
import type { ComputeMigApi, CreateOutcome, MigRef, Pool } from '#autoscaler';
import { captureLogs } from '#test-support/log-capture';

/** A sleep the test releases by hand: each batch window ends when the test says so. */
function manualClock() {
  const waiting: Array<() => void> = [];
  return {
    sleep: () => new Promise<void>((resolve) => waiting.push(resolve)),
    /** Ends every open window, then lets the flushes run. */
    release: async () => {
      for (const resolve of waiting.splice(0)) resolve();
      for (let i = 0; i < 20; i += 1) await Promise.resolve();
    },
  };
}

/** An in-memory Compute: MIGs with targetSize and names, all-or-nothing createInstances, scripted refusals. */
function memoryCompute(
  refuse: (mig: string, names: readonly string[]) => ComputeError | undefined = () => undefined,
) {
  const migs = new Map<string, { targetSize: number; names: Set<string> }>();
  const calls: Array<{ mig: string; names: string[] }> = [];
  const of = (ref: MigRef) => {
    const key = formatMigRef(ref);
    if (!migs.has(key)) migs.set(key, { targetSize: 0, names: new Set() });
    return { key, mig: migs.get(key)! };
  };
  const api: ComputeMigApi = {
    getTargetSize: async (ref) => of(ref).mig.targetSize,
    listMembers: async (ref) =>
      [...of(ref).mig.names].map((name, i) => ({
        name,
        id: String(1_000_000_000_000_000_000n + BigInt(i)),
        zone: 'z-a',
        currentAction: 'NONE',
        instanceStatus: 'RUNNING',
        lastAttemptErrors: [],
      })),
    createInstances: async (ref, names) => {
      const { key, mig } = of(ref);
      calls.push({ mig: key, names: [...names] });
      const refusal = refuse(key, names);
      if (refusal) throw refusal;
      if (names.some((n) => [...migs.values()].some((m) => m.names.has(n)))) {
        throw new ComputeError('already-exists', 409, 'The resource already exists');
      }
      for (const n of names) mig.names.add(n);
      mig.targetSize += names.length;
    },
    deleteInstances: async (ref, members) => {
      const { mig } = of(ref);
      for (const { name } of members) mig.names.delete(name);
      mig.targetSize -= members.length;
    },
    listKeptInstances: async () => [],
  };
  return { api, migs, calls, total: () => [...migs.values()].reduce((sum, m) => sum + m.targetSize, 0) };
}

function pool(maxRunners: number, migCount = 2): Pool {
  return parsePoolConfig(
    JSON.stringify({
      pools: [
        {
          name: 'p',
          scopes: ['o'],
          labels: ['x'],
          migs: Array.from(
            { length: migCount },
            (_, i) => `projects/p/zones/z-${'abc'[i]}/instanceGroupManagers/m${i}`,
          ),
          runnerScope: 'o',
          maxRunners,
          instanceNamePrefix: 'vm',
        },
      ],
    }),
  )[0]!;
}

function scalerWith(compute: ComputeMigApi, maxRunners: number, migCount = 2) {
  const clock = manualClock();
  const scaler = createPoolScaler({
    pool: pool(maxRunners, migCount),
    compute,
    logger: captureLogs().logger,
    batchWindowMs: 1000,
    now: Date.now,
    sleep: clock.sleep,
  });
  return { scaler, release: clock.release };
}

const M0 = 'projects/p/zones/z-a/instanceGroupManagers/m0';
const M1 = 'projects/p/zones/z-b/instanceGroupManagers/m1';

describe('createBatcher', () => {
  it('sends everything added within one window in one flush, once per key, and answers each caller', async () => {
    const clock = manualClock();
    const flushes: string[][] = [];
    const batcher = createBatcher<string, number, string>({
      windowMs: 1000,
      maxSize: 100,
      sleep: clock.sleep,
      flush: async (entries) => {
        flushes.push([...entries.keys()]);
        return new Map([...entries].map(([key, value]) => [key, `${key}:${value}`]));
      },
    });
    const answers = Promise.all([batcher.add('a', 1), batcher.add('b', 2), batcher.add('a', 3)]);
    expect(batcher.pending).toBe(2);
    await clock.release();
    expect(await answers).toEqual(['a:1', 'b:2', 'a:1']);
    const later = batcher.add('c', 4);
    await clock.release();
    expect(await later).toBe('c:4');
    expect(flushes).toEqual([['a', 'b'], ['c']]);
  });

  it('flushes a full batch at once, and rejects the callers of a failed flush', async () => {
    const clock = manualClock();
    const batcher = createBatcher<number, null, number>({
      windowMs: 1000,
      maxSize: 3,
      sleep: clock.sleep,
      flush: async (entries) => {
        if (entries.has(99)) throw new Error('flush failed');
        return new Map([...entries.keys()].map((k) => [k, k * 2]));
      },
    });
    // No window ends: the third key fills the batch.
    expect(await Promise.all([1, 2, 3].map((k) => batcher.add(k, null)))).toEqual([2, 4, 6]);
    const failing = batcher.add(99, null);
    await clock.release();
    await expect(failing).rejects.toThrow('flush failed');
  });
});

describe('admitWithinCap', () => {
  it('admits first come first served, never beyond the room left', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string(), { maxLength: 50 }),
        fc.nat(100),
        fc.integer({ min: 1, max: 100 }),
        (names, inUse, max) => {
          const { admitted, refused } = admitWithinCap(names, inUse, max);
          expect([...admitted, ...refused]).toEqual(names);
          expect(admitted.length).toBe(Math.min(names.length, Math.max(0, max - inUse)));
        },
      ),
    );
  });
});

describe('Compute error classification', () => {
  it.each([
    [
      { status: 409, message: '{"error":{"message":"The resource x already exists"}}' },
      'already-exists',
      409,
    ],
    [{ status: 403, message: '{"error":{"message":"Quota \'CPUS\' exceeded"}}' }, 'no-capacity', 403],
    [{ status: 404, message: '{"error":{"message":"not found"}}' }, 'refused', 404],
    [{ status: 400, message: 'not json' }, 'refused', 400],
    [{ status: 503, message: '{"error":{"message":"backend"}}' }, 'unavailable', 503],
    [{ status: 429, message: '' }, 'unavailable', 429],
    [{ code: 4, message: 'Total timeout exceeded' }, 'unavailable', 0],
    [new Error('socket hang up'), 'unavailable', 0],
  ])('classifies %j as %s', (error, failure, status) => {
    expect(toComputeError(error)).toMatchObject({ failure, status });
  });

  it.each([
    [{ code: 'RESOURCE_ALREADY_EXISTS', message: 'exists' }, 409, 'already-exists'],
    [{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: 'no GPUs' }, 503, 'no-capacity'],
    [{ code: 'QUOTA_EXCEEDED', message: 'quota' }, 403, 'no-capacity'],
    [{ code: 'CONDITION_NOT_MET', message: 'no' }, 400, 'refused'],
    // A DONE operation was answered: even a 5xx in it is a refusal, never "maybe".
    [{ code: 'INTERNAL_ERROR', message: 'oops' }, 500, 'refused'],
  ])('classifies an operation error %j', (error, httpErrorStatusCode, failure) => {
    expect(operationError({ error: { errors: [error] }, httpErrorStatusCode })).toMatchObject({
      failure,
      code: error.code,
    });
  });
});

describe('createPoolScaler', () => {
  it.each([
    [8, [5]],
    [16, [0, 15]],
    [100, [37]],
    [1000, [1, 500, 999]],
  ])(
    'finds %d names with existing ones at %j by halving, creating all the others',
    async (count, existing) => {
      const compute = memoryCompute();
      const { scaler, release } = scalerWith(compute.api, 5000);
      const names = Array.from({ length: count }, (_, i) => `vm-${i + 1}`);
      compute.migs.set(M1, { targetSize: existing.length, names: new Set(existing.map((e) => names[e]!)) });
      const outcomes = Promise.all(names.map((n) => scaler.request(n)));
      await release();
      const results = await outcomes;
      expect(results.map((r) => r.result)).toEqual(
        names.map((_, i) => (existing.includes(i) ? 'exists' : 'created')),
      );
      expect(compute.total()).toBe(count);
      const bound = 1 + 2 * existing.length * Math.ceil(Math.log2(count));
      expect(compute.calls.length).toBeLessThanOrEqual(bound);
    },
  );

  it('answers names it knows without a call', async () => {
    const compute = memoryCompute();
    const { scaler, release } = scalerWith(compute.api, 10);
    const first = scaler.request('vm-1');
    await release();
    expect(await first).toEqual({ result: 'created', mig: M0 });
    const again = scaler.request('vm-1');
    await release();
    expect(await again).toEqual({ result: 'exists', mig: M0 });
    expect(compute.calls).toHaveLength(1);
  });

  it('passes a batch the first MIG has no capacity for to the next, and prefers the next from then on', async () => {
    const compute = memoryCompute((mig) =>
      mig === M0 ? new ComputeError('no-capacity', 403, 'quota', 'QUOTA_EXCEEDED') : undefined,
    );
    const { scaler, release } = scalerWith(compute.api, 10);
    const batch = Promise.all(['vm-1', 'vm-2'].map((n) => scaler.request(n)));
    await release();
    expect(await batch).toEqual([
      { result: 'created', mig: M1 },
      { result: 'created', mig: M1 },
    ]);
    const next = scaler.request('vm-3');
    await release();
    expect(await next).toEqual({ result: 'created', mig: M1 });
    expect(compute.calls.map((c) => c.mig)).toEqual([M0, M1, M1]);
    expect(scaler.view()[0]?.shortage).toBe('QUOTA_EXCEEDED');
  });

  it('does not send a batch elsewhere when Compute may have carried it out', async () => {
    const compute = memoryCompute((mig) =>
      mig === M0 ? new ComputeError('unavailable', 0, 'no answer') : undefined,
    );
    const { scaler, release } = scalerWith(compute.api, 10);
    const outcome = scaler.request('vm-1');
    await release();
    expect(await outcome).toEqual({ result: 'failed', reason: `${M0}: no answer` });
    expect(compute.calls.map((c) => c.mig)).toEqual([M0]);
  });

  it('starts at the MIG it is told to (a member moved out of a stocked-out MIG)', async () => {
    const compute = memoryCompute();
    const { scaler, release } = scalerWith(compute.api, 10);
    const outcome = scaler.request('vm-1-2', 1);
    await release();
    expect(await outcome).toEqual({ result: 'created', mig: M1 });
  });

  it('never takes a pool over maxRunners, whatever arrives in whatever waves, with VMs leaving in between', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.record({ jobs: fc.integer({ min: 0, max: 8 }), leave: fc.integer({ min: 0, max: 3 }) }), {
          minLength: 1,
          maxLength: 6,
        }),
        async (max, waves) => {
          const compute = memoryCompute();
          const { scaler, release } = scalerWith(compute.api, max);
          let next = 0;
          let created = 0;
          let left = 0;
          for (const wave of waves) {
            const outcomes: Array<Promise<CreateOutcome>> = [];
            for (let i = 0; i < wave.jobs; i += 1) outcomes.push(scaler.request(`vm-${(next += 1)}`));
            await release();
            const results = await Promise.all(outcomes);
            created += results.filter((r) => r.result === 'created').length;
            expect(results.every((r) => r.result === 'created' || r.result === 'at-capacity')).toBe(true);
            expect(compute.total()).toBeLessThanOrEqual(max);
            // Some VMs finish their job and delete themselves (through the deleter, not the scaler).
            for (const mig of compute.migs.values()) {
              for (const name of [...mig.names].slice(0, wave.leave)) {
                mig.names.delete(name);
                mig.targetSize -= 1;
                left += 1;
              }
            }
          }
          expect(compute.total()).toBe(created - left);
        },
      ),
      { numRuns: 50 },
    );
  });
});
