import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import {
  AUDIENCE,
  buildAutoscaler,
  createCalls,
  jobId,
  registerRunner,
  SCHEDULER,
  startAutoscalerFakes,
  STATUS_READER,
  WEBHOOK_SECRET,
  workflowJob,
} from './harness.js';
import type { Autoscaler, AutoscalerFakes, AutoscalerOptions } from './harness.js';

const CPU_LABELS = ['self-hosted', 'linux', 'x64', 'cpu'];

describe('POST /reconcile', () => {
  let fakes: AutoscalerFakes;
  let served: ServedApp | undefined;
  /** Moves the autoscaler's clock (not the fakes'): jobs age, members stay stuck longer. */
  let clockOffsetMs = 0;

  beforeEach(async () => {
    fakes = await startAutoscalerFakes();
    clockOffsetMs = 0;
  });
  afterEach(async () => {
    await fakes.github.deliveriesSettled();
    await served?.close();
    served = undefined;
    await fakes.close();
  });

  /** The autoscaler on a loopback port, as the App's webhook URL of the fake GitHub. */
  async function start(options: AutoscalerOptions = {}): Promise<Autoscaler> {
    const autoscaler = buildAutoscaler(fakes, {
      ...options,
      overrides: { now: () => Date.now() + clockOffsetMs, ...options.overrides },
    });
    served = await serveApp(autoscaler.app);
    fakes.github.setWebhook({ url: `${served.url}/webhook`, secret: WEBHOOK_SECRET });
    return autoscaler;
  }

  /** Runs a reconciliation and waits for the redeliveries it asked for to be answered. */
  async function reconcile(autoscaler: Autoscaler) {
    const response = await autoscaler.reconcile();
    await fakes.github.deliveriesSettled();
    return response;
  }

  describe('authentication', () => {
    it.each([
      ['no token', undefined, 401],
      ['another service account', 'intruder@runners-prod.iam.gserviceaccount.com', 403],
      ['the status reader (it may only read /fleet)', STATUS_READER, 403],
    ])('refuses %s', async (_, email, status) => {
      const autoscaler = await start();
      const response =
        email === undefined
          ? await (await import('supertest')).default(autoscaler.app).post('/reconcile')
          : await autoscaler.reconcile(email);
      expect(response.status).toBe(status);
      expect(fakes.github.controls.calls).toEqual([]);
      expect(fakes.compute.controls.calls).toEqual([]);
    });

    it('refuses a token for another audience with 401', async () => {
      const autoscaler = await start();
      const token = autoscaler.token(SCHEDULER, 'https://other-service.example.run.app');
      const response = await (
        await import('supertest')
      )
        .default(autoscaler.app)
        .post('/reconcile')
        .set('Authorization', `Bearer ${token}`);
      expect(response.status).toBe(401);
      expect(response.body.error).toContain('audience');
    });

    it('answers the scheduler with a summary, per pool', async () => {
      const autoscaler = await start();
      const response = await reconcile(autoscaler);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        deliveries: { listed: 0, failed: 0, redelivered: [] },
        rebuilt: { payloadsRead: 0, jobs: 0 },
        pools: {
          'linux-cpu': { queued: 0, available: null, requested: [], moved: [] },
          'linux-gpu': { queued: 0, available: null, requested: [], moved: [] },
        },
        problems: [],
      });
      expect(AUDIENCE).toMatch(/^https:/);
    });
  });

  it('redelivers a dropped queued delivery, and the job gets its VM', async () => {
    const autoscaler = await start();
    fakes.github.dropNextDeliveries(1);
    const job = fakes.github.queueJob({ repository: 'my-org/app', labels: CPU_LABELS });
    await fakes.github.deliveriesSettled();
    expect(createCalls(fakes.compute).calls).toBe(0);

    const response = await reconcile(autoscaler);
    expect(response.body.deliveries).toMatchObject({
      listed: 1,
      failed: 1,
      redelivered: [{ action: 'queued' }],
    });
    expect(fakes.migs.cpu.members.has(`gh-cpu-${job.id}`)).toBe(true);
    expect(fakes.github.deliveries.map((d) => [d.redelivery, d.status])).toEqual([
      [false, 'failed to connect to host'],
      [true, 'OK'],
    ]);
    // Succeeded since: the next run leaves it alone.
    const again = await reconcile(autoscaler);
    expect(again.body.deliveries).toMatchObject({ failed: 0, redelivered: [] });
    const fleet = await autoscaler.getFleet();
    expect(fleet.body.deliveries.redelivered).toEqual([
      expect.objectContaining({ guid: fakes.github.deliveries[0]!.guid }),
    ]);
  });

  it('redelivers a delivery refused at the cap once the pool has room again', async () => {
    const autoscaler = await start();
    const jobs = [1, 2, 3, 4, 5].map(() =>
      fakes.github.queueJob({ repository: 'my-org/app', labels: ['gpu'] }),
    );
    await fakes.github.deliveriesSettled();
    expect(fakes.github.deliveries.map((d) => d.status_code).sort()).toEqual([200, 200, 200, 200, 503]);
    const refused = fakes.github.deliveries.find((d) => d.status_code === 503)!;
    const refusedJob = (refused.request.payload as { workflow_job: { id: number } }).workflow_job.id;

    // Still at the cap: redelivered, refused again, and not lost.
    const first = await reconcile(autoscaler);
    expect(first.body.deliveries.redelivered).toHaveLength(1);
    expect(first.body.pools['linux-gpu']).toMatchObject({
      queued: 5,
      available: 4,
      requested: [{ jobId: refusedJob, instance: `gh-gpu-${refusedJob}`, outcome: 'at-capacity' }],
    });

    // A VM runs a job and deletes itself: room for the refused job.
    const [done] = [...fakes.migs.gpuA.members.values()];
    fakes.migs.gpuA.members.delete(done!.name);
    fakes.migs.gpuA.targetSize -= 1;
    await reconcile(autoscaler);
    expect(
      fakes.migs.gpuA.members.has(`gh-gpu-${refusedJob}`) ||
        fakes.migs.gpuB.members.has(`gh-gpu-${refusedJob}`),
    ).toBe(true);
    expect(jobs).toHaveLength(5);
  });

  it('gives no VM to a job that finished before its redelivery', async () => {
    const autoscaler = await start();
    fakes.github.dropNextDeliveries(1);
    const job = fakes.github.queueJob({ repository: 'my-org/app', labels: CPU_LABELS });
    fakes.github.completeJob(job.id, 'cancelled');
    await fakes.github.deliveriesSettled();

    clockOffsetMs = 5 * 60_000; // the redelivery comes five minutes later
    const response = await reconcile(autoscaler);
    expect(response.body.deliveries.redelivered).toHaveLength(1);
    expect(createCalls(fakes.compute).calls).toBe(0);
    expect(fakes.github.deliveries.at(-1)).toMatchObject({ redelivery: true, status_code: 200 });
    expect(JSON.parse(fakes.github.deliveries.at(-1)!.response.payload!)).toMatchObject({
      outcome: 'not-queued',
      jobId: job.id,
    });
  });

  it('checks a job older than a minute before creating its VM, and confirms old queued jobs', async () => {
    const autoscaler = await start();
    const id = jobId();
    const old = new Date(Date.now() - 10 * 60_000);
    const deliverOld = (jobIdToSend: number) =>
      autoscaler.deliver(
        workflowJob({ id: jobIdToSend, createdAt: old, installationId: fakes.installationId }),
      );
    // A job GitHub does not know (the jobs API answers 404): a stale delivery, no VM.
    const stale = await deliverOld(id);
    expect(stale.status).toBe(200);
    expect(stale.body).toMatchObject({ outcome: 'not-queued', reason: 'the job is not found' });

    // GitHub cannot say: 503, and the delivery is tried again later.
    fakes.github.controls.addFault({
      path: `/actions/jobs/${id}`,
      status: 502,
      times: 2,
      body: { message: 'Bad gateway' },
    });
    const unsure = await deliverOld(id);
    expect(unsure.status).toBe(503);
    expect(unsure.body.error).toContain(`GitHub could not say whether job ${id} is still queued`);
    expect(createCalls(fakes.compute).calls).toBe(0);

    const job = fakes.github.queueJob({ repository: 'my-org/app', labels: CPU_LABELS });
    await fakes.github.deliveriesSettled();
    const current = await deliverOld(job.id);
    expect(current.body.outcome).toBe('exists'); // its own delivery created it already
    expect(fakes.github.controls.callsTo('GET', `/actions/jobs/${job.id}`)).toHaveLength(1);
  });

  it('moves a VM stuck in creation (a stock-out) to the pool next MIG', async () => {
    const autoscaler = await start({ env: { STUCK_CREATING_SECONDS: '60' } });
    fakes.compute.setZoneCapacity('runners-prod', 'us-central1-a', { remaining: 0 });
    const job = fakes.github.queueJob({ repository: 'my-org/app', labels: ['gpu'] });
    await fakes.github.deliveriesSettled();
    fakes.compute.completeBoots();
    const stuck = `gh-gpu-${job.id}`;
    expect(fakes.migs.gpuA.members.get(stuck)).toMatchObject({
      currentAction: 'CREATING',
      lastAttemptErrors: [expect.objectContaining({ code: 'ZONE_RESOURCE_POOL_EXHAUSTED' })],
    });

    // First seen stuck: not yet moved, but the MIG is passed over for new VMs.
    const first = await reconcile(autoscaler);
    expect(first.body.pools['linux-gpu'].moved).toEqual([]);
    const other = fakes.github.queueJob({ repository: 'my-org/app', labels: ['gpu'] });
    await fakes.github.deliveriesSettled();
    expect(fakes.migs.gpuB.members.has(`gh-gpu-${other.id}`)).toBe(true);

    clockOffsetMs = 61_000;
    const second = await reconcile(autoscaler);
    expect(second.body.pools['linux-gpu'].moved).toEqual([
      {
        instance: stuck,
        from: 'projects/runners-prod/zones/us-central1-a/instanceGroupManagers/gh-gpu-a',
        replacement: `${stuck}-2`,
        outcome: 'created',
      },
    ]);
    expect(fakes.migs.gpuA.members.has(stuck)).toBe(false);
    expect(fakes.migs.gpuB.members.get(`${stuck}-2`)?.currentAction).toBe('CREATING');
    expect(fakes.migs.gpuA.targetSize + fakes.migs.gpuB.targetSize).toBe(2);
  });

  it('requests a VM for a queued job whose VM another job took, even with deliveries out of order', async () => {
    const autoscaler = await start();
    // Job X's queued delivery is lost; job J gets VM gh-cpu-J; the VM boots and GitHub gives it X.
    fakes.github.dropNextDeliveries(1);
    const x = fakes.github.queueJob({ repository: 'my-org/app', labels: ['self-hosted', 'linux'] });
    const j = fakes.github.queueJob({ repository: 'my-org/app', labels: CPU_LABELS });
    await fakes.github.deliveriesSettled();
    fakes.compute.completeBoots();
    registerRunner(fakes, `gh-cpu-${j.id}`, CPU_LABELS);
    expect(fakes.github.getJob(x.id)?.status).toBe('in_progress');
    expect(fakes.github.getJob(j.id)?.status).toBe('queued');
    await fakes.github.deliveriesSettled();

    // X's late queued gets no VM (it runs already); J, still queued with no idle VM, gets a second one.
    const response = await reconcile(autoscaler);
    expect(response.body.pools['linux-cpu']).toMatchObject({
      queued: 1,
      available: 0,
      requested: [{ jobId: j.id, instance: `gh-cpu-${j.id}-2`, outcome: 'created' }],
    });
    expect(fakes.migs.cpu.targetSize).toBe(2);
    expect(fakes.github.controls.callsTo('GET', '/orgs/my-org/actions/runners')).toHaveLength(1);

    // Nothing more while J's new VM boots.
    const again = await reconcile(autoscaler);
    expect(again.body.pools['linux-cpu']).toMatchObject({ queued: 1, available: 1, requested: [] });
  });

  it('rebuilds the queued jobs from the delivery log after a restart', async () => {
    const before = await start();
    const jobs = [1, 2, 3].map(() => fakes.github.queueJob({ repository: 'my-org/app', labels: CPU_LABELS }));
    fakes.github.queueJob({ repository: 'my-org/app', labels: ['ubuntu-latest'] });
    await fakes.github.deliveriesSettled();
    expect(before.fleet.jobs.size).toBe(3);
    await served!.close();
    served = undefined;

    const after = await start();
    fakes.github.controls.calls.length = 0;
    const response = await reconcile(after);
    expect(response.body.rebuilt).toEqual({ payloadsRead: 4, jobs: 3 });
    expect(response.body.pools['linux-cpu']).toMatchObject({ queued: 3, available: 3, requested: [] });
    expect([...after.fleet.jobs.keys()].sort()).toEqual(jobs.map((j) => j.id).sort());
    // What the restart cost GitHub: one page of the delivery log, one payload per queued delivery, one runner
    // page (plus App and installation tokens).
    expect(fakes.github.controls.callsTo('GET', /^\/app\/hook\/deliveries$/)).toHaveLength(1);
    expect(fakes.github.controls.callsTo('GET', /^\/app\/hook\/deliveries\/\d+$/)).toHaveLength(4);
  });

  it('reports a step that failed and goes on with the others (502)', async () => {
    const autoscaler = await start();
    fakes.github.controls.addFault({
      path: '/app/hook/deliveries',
      status: 500,
      body: { message: 'Server Error' },
    });
    const response = await autoscaler.reconcile();
    expect(response.status).toBe(502);
    expect(response.body.error).toContain('reading the webhook delivery log: GitHub: Server Error');
    expect(response.body.pools['linux-cpu']).toBeDefined();
  });
});

