import { createFleetMemory, instanceIdOfLabels, joinFleet, parsePoolConfig } from '#autoscaler';
import type { FleetMemory, MigMember, Pool, RunnerInfo } from '#autoscaler';

const POOL: Pool = parsePoolConfig(
  JSON.stringify({
    pools: [
      {
        name: 'gpu',
        scopes: ['my-org'],
        labels: ['self-hosted', 'gpu'],
        migs: [
          'projects/p/zones/us-central1-a/instanceGroupManagers/gh-gpu-a',
          'projects/p/zones/us-central1-b/instanceGroupManagers/gh-gpu-b',
        ],
        runnerScope: 'my-org',
        maxRunners: 10,
        instanceNamePrefix: 'gh-gpu',
        bootTimeoutSeconds: 600,
      },
    ],
  }),
)[0]!;

const ID_A = '1234567890123456789';
const ID_B = '2234567890123456789';
const ID_OTHER = '9234567890123456789';

const member = (name: string, id: string, fields: Partial<MigMember> = {}): MigMember => ({
  name,
  id,
  zone: 'us-central1-a',
  currentAction: 'NONE',
  instanceStatus: id === '' ? '' : 'RUNNING',
  lastAttemptErrors: [],
  ...fields,
});

let nextRunnerId = 1;
const runner = (name: string, id: string | undefined, fields: Partial<RunnerInfo> = {}): RunnerInfo => ({
  id: nextRunnerId++,
  name,
  status: 'online',
  busy: false,
  labels: ['self-hosted', 'gpu', ...(id === undefined ? [] : [`gce-instance-id-${id}`])],
  version: '2.330.0',
  ...fields,
});

describe('instanceIdOfLabels', () => {
  it.each([
    [['self-hosted', `gce-instance-id-${ID_A}`], ID_A],
    [[`GCE-Instance-ID-${ID_A}`], ID_A],
    [[`gce-instance-id-${ID_A}`, `gce-instance-id-${ID_A}`], ID_A],
    [['self-hosted', 'gpu'], undefined],
    [[`gce-instance-id-${ID_A}`, `gce-instance-id-${ID_B}`], undefined],
    [['gce-instance-id-12ab'], undefined],
    [['gce-instance-id-'], undefined],
    [[`x-gce-instance-id-${ID_A}`], undefined],
  ])('reads %j as %s', (labels, id) => {
    expect(instanceIdOfLabels(labels)).toBe(id);
  });
});

