import { parsePoolConfig, planReaping } from '#autoscaler';
import type { FleetRow, Pool, RowState } from '#autoscaler';

const POOL: Pool = parsePoolConfig(
  JSON.stringify({
    pools: [
      {
        name: 'cpu',
        scopes: ['my-org'],
        labels: ['self-hosted', 'cpu'],
        migs: ['projects/p/regions/us-central1/instanceGroupManagers/gh-cpu'],
        runnerScope: 'my-org',
        maxRunners: 100,
        instanceNamePrefix: 'gh-cpu',
        bootTimeoutSeconds: 600,
        idleTimeoutSeconds: 300,
      },
    ],
  }),
)[0]!;

const NOW = 10_000_000;
let next = 0;

/** A VM row in state `state`, with the clocks that state implies; `fields` override. */
function row(state: RowState, fields: Partial<FleetRow> = {}): FleetRow {
  next += 1;
  const name = `gh-cpu-${next}`;
  const runner =
    state === 'booting' || state === 'unregistered' || state === 'creating'
      ? null
      : {
          id: next,
          name,
          status: state === 'lost' || state === 'runner-left' ? 'offline' : 'online',
          busy: state === 'busy',
          labels: [],
          version: '2.330.0',
        };
  const vm = state !== 'runner-left';
  return {
    state,
    mig: 'projects/p/regions/us-central1/instanceGroupManagers/gh-cpu',
    migIndex: vm ? 0 : null,
    instance: name,
    instanceId: String(1_000_000_000_000_000_000n + BigInt(next)),
    zone: 'us-central1-a',
    currentAction: vm ? 'NONE' : null,
    instanceStatus: vm ? 'RUNNING' : null,
    keep: vm ? false : null,
    runner,
    extraRunners: [],
    firstSeenAt: 0,
    noRunnerSince: state === 'unregistered' ? NOW - 700_000 : null,
    noRunnerRuns: state === 'unregistered' ? 3 : 0,
    idleSince: state === 'idle' ? NOW - 400_000 : null,
    busyWhenLastOnline: state === 'lost',
    offlineRuns: state === 'lost' ? 2 : 0,
    vmGoneSince: state === 'runner-left' ? NOW : null,
    ...fields,
  };
}

const plan = (rows: FleetRow[], options: { queued?: number; minIdle?: number; percent?: number } = {}) =>
  planReaping({
    pool: POOL,
    rows,
    now: NOW,
    queued: options.queued ?? 0,
    minIdle: options.minIdle ?? 0,
    maxDeletePercent: options.percent ?? 100,
  });

const acted = (result: ReturnType<typeof plan>) =>
  result.actions.map((a) => [a.row.instance, a.kind, a.action]);

describe('planReaping', () => {
  it('acts on each row of the table, lost VMs first, and leaves busy, booting and creating ones', () => {
    const rows = [
      row('busy'),
      row('booting'),
      row('creating', { instanceId: null }),
      row('deleting'),
      row('idle'),
      row('unregistered'),
      row('unregistered', {
        runner: { id: 99, name: 'jit', status: 'offline', busy: false, labels: [], version: null },
      }),
      row('lost'),
      row('runner-left'),
      row('runner-without-vm', { migIndex: null }),
    ];
    const [, , , , idle, bare, withRunner, lost, left] = rows;
    expect(acted(plan(rows))).toEqual([
      [lost!.instance, 'lost', 'delete-vm'],
      [bare!.instance, 'unregistered', 'delete-vm'],
      [withRunner!.instance, 'unregistered', 'delete-runner-then-vm'],
      [idle!.instance, 'idle', 'delete-runner-then-vm'],
      [left!.instance, 'runner-left', 'delete-runner'],
    ]);
    expect(plan(rows).actions.map((a) => a.reason)).toEqual([
      expect.stringMatching(/offline on 2 runs in a row after it was busy/),
      'no runner registered for 700 s (bootTimeoutSeconds 600), on 3 runs in a row',
      'runner jit not online for 700 s (bootTimeoutSeconds 600), on 3 runs in a row',
      expect.stringMatching(/idle for 400 s \(idleTimeoutSeconds 300\), no job queued/),
      expect.stringMatching(/is offline and its VM .* is no longer in the pool's MIGs/),
    ]);
  });

  it('waits for a second offline run before calling a VM dead', () => {
    expect(acted(plan([row('lost', { offlineRuns: 1 })]))).toEqual([]);
  });

  it('removes no idle runner while a job for the pool is queued, nor before the idle timeout', () => {
    expect(acted(plan([row('idle')], { queued: 1 }))).toEqual([]);
    expect(acted(plan([row('idle', { idleSince: NOW - 299_000 })]))).toEqual([]);
  });

  it('keeps minIdle idle runners (kept VMs count), removing the longest idle first', () => {
    const rows = [
      row('idle', { idleSince: NOW - 400_000 }),
      row('idle', { idleSince: NOW - 900_000 }),
      row('idle', { idleSince: NOW - 600_000 }),
      row('idle', { idleSince: NOW - 1_000_000, keep: true }),
    ];
    const result = plan(rows, { minIdle: 2 });
    expect(acted(result)).toEqual([
      [rows[1]!.instance, 'idle', 'delete-runner-then-vm'],
      [rows[2]!.instance, 'idle', 'delete-runner-then-vm'],
    ]);
    expect(result.held.map((h) => [h.row.instance, h.held])).toEqual([[rows[3]!.instance, 'kept']]);
  });

  it('never touches a VM labelled to be kept, and no VM while the labels are unknown', () => {
    const kept = plan([row('unregistered', { keep: true }), row('lost', { keep: true })]);
    expect(kept.actions).toEqual([]);
    expect(kept.held.map((h) => h.held)).toEqual(['kept', 'kept']);

    const unknown = plan([row('unregistered', { keep: null }), row('runner-left')]);
    expect(unknown.actions.map((a) => a.kind)).toEqual(['runner-left']);
    expect(unknown.held.map((h) => [h.kind, h.held])).toEqual([['unregistered', 'keep-unknown']]);
  });

  it.each([
    [25, 10, 2],
    [25, 3, 1],
    [50, 8, 4],
    [100, 8, 8],
  ])('deletes at most %i %% of the pool VMs per run (%i VMs: %i)', (percent, count, allowed) => {
    const rows = Array.from({ length: count }, () => row('unregistered'));
    const result = plan([...rows, row('runner-left')], { percent });
    expect(result.actions.filter((a) => a.kind === 'unregistered')).toHaveLength(allowed);
    expect(result.held.filter((h) => h.held === 'share')).toHaveLength(count - allowed);
    // Runners of vanished VMs are no VMs: never held back.
    expect(result.actions.filter((a) => a.kind === 'runner-left')).toHaveLength(1);
  });
});
