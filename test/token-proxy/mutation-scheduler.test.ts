import { HttpError } from '#shared';
import { CallerGoneError, createMutationScheduler } from '#token-proxy';
import type { MutationCaller, MutationScheduler } from '#token-proxy';

const caller = (account: string, lane: string): MutationCaller => ({ account, lane });

/** A scheduler whose one slot is taken until `release()`, so that requests queue deterministically. */
async function blocked(options: Partial<Parameters<typeof createMutationScheduler>[0]> = {}) {
  const scheduler = createMutationScheduler({
    intervalMs: 0,
    maxQueued: 100,
    maxQueuedPerCaller: 10,
    ...options,
  });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await new Promise<void>((started) => {
    scheduler
      .schedule(caller('blocker', 'blocker'), undefined, () => {
        started();
        return gate;
      })
      .catch(() => {});
  });
  return { scheduler, release };
}

/** Queues one request per name, each recording its name in `order` when it runs. */
function queue(scheduler: MutationScheduler, order: string[], who: MutationCaller, ...names: string[]) {
  return names.map((name) =>
    scheduler.schedule(who, undefined, async () => {
      order.push(name);
      return name;
    }),
  );
}

describe('mutation scheduler', () => {
  it('serves callers round-robin, not first come first served', async () => {
    const { scheduler, release } = await blocked();
    const order: string[] = [];
    const flood = queue(scheduler, order, caller('presubmit@p', 'instance:1'), 'a1', 'a2', 'a3', 'a4', 'a5');
    const late = queue(scheduler, order, caller('postsubmit@p', 'instance:2'), 'b1');
    expect(scheduler.stats().queued).toBe(6);
    release();
    await Promise.all([...flood, ...late]);
    expect(order).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
  });

  it("shares an account's turns among its instances, and accounts' turns among accounts", async () => {
    const { scheduler, release } = await blocked();
    const order: string[] = [];
    const jobs = [
      ...queue(scheduler, order, caller('x@p', 'instance:a'), 'a1', 'a2', 'a3'),
      ...queue(scheduler, order, caller('x@p', 'instance:b'), 'b1'),
      ...queue(scheduler, order, caller('y@p', 'instance:c'), 'c1'),
    ];
    expect(scheduler.stats().byAccount).toEqual({
      'x@p': { 'instance:a': 3, 'instance:b': 1 },
      'y@p': { 'instance:c': 1 },
    });
    release();
    await Promise.all(jobs);
    expect(order).toEqual(['a1', 'c1', 'b1', 'a2', 'a3']);
  });

  it('runs one request at a time, and a failed one does not stop the others', async () => {
    const scheduler = createMutationScheduler({ intervalMs: 0, maxQueued: 100, maxQueuedPerCaller: 100 });
    let running = 0;
    let most = 0;
    const jobs = Array.from({ length: 20 }, (_, i) =>
      scheduler.schedule(caller(`sa${i % 3}`, `instance:${i % 5}`), undefined, async () => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setImmediate(resolve));
        running -= 1;
        if (i === 3) throw new Error('GitHub failed');
        return i;
      }),
    );
    const results = await Promise.allSettled(jobs);
    expect(most).toBe(1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(scheduler.stats()).toMatchObject({ queued: 0, byAccount: {} });
  });

  it("refuses a caller's request beyond its own queue with 429 and Retry-After; others still queue", async () => {
    const { scheduler, release } = await blocked({ maxQueuedPerCaller: 2 });
    const order: string[] = [];
    const vm = caller('presubmit@p', 'instance:1');
    const queued = queue(scheduler, order, vm, 'a1', 'a2');
    const refused = scheduler.schedule(vm, undefined, async () => order.push('a3'));
    await expect(refused).rejects.toMatchObject({
      status: 429,
      message: 'this caller already has 2 GitHub changes waiting; retry later',
      headers: { 'Retry-After': expect.stringMatching(/^[1-9]\d*$/) },
    });
    const other = queue(scheduler, order, caller('presubmit@p', 'instance:2'), 'b1');
    release();
    await Promise.all([...queued, ...other]);
    expect(order).toEqual(['a1', 'b1', 'a2']);
  });

  it('refuses any request beyond the total queue with 429 and Retry-After', async () => {
    const { scheduler, release } = await blocked({ maxQueued: 3 });
    const order: string[] = [];
    const queued = [1, 2, 3].flatMap((i) => queue(scheduler, order, caller('sa', `instance:${i}`), `v${i}`));
    const refused = scheduler.schedule(caller('other', 'instance:9'), undefined, async () => 'v9');
    await expect(refused).rejects.toBeInstanceOf(HttpError);
    await expect(refused).rejects.toMatchObject({
      status: 429,
      message: 'the token proxy has 3 GitHub changes waiting; retry later',
      headers: { 'Retry-After': expect.stringMatching(/^[1-9]\d*$/) },
    });
    release();
    await Promise.all(queued);
    expect(order).toEqual(['v1', 'v2', 'v3']);
  });

  it('queues no more than reach their turn within the wait at the write spacing', async () => {
    // As deployed for three proxy instances: writes 1500 ms apart and a 30 s deadline leave 19 places
    // (one turn kept for the call), not the 80 of MUTATION_QUEUE_LIMIT.
    const { scheduler, release } = await blocked({ intervalMs: 1500, maxWaitMs: 30_000, maxQueued: 80 });
    const leave = new AbortController();
    const waiting = Array.from({ length: 19 }, (_, i) =>
      scheduler.schedule(caller('sa', `instance:${i}`), leave.signal, async () => i),
    );
    const refused = scheduler.schedule(caller('sa', 'instance:19'), undefined, async () => 19);
    await expect(refused).rejects.toMatchObject({
      status: 429,
      message: 'the token proxy has 19 GitHub changes waiting; retry later',
      // About when the queue has room again: 20 turns of 1.5 s.
      headers: { 'Retry-After': '30' },
    });
    // Not waited out here: the waiting callers leave, and nothing of theirs runs.
    leave.abort();
    await Promise.all(waiting.map((job) => expect(job).rejects.toBeInstanceOf(CallerGoneError)));
    release();
  });

  it('takes a turn to be as long as the GitHub call when calls outlast the spacing', async () => {
    const scheduler = createMutationScheduler({
      intervalMs: 0,
      maxQueued: 100,
      maxQueuedPerCaller: 10,
      maxWaitMs: 1000,
    });
    // One call of at least 300 ms: at most 1000 / 300 - 1 = 2 may then wait (fewer if it took longer).
    await scheduler.schedule(caller('sa', 'slow'), undefined, () => new Promise((r) => setTimeout(r, 300)));
    // The caller hears first; the scheduler notes how long the call took right after.
    await new Promise((resolve) => setImmediate(resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const blocker = scheduler.schedule(caller('sa', 'blocker'), undefined, () => gate);
    const outcomes = [1, 2, 3].map((i) =>
      scheduler
        .schedule(caller('sa', `instance:${i}`), undefined, async () => 'ran')
        .catch((e: unknown) => e),
    );
    release();
    await blocker;
    const [first, ...rest] = await Promise.all(outcomes);
    expect(first).toBe('ran');
    const refusals = rest.filter((outcome) => outcome !== 'ran');
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    for (const refusal of refusals) expect(refusal).toMatchObject({ status: 429 });
  });

  it('drops a request whose caller went away while it waited: its work never runs', async () => {
    const { scheduler, release } = await blocked();
    const gone = new AbortController();
    let ran = false;
    const dropped = scheduler.schedule(caller('presubmit@p', 'instance:1'), gone.signal, async () => {
      ran = true;
    });
    const order: string[] = [];
    const kept = queue(scheduler, order, caller('postsubmit@p', 'instance:2'), 'b1');
    expect(scheduler.stats().queued).toBe(2);
    gone.abort();
    await expect(dropped).rejects.toBeInstanceOf(CallerGoneError);
    // Gone from the queue at once, so it no longer counts against any limit.
    expect(scheduler.stats().queued).toBe(1);
    release();
    await Promise.all(kept);
    expect(ran).toBe(false);
    expect(order).toEqual(['b1']);
  });

  it("rejects a dropped request with its signal's HttpError reason (the deadline's 504)", async () => {
    const { scheduler, release } = await blocked();
    const deadline = new AbortController();
    const dropped = scheduler.schedule(caller('sa', 'instance:1'), deadline.signal, async () => 'sent');
    deadline.abort(new HttpError(504, 'GitHub did not answer within 30 s'));
    await expect(dropped).rejects.toMatchObject({
      status: 504,
      message: 'GitHub did not answer within 30 s',
    });
    release();
  });

  it('refuses at once a request whose caller has already gone', async () => {
    const scheduler = createMutationScheduler({ intervalMs: 0, maxQueued: 1, maxQueuedPerCaller: 1 });
    let ran = false;
    const result = scheduler.schedule(caller('sa', 'instance:1'), AbortSignal.abort(), async () => {
      ran = true;
    });
    await expect(result).rejects.toBeInstanceOf(CallerGoneError);
    expect(ran).toBe(false);
    expect(scheduler.stats().queued).toBe(0);
  });
});