describe('joinFleet', () => {
  let memory: FleetMemory;
  beforeEach(() => {
    memory = createFleetMemory();
  });
  const join = (
    members: MigMember[][],
    runners: RunnerInfo[],
    now: number,
    keptIds: ReadonlySet<string> | undefined = new Set(),
  ) => joinFleet({ pool: POOL, members, runners, keptIds, memory, now });

  it('joins on the instance-id label, not the name: a runner of the same name for another VM is not this one', () => {
    const rows = join(
      [[member('gh-gpu-1', ID_A)], [member('gh-gpu-2', ID_B, { zone: 'us-central1-b' })]],
      [
        // Another project's VM of the same name: same name, another id.
        runner('gh-gpu-1', ID_OTHER),
        // Registered some other way (no label): never joined.
        runner('gh-gpu-2', undefined),
        runner('renamed-runner', ID_B, { busy: true }),
      ],
      0,
    );
    expect(rows.map((r) => [r.instance, r.state, r.runner?.name ?? null])).toEqual([
      ['gh-gpu-1', 'booting', null],
      ['gh-gpu-2', 'busy', 'renamed-runner'],
    ]);
    expect(rows[1]).toMatchObject({
      mig: 'projects/p/zones/us-central1-b/instanceGroupManagers/gh-gpu-b',
      migIndex: 1,
      instanceId: ID_B,
      keep: false,
    });
  });

  it("carries each runner's reported version (null before it connected) into its row", () => {
    const rows = join(
      [[member('gh-gpu-1', ID_A), member('gh-gpu-2', ID_B, { zone: 'us-central1-b' })]],
      [
        runner('gh-gpu-1', ID_A, { version: '2.331.0' }),
        runner('gh-gpu-2', ID_B, { status: 'offline', version: null }),
      ],
      0,
    );
    expect(rows.map((row) => [row.instance, row.state, row.runner?.version])).toEqual([
      ['gh-gpu-1', 'idle', '2.331.0'],
      ['gh-gpu-2', 'booting', null],
    ]);
  });

  it('moves the clocks on by one run each time, and a restart (new memory) starts them anew', () => {
    const vm = [[member('gh-gpu-1', ID_A)], []];
    expect(join(vm, [], 0)[0]).toMatchObject({ state: 'booting', noRunnerSince: 0, noRunnerRuns: 1 });
    expect(join(vm, [], 599_000)[0]).toMatchObject({ state: 'booting', noRunnerRuns: 2 });
    expect(join(vm, [], 600_000)[0]).toMatchObject({
      state: 'unregistered',
      noRunnerSince: 0,
      noRunnerRuns: 3,
      firstSeenAt: 0,
    });

    memory = createFleetMemory();
    expect(join(vm, [], 900_000)[0]).toMatchObject({
      state: 'booting',
      noRunnerSince: 900_000,
      noRunnerRuns: 1,
      firstSeenAt: 900_000,
    });
  });

  it('counts a JIT runner that never came online (or went offline idle) as no connected runner', () => {
    const vm = [[member('gh-gpu-1', ID_A)], []];
    const offline = runner('gh-gpu-1', ID_A, { status: 'offline' });
    expect(join(vm, [offline], 0)[0]).toMatchObject({ state: 'booting', runner: { id: offline.id } });
    expect(join(vm, [offline], 600_000)[0]!.state).toBe('unregistered');
    // Once online the clock stops; idle from then on.
    const online = { ...offline, status: 'online' };
    expect(join(vm, [online], 610_000)[0]).toMatchObject({
      state: 'idle',
      noRunnerSince: null,
      idleSince: 610_000,
    });
    expect(join(vm, [online], 700_000)[0]).toMatchObject({ state: 'idle', idleSince: 610_000 });
  });

  it('calls a runner lost when it goes offline after it was busy, counting the runs', () => {
    const vm = [[member('gh-gpu-1', ID_A)], []];
    const busy = runner('gh-gpu-1', ID_A, { busy: true });
    expect(join(vm, [busy], 0)[0]).toMatchObject({ state: 'busy', busyWhenLastOnline: true });
    // GitHub may or may not clear busy on an offline runner: lost either way.
    expect(join(vm, [{ ...busy, status: 'offline' }], 60_000)[0]).toMatchObject({
      state: 'lost',
      offlineRuns: 1,
    });
    expect(join(vm, [{ ...busy, status: 'offline', busy: false }], 120_000)[0]).toMatchObject({
      state: 'lost',
      offlineRuns: 2,
    });
    // Back online (a network blip): busy again, the count starts over.
    expect(join(vm, [busy], 180_000)[0]).toMatchObject({ state: 'busy', offlineRuns: 0 });
  });

  it('lists runners left by VMs this pool had, and no other runner', () => {
    join([[member('gh-gpu-1', ID_A), member('gh-gpu-2', ID_B)], []], [], 0);
    const rows = join(
      [[], []],
      [
        runner('gh-gpu-1', ID_A, { status: 'offline' }),
        runner('gh-gpu-2', ID_B, { status: 'online' }),
        runner('gh-gpu-9', ID_OTHER, { status: 'offline' }), // never this pool's
      ],
      60_000,
    );
    expect(rows.map((r) => [r.state, r.runner!.name, r.instance, r.vmGoneSince])).toEqual([
      ['runner-left', 'gh-gpu-1', 'gh-gpu-1', 60_000],
      ['runner-without-vm', 'gh-gpu-2', 'gh-gpu-2', 60_000],
    ]);
  });

  it('knows a runner left by a VM it created that vanished before any listing showed its id', () => {
    const rows = joinFleet({
      pool: POOL,
      members: [[], []],
      runners: [
        runner('gh-gpu-7', ID_A, { status: 'offline' }),
        // Not a name this process created: another fleet's, even with the pool's prefix.
        runner('gh-gpu-8', ID_B, { status: 'offline' }),
      ],
      keptIds: new Set(),
      memory,
      now: 5,
      isVanishedVm: (name) => name === 'gh-gpu-7',
    });
    expect(rows.map((r) => [r.state, r.instance, r.instanceId, r.mig, r.vmGoneSince])).toEqual([
      ['runner-left', 'gh-gpu-7', ID_A, null, 5],
    ]);
    // Remembered from then on, by its id.
    expect(join([[], []], [runner('gh-gpu-7', ID_A, { status: 'offline' })], 9)[0]).toMatchObject({
      state: 'runner-left',
      vmGoneSince: 5,
    });
  });

  it('shows members being created or deleted, and the keep label (null while unknown)', () => {
    const rows = join(
      [
        [
          member('gh-gpu-1', ''),
          member('gh-gpu-2', ID_A, { currentAction: 'DELETING' }),
          member('gh-gpu-3', ID_B),
        ],
        [],
      ],
      [],
      0,
      new Set([ID_B]),
    );
    expect(rows.map((r) => [r.instance, r.state, r.keep])).toEqual([
      ['gh-gpu-1', 'creating', null],
      ['gh-gpu-2', 'deleting', false],
      ['gh-gpu-3', 'booting', true],
    ]);
    const unknown = joinFleet({
      pool: POOL,
      members: [[member('gh-gpu-3', ID_B)], []],
      runners: [],
      keptIds: undefined,
      memory,
      now: 1,
    });
    expect(unknown[0]!.keep).toBeNull();
  });

  it('takes the busiest, newest runner of a VM that registered twice, and lists the other', () => {
    const old = runner('gh-gpu-1', ID_A, { status: 'offline' });
    const current = runner('gh-gpu-1-again', ID_A, { busy: true });
    const [row] = join([[member('gh-gpu-1', ID_A)], []], [old, current], 0);
    expect(row).toMatchObject({ state: 'busy', runner: { id: current.id }, extraRunners: [{ id: old.id }] });
  });
});