describe('GET /fleet', () => {
  let fakes: AutoscalerFakes;
  beforeEach(async () => {
    fakes = await startAutoscalerFakes();
  });
  afterEach(() => fakes.close());

  it('shows each pool: MIG sizes, queued jobs without capacity, recent decisions and failed deliveries', async () => {
    const autoscaler = buildAutoscaler(fakes);
    const ids = [1, 2, 3, 4, 5].map(() => jobId());
    await Promise.all(
      ids.map((id) => autoscaler.deliver(workflowJob({ id, labels: ['gpu'] }), { guid: `g-${id}` })),
    );
    const response = await autoscaler.getFleet();
    expect(response.status).toBe(200);
    const gpu = response.body.pools.find((p: { name: string }) => p.name === 'linux-gpu');
    expect(gpu).toMatchObject({
      maxRunners: 4,
      inUse: 4,
      queuedJobs: 5,
      migs: [
        {
          mig: 'projects/runners-prod/zones/us-central1-a/instanceGroupManagers/gh-gpu-a',
          targetSize: 4,
          shortage: null,
        },
        {
          mig: 'projects/runners-prod/zones/us-central1-b/instanceGroupManagers/gh-gpu-b',
          targetSize: 0,
          shortage: null,
        },
      ],
      queuedWithoutCapacity: [expect.objectContaining({ outcome: 'at-capacity' })],
    });
    expect(gpu.recentDecisions.map((d: { outcome: string }) => d.outcome).sort()).toEqual([
      'at-capacity',
      'created',
      'created',
      'created',
      'created',
    ]);
    expect(response.body.deliveries.failed).toEqual([expect.objectContaining({ status: 503 })]);
  });

  it.each([
    ['the scheduler', SCHEDULER, 403],
    ['anyone else', 'someone@example.com', 403],
  ])('refuses %s', async (_, email, status) => {
    const autoscaler = buildAutoscaler(fakes);
    expect((await autoscaler.getFleet(email)).status).toBe(status);
  });
});
