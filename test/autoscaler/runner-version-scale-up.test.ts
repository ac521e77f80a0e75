import type { FleetView, ReconcileSummary } from '#autoscaler';
import {
  buildAutoscaler,
  createCalls,
  jobId,
  PROJECT,
  registerRunner,
  startAutoscalerFakes,
  workflowJob,
} from './harness.js';
import type { Autoscaler, AutoscalerFakes } from './harness.js';

const DAY_MS = 86_400_000;
const GPU = ['self-hosted', 'linux', 'x64', 'gpu'];

/**
 * A pool whose runners report a release past GitHub's 30-day window stops scaling up, through the real
 * clients: the runner list's `version` from the fake GitHub, its actions/runner releases, Compute's fake.
 */
describe('scale-up stops for a pool past the runner version deadline', () => {
  let fakes: AutoscalerFakes;
  let autoscaler: Autoscaler;

  beforeEach(async () => {
    fakes = await startAutoscalerFakes();
    const now = Date.now();
    // 2.331.0 came out 40 days ago: runners on 2.330.0 get no jobs any more.
    fakes.github.runnerReleases = [
      { version: '2.330.0', publishedAt: new Date(now - 90 * DAY_MS).toISOString() },
      { version: '2.331.0', publishedAt: new Date(now - 40 * DAY_MS).toISOString() },
    ];
    autoscaler = buildAutoscaler(fakes);
    // One GPU VM, long booted, whose runner connected with 2.330.0.
    fakes.compute.addInstance({
      project: PROJECT.projectId,
      zone: 'us-central1-a',
      name: 'gh-gpu-old',
      mig: fakes.migs.gpuA,
    });
    registerRunner(fakes, 'gh-gpu-old', GPU, { version: '2.330.0' });
  });
  afterEach(() => fakes.close());

  const reconcile = async (): Promise<ReconcileSummary> => {
    const res = await autoscaler.reconcile();
    expect(res.body.problems).toEqual([]);
    return res.body as ReconcileSummary;
  };
  const fleet = async (): Promise<FleetView> => (await autoscaler.getFleet()).body as FleetView;

  it('answers the webhook 200 without a VM, creates none in the reconciler, and says why in /fleet', async () => {
    await reconcile();
    const reason = autoscaler.versions.scaleUpBlockedReason('linux-gpu');
    expect(reason).toMatch(/runs 2\.330\.0 or older, and 2\.331\.0 came out 40 days ago/);
    // The CPU pool has no runner reporting a version: it scales as ever.
    expect(autoscaler.versions.scaleUpBlockedReason('linux-cpu')).toBeUndefined();

    const id = jobId();
    const res = await autoscaler.deliver(
      workflowJob({ id, labels: GPU, installationId: fakes.installationId }),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'blocked', pool: 'linux-gpu', jobId: id });
    expect(res.body.reason).toBe(`scale-up stopped: ${reason}`);
    const cpu = await autoscaler.deliver(workflowJob({ id: jobId(), installationId: fakes.installationId }));
    expect(cpu.body.outcome).toBe('created');
    expect(createCalls(fakes.compute).instances).toEqual([expect.stringMatching(/^gh-cpu-/)]);

    const summary = await reconcile();
    expect(summary.pools['linux-gpu']).toMatchObject({
      queued: 1,
      requested: [],
      scaleUpBlockedReason: reason,
    });
    expect(createCalls(fakes.compute).instances).toHaveLength(1);

    const view = await fleet();
    const gpu = view.pools.find((p) => p.name === 'linux-gpu')!;
    expect(gpu.scaleUpBlockedReason).toBe(reason);
    expect(gpu.runnerVersion).toMatchObject({
      reported: { '2.330.0': 1 },
      oldest: '2.330.0',
      level: 'expired',
    });
    expect(gpu.queuedWithoutCapacity).toEqual([expect.objectContaining({ jobId: id, outcome: 'blocked' })]);
    expect(gpu.rows.find((r) => r.instance === 'gh-gpu-old')?.runner?.version).toBe('2.330.0');
    expect(view.runnerReleases).toEqual({ fetchedAt: expect.any(String), error: null });
    expect(view.pools.find((p) => p.name === 'linux-cpu')!.scaleUpBlockedReason).toBeNull();

    const lines = autoscaler.logs.lines();
    expect(lines).toContainEqual(
      expect.objectContaining({ severity: 'ERROR', message: 'scale-up stopped', pool: 'linux-gpu', reason }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ severity: 'WARNING', message: 'no VM for queued job', outcome: 'blocked' }),
    );
  });

  it('resumes once a runner reports a release within the window: the queued job gets its VM', async () => {
    await reconcile();
    const id = jobId();
    await autoscaler.deliver(workflowJob({ id, labels: GPU, installationId: fakes.installationId }));

    // A canary VM on the new template connected with 2.331.0 (busy: a job of its own). The old VM's idle
    // runner gets no job from GitHub, so it is no capacity for the queued one: a VM is requested.
    fakes.compute.addInstance({
      project: PROJECT.projectId,
      zone: 'us-central1-b',
      name: 'gh-gpu-canary',
      mig: fakes.migs.gpuB,
    });
    registerRunner(fakes, 'gh-gpu-canary', GPU, { version: '2.331.0', busy: true });
    const summary = await reconcile();
    expect(autoscaler.versions.scaleUpBlockedReason('linux-gpu')).toBeUndefined();
    expect(summary.pools['linux-gpu']!.scaleUpBlockedReason).toBeUndefined();
    expect(summary.pools['linux-gpu']!.requested).toEqual([
      expect.objectContaining({ jobId: id, outcome: 'created' }),
    ]);
    expect(createCalls(fakes.compute).instances).toEqual([`gh-gpu-${id}`]);
    expect(autoscaler.logs.lines()).toContainEqual(
      expect.objectContaining({
        severity: 'INFO',
        pool: 'linux-gpu',
        message: expect.stringMatching(/^scale-up resumed/),
      }),
    );
    // The old runner is still past due, and still said so each run.
    expect(
      autoscaler.logs
        .lines()
        .filter((l) => l.message === 'runner version out of date' && l.pool === 'linux-gpu'),
    ).toHaveLength(2);
  });

  it('fails open when GitHub cannot list the releases: the pool scales, and /fleet says why nothing is judged', async () => {
    fakes.github.controls.addFault({ path: '/repos/actions/runner/releases', status: 502, times: 5 });
    await reconcile();
    expect(autoscaler.versions.scaleUpBlockedReason('linux-gpu')).toBeUndefined();
    const res = await autoscaler.deliver(
      workflowJob({ id: jobId(), labels: GPU, installationId: fakes.installationId }),
    );
    expect(res.body.outcome).toBe('created');
    expect((await fleet()).runnerReleases).toEqual({
      fetchedAt: null,
      error: 'cannot read the actions/runner releases: GitHub answered 502',
    });
  });
});
