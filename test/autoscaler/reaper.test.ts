import { isWarmInstanceName } from '#autoscaler';
import type { ReaperDecision } from '#autoscaler';
import type { FakeInstance, FakeMig } from '#fakes/compute-api';
import {
  buildAutoscaler,
  jobId,
  poolsWith,
  PROJECT,
  registerRunner,
  startAutoscalerFakes,
  vmDeletesItself,
  workflowJob,
} from './harness.js';
import type { Autoscaler, AutoscalerFakes } from './harness.js';

const GPU = ['self-hosted', 'linux', 'x64', 'gpu'];
const CPU = ['self-hosted', 'linux', 'x64', 'cpu'];
const ORG = { kind: 'org', org: 'my-org' } as const;
const MINUTE = 60_000;

describe('the reaper, in POST /reconcile, against the fakes', () => {
  let fakes: AutoscalerFakes;
  /** The autoscaler's clock (ms since the test began); the fakes keep real time. */
  let clock = 0;

  beforeEach(async () => {
    fakes = await startAutoscalerFakes();
    clock = 0;
  });
  afterEach(() => fakes.close());

  /** The autoscaler's clock: `clock` ms after the test began, whatever time the test itself takes. */
  function start(env: Record<string, string> = {}): Autoscaler {
    const began = Date.now();
    return buildAutoscaler(fakes, { env, overrides: { now: () => began + clock } });
  }

  /** One reconciliation at `at` ms on the autoscaler's clock; it must report no problem. */
  async function reconcileAt(autoscaler: Autoscaler, at: number) {
    clock = at;
    const response = await autoscaler.reconcile();
    expect(response.body.problems).toEqual([]);
    expect(response.status).toBe(200);
    return response.body as {
      pools: Record<
        string,
        {
          reaped: ReaperDecision[];
          rows: Record<string, number> | null;
          warmRequested: Array<{ instance: string; outcome: string }>;
          minIdle: number;
        }
      >;
      joinCalls: { runnerLists: number; keepLists: number };
    };
  }

  const decisions = (body: Awaited<ReturnType<typeof reconcileAt>>, pool = 'linux-gpu') =>
    body.pools[pool]!.reaped.map((d) => [d.kind, d.outcome, d.instance]);

  /** A VM already running in `mig` (zone `us-central1-a`), as if it had booted long ago. */
  function vm(name: string, mig: FakeMig = fakes.migs.gpuA, labels?: Record<string, string>): FakeInstance {
    return fakes.compute.addInstance({
      project: PROJECT.projectId,
      zone: mig.scope === 'zones' ? mig.location : 'us-central1-a',
      name,
      mig,
      ...(labels && { labels }),
    });
  }

  const deleteCalls = () =>
    fakes.compute.controls
      .callsTo('POST', /\/deleteInstances$/)
      .flatMap((call) => (call.body as { instances: string[] }).instances);
  const isMember = (name: string, mig: FakeMig = fakes.migs.gpuA) =>
    mig.members.has(name) && mig.members.get(name)!.currentAction !== 'DELETING';

  describe('a VM whose runner never registers', () => {
    it('is deleted once bootTimeoutSeconds have passed since it was first seen, on a second run', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      expect(decisions(await reconcileAt(autoscaler, 0))).toEqual([]);
      const early = await reconcileAt(autoscaler, 599_000);
      expect(early.pools['linux-gpu']!.rows).toEqual({ booting: 1 });
      expect(deleteCalls()).toEqual([]);

      const due = await reconcileAt(autoscaler, 601_000);
      expect(decisions(due)).toEqual([['unregistered', 'deleted', 'gh-gpu-1']]);
      expect(due.pools['linux-gpu']!.reaped[0]).toMatchObject({
        action: 'delete-vm',
        reason: 'no runner registered for 601 s (bootTimeoutSeconds 600), on 3 runs in a row',
        mig: 'projects/runners-prod/zones/us-central1-a/instanceGroupManagers/gh-gpu-a',
      });
      expect(deleteCalls()).toEqual(['zones/us-central1-a/instances/gh-gpu-1']);
      expect(isMember('gh-gpu-1')).toBe(false);
      // One structured line per action, with its reason.
      expect(autoscaler.logs.lines().filter((l) => l.message === 'reaper decision')).toEqual([
        expect.objectContaining({
          pool: 'linux-gpu',
          kind: 'unregistered',
          outcome: 'deleted',
          instance: 'gh-gpu-1',
          reason: expect.stringContaining('no runner registered'),
        }),
      ]);
    });

    it('deletes the offline JIT runner of a VM that never came online first, then the VM', async () => {
      const autoscaler = start({ POOLS: poolsWith({ 'linux-gpu': { bootTimeoutSeconds: 120 } }) });
      vm('gh-gpu-1');
      const runner = registerRunner(fakes, 'gh-gpu-1', GPU, { status: 'offline' });
      await reconcileAt(autoscaler, 0);
      const due = await reconcileAt(autoscaler, 121_000);
      expect(decisions(due)).toEqual([['unregistered', 'deleted', 'gh-gpu-1']]);
      expect(fakes.github.listRunners(ORG).map((r) => r.id)).not.toContain(runner.id);
      expect(isMember('gh-gpu-1')).toBe(false);
    });

    it('survives when its runner registers between the list and the delete (asked again by name)', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      await reconcileAt(autoscaler, 0);
      await reconcileAt(autoscaler, 300_000);
      // The first runner-list call of the run is the join's; the second, by name, finds the new runner.
      fakes.github.controls.addFault({ method: 'GET', path: '/orgs/my-org/actions/runners', times: 1 });
      fakes.github.controls.addFault({
        method: 'GET',
        path: '/orgs/my-org/actions/runners',
        times: 1,
        before: () => registerRunner(fakes, 'gh-gpu-1', GPU),
      });
      const due = await reconcileAt(autoscaler, 601_000);
      expect(due.pools['linux-gpu']!.reaped).toEqual([
        expect.objectContaining({
          kind: 'unregistered',
          outcome: 'skipped',
          detail: 'a runner registered since the list',
        }),
      ]);
      expect(deleteCalls()).toEqual([]);
      expect(isMember('gh-gpu-1')).toBe(true);
    });

    it('is deleted when the runner found by its name belongs to another VM of that name', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      // Same name, another VM's instance-id label (another zone or project): not this VM's runner.
      fakes.github.addRunner(ORG, {
        name: 'gh-gpu-1',
        labels: [...GPU, 'gce-instance-id-1234567890123456789'],
        ephemeral: true,
      });
      await reconcileAt(autoscaler, 0);
      await reconcileAt(autoscaler, 300_000);
      const due = await reconcileAt(autoscaler, 601_000);
      expect(decisions(due)).toEqual([['unregistered', 'deleted', 'gh-gpu-1']]);
    });

    it('after a restart, waits out its clocks again: a restart only delays a reaping', async () => {
      const before = start();
      vm('gh-gpu-1');
      await reconcileAt(before, 0);
      await reconcileAt(before, 500_000);

      const after = start(); // a new process: its memory is empty
      expect(decisions(await reconcileAt(after, 700_000))).toEqual([]);
      expect(decisions(await reconcileAt(after, 1_200_000))).toEqual([]);
      expect(decisions(await reconcileAt(after, 1_301_000))).toEqual([
        ['unregistered', 'deleted', 'gh-gpu-1'],
      ]);
    });
  });

  describe('a VM whose runner is idle', () => {
    it('has its runner re-read and deleted at GitHub first, and the VM only then', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      const runner = registerRunner(fakes, 'gh-gpu-1', GPU);
      await reconcileAt(autoscaler, 0);
      expect(decisions(await reconcileAt(autoscaler, 299_000))).toEqual([]);

      fakes.github.controls.calls.length = 0;
      const due = await reconcileAt(autoscaler, 301_000);
      expect(decisions(due)).toEqual([['idle', 'deleted', 'gh-gpu-1']]);
      expect(due.pools['linux-gpu']!.reaped[0]).toMatchObject({
        action: 'delete-runner-then-vm',
        runnerId: runner.id,
        reason: expect.stringMatching(/idle for 301 s \(idleTimeoutSeconds 300\), no job queued/),
      });
      const runnerCalls = fakes.github.controls.calls
        .filter((c) => c.path.startsWith(`/orgs/my-org/actions/runners/${runner.id}`))
        .map((c) => c.method);
      expect(runnerCalls).toEqual(['GET', 'DELETE']);
      const deletedRunnerAt = fakes.github.controls.callsTo('DELETE', /\/actions\/runners\//)[0]!.time;
      const deletedVmAt = fakes.compute.controls.callsTo('POST', /\/deleteInstances$/)[0]!.time;
      expect(deletedVmAt).toBeGreaterThanOrEqual(deletedRunnerAt);
      expect(isMember('gh-gpu-1')).toBe(false);
    });

    it('is left alone while a job for the pool is queued', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      // A runner of the pool registered with fewer labels than a queued job needs: the job waits.
      registerRunner(fakes, 'gh-gpu-1', ['self-hosted', 'gpu']);
      const job = fakes.github.queueJob({ repository: 'my-org/app', labels: GPU });
      const delivered = await autoscaler.deliver(
        workflowJob({ id: job.id, labels: GPU, installationId: fakes.installationId }),
      );
      expect(delivered.body.outcome).toBe('created');
      await reconcileAt(autoscaler, 0);
      const later = await reconcileAt(autoscaler, 10 * MINUTE);
      expect(decisions(later)).toEqual([]);
      expect(isMember('gh-gpu-1')).toBe(true);
    });

    it('survives when GitHub hands its runner a job between the list and the re-read', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      const runner = registerRunner(fakes, 'gh-gpu-1', GPU);
      await reconcileAt(autoscaler, 0);
      let job: { id: number } | undefined;
      fakes.github.controls.addFault({
        method: 'GET',
        path: `/orgs/my-org/actions/runners/${runner.id}`,
        times: 1,
        before: () => {
          job = fakes.github.queueJob({ repository: 'my-org/app', labels: GPU });
        },
      });
      const due = await reconcileAt(autoscaler, 301_000);
      expect(due.pools['linux-gpu']!.reaped).toEqual([
        expect.objectContaining({
          kind: 'idle',
          outcome: 'skipped',
          detail: 'the runner took a job since the list',
        }),
      ]);
      expect(fakes.github.controls.callsTo('DELETE', /\/actions\/runners\//)).toEqual([]);
      expect(deleteCalls()).toEqual([]);
      expect(fakes.github.getJob(job!.id)).toMatchObject({ status: 'in_progress', runner_id: runner.id });
      expect(isMember('gh-gpu-1')).toBe(true);
    });

    it('survives, runner and VM, when the job starts between the re-read and the delete (GitHub 422)', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      const runner = registerRunner(fakes, 'gh-gpu-1', GPU);
      await reconcileAt(autoscaler, 0);
      let job: { id: number } | undefined;
      fakes.github.controls.addFault({
        method: 'DELETE',
        path: `/orgs/my-org/actions/runners/${runner.id}`,
        times: 1,
        before: () => {
          job = fakes.github.queueJob({ repository: 'my-org/app', labels: GPU });
        },
      });
      const due = await reconcileAt(autoscaler, 301_000);
      expect(due.pools['linux-gpu']!.reaped).toEqual([
        expect.objectContaining({
          kind: 'idle',
          outcome: 'skipped',
          detail: expect.stringContaining('GitHub refused: the runner is running a job'),
        }),
      ]);
      expect(fakes.github.listRunners(ORG)).toEqual([expect.objectContaining({ id: runner.id, busy: true })]);
      expect(deleteCalls()).toEqual([]);
      expect(fakes.github.getJob(job!.id)?.status).toBe('in_progress');
      expect(isMember('gh-gpu-1')).toBe(true);
    });

    it('within minIdle is kept: only the surplus goes, the longest idle first', async () => {
      const autoscaler = start({ POOLS: poolsWith({ 'linux-gpu': { minIdle: 1 } }) });
      vm('gh-gpu-1');
      registerRunner(fakes, 'gh-gpu-1', GPU);
      await reconcileAt(autoscaler, 0);
      vm('gh-gpu-2', fakes.migs.gpuB);
      registerRunner(fakes, 'gh-gpu-2', GPU);
      await reconcileAt(autoscaler, MINUTE);
      const due = await reconcileAt(autoscaler, 10 * MINUTE);
      expect(decisions(due)).toEqual([['idle', 'deleted', 'gh-gpu-1']]);
      expect(isMember('gh-gpu-2', fakes.migs.gpuB)).toBe(true);
      expect(decisions(await reconcileAt(autoscaler, 20 * MINUTE))).toEqual([]);
    });
  });

  describe('a VM that died mid-job', () => {
    it('is deleted once its runner was offline on two runs after it was busy; its runner goes once idle', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      const runner = registerRunner(fakes, 'gh-gpu-1', GPU);
      const job = fakes.github.queueJob({ repository: 'my-org/app', labels: GPU });
      expect(fakes.github.getJob(job.id)?.runner_id).toBe(runner.id);
      await reconcileAt(autoscaler, 0);

      fakes.github.setRunner(runner.id, { status: 'offline' }); // busy stays: GitHub still thinks it runs
      expect(decisions(await reconcileAt(autoscaler, MINUTE))).toEqual([]);
      const due = await reconcileAt(autoscaler, 2 * MINUTE);
      expect(decisions(due)).toEqual([['lost', 'deleted', 'gh-gpu-1']]);
      expect(due.pools['linux-gpu']!.reaped[0]!.reason).toMatch(
        /offline on 2 runs in a row after it was busy/,
      );
      expect(isMember('gh-gpu-1')).toBe(false);
      expect(fakes.github.controls.callsTo('DELETE', /\/actions\/runners\//)).toEqual([]);

      // Its runner, left behind and still busy at GitHub: refused, then deleted once GitHub lets go.
      const refused = await reconcileAt(autoscaler, 3 * MINUTE);
      expect(refused.pools['linux-gpu']!.reaped).toEqual([
        expect.objectContaining({ kind: 'runner-left', outcome: 'skipped', runnerId: runner.id }),
      ]);
      fakes.github.setRunner(runner.id, { busy: false });
      const left = await reconcileAt(autoscaler, 4 * MINUTE);
      expect(decisions(left)).toEqual([['runner-left', 'deleted', 'gh-gpu-1']]);
      expect(fakes.github.listRunners(ORG)).toEqual([]);
    });

    it('is kept when its runner is back online at the re-read (a network blip)', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      const runner = registerRunner(fakes, 'gh-gpu-1', GPU, { busy: true });
      await reconcileAt(autoscaler, 0);
      fakes.github.setRunner(runner.id, { status: 'offline' });
      await reconcileAt(autoscaler, MINUTE);
      fakes.github.controls.addFault({
        method: 'GET',
        path: `/orgs/my-org/actions/runners/${runner.id}`,
        times: 1,
        before: () => fakes.github.setRunner(runner.id, { status: 'online' }),
      });
      const due = await reconcileAt(autoscaler, 2 * MINUTE);
      expect(due.pools['linux-gpu']!.reaped).toEqual([
        expect.objectContaining({ kind: 'lost', outcome: 'skipped', detail: 'the runner is online again' }),
      ]);
      expect(isMember('gh-gpu-1')).toBe(true);
    });
  });

  describe('a runner whose VM is gone', () => {
    it('is deleted when offline; runners of VMs the pool never had, or without the label, are not touched', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      const left = registerRunner(fakes, 'gh-gpu-1', GPU);
      vm('gh-gpu-2');
      // Another fleet's runner (another project's VM of the same name) and one registered by hand.
      const foreign = fakes.github.addRunner(ORG, {
        name: 'gh-gpu-2',
        labels: [...GPU, 'gce-instance-id-9999999999999999999'],
        status: 'offline',
      });
      const unlabelled = fakes.github.addRunner(ORG, { name: 'gh-gpu-3', labels: GPU, status: 'offline' });
      await reconcileAt(autoscaler, 0);

      await vmDeletesItself(fakes, 'gh-gpu-1'); // preempted, say; its runner stays behind
      fakes.github.setRunner(left.id, { status: 'offline' });
      const due = await reconcileAt(autoscaler, MINUTE);
      expect(decisions(due)).toEqual([['runner-left', 'deleted', 'gh-gpu-1']]);
      expect(due.pools['linux-gpu']!.reaped[0]).toMatchObject({ action: 'delete-runner', runnerId: left.id });
      expect(
        fakes.github
          .listRunners(ORG)
          .map((r) => r.id)
          .sort(),
      ).toEqual([foreign.id, unlabelled.id].sort());
    });

    it('is deleted when its VM, created by this autoscaler, vanished before any run listed it', async () => {
      const autoscaler = start();
      const job = jobId();
      await autoscaler.deliver(workflowJob({ id: job, labels: GPU }));
      fakes.compute.completeBoots();
      const runner = registerRunner(fakes, `gh-gpu-${job}`, GPU);
      await vmDeletesItself(fakes, `gh-gpu-${job}`);
      fakes.github.setRunner(runner.id, { status: 'offline' });
      const due = await reconcileAt(autoscaler, MINUTE);
      expect(decisions(due)).toEqual([['runner-left', 'deleted', `gh-gpu-${job}`]]);
      expect(fakes.github.listRunners(ORG)).toEqual([]);
    });

    it('is listed, not touched, while it is online', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      registerRunner(fakes, 'gh-gpu-1', GPU, { busy: true });
      await reconcileAt(autoscaler, 0);
      await vmDeletesItself(fakes, 'gh-gpu-1');
      const after = await reconcileAt(autoscaler, MINUTE);
      expect(after.pools['linux-gpu']!.rows).toEqual({ 'runner-without-vm': 1 });
      expect(decisions(after)).toEqual([]);
    });
  });

  describe('a VM labelled github-runner-keep=true', () => {
    it('is never touched, nor its runner, and is listed in GET /fleet', async () => {
      const autoscaler = start();
      vm('gh-gpu-1', fakes.migs.gpuA, { 'github-runner-keep': 'true' });
      vm('gh-gpu-2', fakes.migs.gpuB, { 'github-runner-keep': 'true' });
      registerRunner(fakes, 'gh-gpu-2', GPU);
      for (const at of [0, 11 * MINUTE, 30 * MINUTE]) {
        const body = await reconcileAt(autoscaler, at);
        expect(decisions(body)).toEqual([]);
        // One keep-label list per run for the project, shared by both pools; one runner list per scope.
        expect(body.joinCalls).toEqual({ runnerLists: 1, keepLists: 1 });
      }
      expect(deleteCalls()).toEqual([]);
      expect(fakes.github.controls.callsTo('DELETE', /\/actions\/runners\//)).toEqual([]);
      const { body } = await autoscaler.getFleet();
      const gpu = body.pools.find((p: { name: string }) => p.name === 'linux-gpu');
      expect(gpu.rows).toEqual([
        expect.objectContaining({ instance: 'gh-gpu-1', state: 'unregistered', keep: true, runner: null }),
        expect.objectContaining({
          instance: 'gh-gpu-2',
          state: 'idle',
          keep: true,
          runner: expect.objectContaining({ name: 'gh-gpu-2', status: 'online', busy: false }),
        }),
      ]);
      // The filtered list the keep labels come from.
      expect(fakes.compute.controls.callsTo('GET', /\/aggregated\/instances$/)[0]!.query.filter).toBe(
        'labels.github-runner-keep = "true"',
      );
    });

    it('while the keep labels cannot be read, no VM is touched (but runners of vanished VMs still go)', async () => {
      const autoscaler = start();
      vm('gh-gpu-1');
      vm('gh-gpu-2');
      const runner = registerRunner(fakes, 'gh-gpu-2', GPU);
      await reconcileAt(autoscaler, 0);
      await vmDeletesItself(fakes, 'gh-gpu-2');
      fakes.github.setRunner(runner.id, { status: 'offline' });
      fakes.compute.controls.addFault({ path: /\/aggregated\/instances$/, status: 503, body: {} });
      clock = 11 * MINUTE;
      const response = await autoscaler.reconcile();
      expect(response.status).toBe(502);
      expect(response.body.problems).toEqual([
        expect.stringContaining('listing the VMs labelled to be kept for pool linux-gpu'),
      ]);
      expect(decisions(response.body)).toEqual([
        ['unregistered', 'held', 'gh-gpu-1'],
        ['runner-left', 'deleted', 'gh-gpu-2'],
      ]);
      expect(deleteCalls()).toEqual(['zones/us-central1-a/instances/gh-gpu-2']); // the VM's own
    });
  });

  it('deletes at most REAPER_MAX_DELETE_PERCENT of a pool per run; the rest waits', async () => {
    const autoscaler = start({ REAPER_MAX_DELETE_PERCENT: '25' });
    for (let i = 1; i <= 8; i += 1) vm(`gh-cpu-${i}`, fakes.migs.cpu);
    await reconcileAt(autoscaler, 0);
    const due = await reconcileAt(autoscaler, 11 * MINUTE);
    const outcomes = due.pools['linux-cpu']!.reaped.map((d) => d.outcome);
    expect(outcomes.filter((o) => o === 'deleted')).toHaveLength(2);
    expect(outcomes.filter((o) => o === 'held')).toHaveLength(6);
    expect(due.pools['linux-cpu']!.reaped.find((d) => d.outcome === 'held')!.detail).toContain(
      'REAPER_MAX_DELETE_PERCENT',
    );
    expect(deleteCalls()).toHaveLength(2);
  });

  it('in REAPER_MODE=dry-run decides and logs, and deletes nothing', async () => {
    const autoscaler = start({ REAPER_MODE: 'dry-run' });
    vm('gh-gpu-1');
    await reconcileAt(autoscaler, 0);
    const due = await reconcileAt(autoscaler, 11 * MINUTE);
    expect(decisions(due)).toEqual([['unregistered', 'dry-run', 'gh-gpu-1']]);
    expect(deleteCalls()).toEqual([]);
  });

  it('shows the join and the reaper in GET /fleet: rows, decisions, totals, idle VM minutes', async () => {
    const autoscaler = start({ POOLS: poolsWith({ 'linux-gpu': { minIdle: 1 } }) });
    const booted = vm('gh-gpu-1');
    const runner = registerRunner(fakes, 'gh-gpu-1', GPU);
    vm('gh-gpu-2', fakes.migs.gpuB);
    await reconcileAt(autoscaler, 0);
    await reconcileAt(autoscaler, 11 * MINUTE);
    clock = 12 * MINUTE;
    const { body, status } = await autoscaler.getFleet();
    expect(status).toBe(200);
    const gpu = body.pools.find((p: { name: string }) => p.name === 'linux-gpu');
    expect(gpu).toMatchObject({
      minIdle: 1,
      joinedAt: expect.any(String),
      rows: [
        {
          state: 'idle',
          instance: 'gh-gpu-1',
          instanceId: booted.id,
          zone: 'us-central1-a',
          status: 'RUNNING',
          keep: false,
          runner: {
            id: runner.id,
            name: 'gh-gpu-1',
            status: 'online',
            busy: false,
            labels: expect.arrayContaining(['gpu', `gce-instance-id-${booted.id}`]),
          },
          ageSeconds: 720,
          idleSeconds: 720,
        },
        { state: 'deleting', instance: 'gh-gpu-2', currentAction: 'DELETING', noRunnerSeconds: 720 },
      ],
      reaper: {
        reaped: { unregistered: 1, idle: 0, lost: 0, 'runner-left': 0 },
        idleVmMinutes: 11,
        recentDecisions: [
          expect.objectContaining({ kind: 'unregistered', instance: 'gh-gpu-2', outcome: 'deleted' }),
        ],
      },
    });
  });

  describe('warm pools', () => {
    it('keeps minIdle runners ready, counting VMs still booting, and does not reap them', async () => {
      const autoscaler = start({ POOLS: poolsWith({ 'linux-gpu': { minIdle: 2 } }) });
      const first = await reconcileAt(autoscaler, 0);
      const warm = first.pools['linux-gpu']!.warmRequested;
      expect(warm).toHaveLength(2);
      expect(warm.every((w) => w.outcome === 'created' && isWarmInstanceName('gh-gpu', w.instance))).toBe(
        true,
      );
      // Still booting: counted, nothing more requested.
      expect((await reconcileAt(autoscaler, MINUTE)).pools['linux-gpu']!.warmRequested).toEqual([]);

      fakes.compute.completeBoots();
      for (const { instance } of warm) registerRunner(fakes, instance, GPU);
      await reconcileAt(autoscaler, 2 * MINUTE);
      const later = await reconcileAt(autoscaler, 20 * MINUTE);
      expect(later.pools['linux-gpu']!.rows).toEqual({ idle: 2 });
      expect(decisions(later)).toEqual([]);
      expect(later.pools['linux-gpu']!.warmRequested).toEqual([]);

      // A job takes one: the pool asks for another.
      fakes.github.queueJob({ repository: 'my-org/app', labels: GPU });
      const refill = await reconcileAt(autoscaler, 21 * MINUTE);
      expect(refill.pools['linux-gpu']!.warmRequested).toHaveLength(1);
      expect(fakes.migs.gpuA.targetSize + fakes.migs.gpuB.targetSize).toBe(3);
    });

    it('moves a warm VM stuck in creation to the next MIG under a new warm name', async () => {
      const autoscaler = start({
        STUCK_CREATING_SECONDS: '60',
        POOLS: poolsWith({ 'linux-gpu': { minIdle: 1 } }),
      });
      fakes.compute.setZoneCapacity(PROJECT.projectId, 'us-central1-a', { remaining: 0 });
      const [warm] = (await reconcileAt(autoscaler, 0)).pools['linux-gpu']!.warmRequested;
      fakes.compute.completeBoots();
      expect(fakes.migs.gpuA.members.get(warm!.instance)?.lastAttemptErrors).toHaveLength(1);
      await reconcileAt(autoscaler, MINUTE);
      const moved = (await reconcileAt(autoscaler, 2 * MINUTE + 1000)) as unknown as {
        pools: Record<string, { moved: Array<{ instance: string; replacement: string; outcome: string }> }>;
      };
      const [move] = moved.pools['linux-gpu']!.moved;
      expect(move).toMatchObject({ instance: warm!.instance, outcome: 'created' });
      expect(isWarmInstanceName('gh-gpu', move!.replacement)).toBe(true);
      expect(fakes.migs.gpuB.members.has(move!.replacement)).toBe(true);
      expect(fakes.migs.gpuA.members.has(warm!.instance)).toBe(false);
    });

    it('follows its schedule in the pool time zone, and reaps the surplus once the window closes', async () => {
      // A window that opened a minute ago and lasts ten minutes, in UTC.
      const opened = new Date(Date.now() - MINUTE);
      const cron = `${opened.getUTCMinutes()} ${opened.getUTCHours()} * * *`;
      const autoscaler = start({
        REAPER_MAX_DELETE_PERCENT: '100',
        POOLS: poolsWith({
          'linux-cpu': { minIdleSchedules: [{ cron, durationMinutes: 10, minIdle: 2 }], timeZone: 'UTC' },
        }),
      });
      const open = await reconcileAt(autoscaler, 0);
      expect(open.pools['linux-cpu']).toMatchObject({ minIdle: 2 });
      const warm = open.pools['linux-cpu']!.warmRequested.map((w) => w.instance);
      expect(warm).toHaveLength(2);
      fakes.compute.completeBoots();
      for (const name of warm) registerRunner(fakes, name, CPU);
      await reconcileAt(autoscaler, MINUTE);

      const closed = await reconcileAt(autoscaler, 15 * MINUTE);
      expect(closed.pools['linux-cpu']!.minIdle).toBe(0);
      expect(decisions(closed, 'linux-cpu').sort()).toEqual(
        warm.map((name) => ['idle', 'deleted', name]).sort(),
      );
    });
  });
});
