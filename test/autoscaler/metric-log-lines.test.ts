import { METRIC_LOG_MESSAGES } from '#autoscaler';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import { buildAutoscaler, jobId, startAutoscalerFakes, WEBHOOK_SECRET, workflowJob } from './harness.js';
import type { Autoscaler, AutoscalerFakes, AutoscalerOptions } from './harness.js';

/**
 * The three lines deploy/monitoring/metrics/ counts that carry fields of their own: job wait, members failing
 * to create, refused redeliveries. Each is asserted with the fields its metric and alert read.
 */
describe('log lines the monitoring metrics count', () => {
  let fakes: AutoscalerFakes;
  let served: ServedApp | undefined;

  beforeEach(async () => {
    fakes = await startAutoscalerFakes();
  });
  afterEach(async () => {
    await fakes.github.deliveriesSettled();
    await served?.close();
    served = undefined;
    await fakes.close();
  });

  async function start(options: AutoscalerOptions = {}): Promise<Autoscaler> {
    const autoscaler = buildAutoscaler(fakes, options);
    served = await serveApp(autoscaler.app);
    fakes.github.setWebhook({ url: `${served.url}/webhook`, secret: WEBHOOK_SECRET });
    return autoscaler;
  }

  const linesSaying = (autoscaler: Autoscaler, message: string) =>
    autoscaler.logs.lines().filter((line) => line.message === message);

  it('logs job started once per job, with its pool, runner and wait from created_at to started_at', async () => {
    const autoscaler = await start();
    const id = jobId();
    const payload = workflowJob({ id, action: 'in_progress', createdAt: new Date('2026-03-01T10:00:00Z') });
    const job = payload.workflow_job as Record<string, unknown>;
    job.started_at = '2026-03-01T10:01:30Z';
    job.runner_name = 'gh-cpu-17';
    expect((await autoscaler.deliver(payload)).status).toBe(200);
    // The same in_progress again (a redelivery) and the completed after it log no second start.
    expect((await autoscaler.deliver(payload)).status).toBe(200);
    expect((await autoscaler.deliver(workflowJob({ id, action: 'completed' }))).status).toBe(200);

    const started = linesSaying(autoscaler, METRIC_LOG_MESSAGES.jobStarted);
    expect(started).toEqual([
      expect.objectContaining({
        severity: 'INFO',
        jobId: id,
        pool: 'linux-cpu',
        repository: 'my-org/app',
        runnerName: 'gh-cpu-17',
        waitSeconds: 90,
      }),
    ]);
  });

  it('logs no job started for a job no pool serves, nor for a queued one', async () => {
    const autoscaler = await start();
    await autoscaler.deliver(workflowJob({ id: jobId(), action: 'in_progress', labels: ['ubuntu-latest'] }));
    await autoscaler.deliver(workflowJob({ id: jobId(), action: 'queued' }));
    expect(linesSaying(autoscaler, METRIC_LOG_MESSAGES.jobStarted)).toEqual([]);
  });

  it('logs MIG members failing to create on each reconciliation, with the count, codes and age', async () => {
    // One MIG per pool is where it matters most: nothing moves, and this line is the only signal.
    const autoscaler = await start();
    fakes.compute.setZoneCapacity('runners-prod', 'us-central1-a', { remaining: 0 });
    fakes.github.queueJob({ repository: 'my-org/app', labels: ['gpu'] });
    fakes.github.queueJob({ repository: 'my-org/app', labels: ['gpu'] });
    await fakes.github.deliveriesSettled();
    fakes.compute.completeBoots();

    expect((await autoscaler.reconcile()).status).toBe(200);
    expect(linesSaying(autoscaler, METRIC_LOG_MESSAGES.migMembersFailing)).toEqual([
      expect.objectContaining({
        severity: 'WARNING',
        pool: 'linux-gpu',
        mig: 'projects/runners-prod/zones/us-central1-a/instanceGroupManagers/gh-gpu-a',
        failing: 2,
        errors: ['ZONE_RESOURCE_POOL_EXHAUSTED'],
        oldestSeconds: expect.any(Number),
      }),
    ]);
    expect((await autoscaler.reconcile()).status).toBe(200);
    expect(linesSaying(autoscaler, METRIC_LOG_MESSAGES.migMembersFailing)).toHaveLength(2);
  });

  it('logs redelivery failed for each redelivery GitHub refuses, with the delivery and the reason', async () => {
    const autoscaler = await start();
    fakes.github.dropNextDeliveries(1);
    fakes.github.queueJob({ repository: 'my-org/app', labels: ['self-hosted', 'linux', 'x64', 'cpu'] });
    await fakes.github.deliveriesSettled();
    const lost = fakes.github.deliveries.at(-1)!;
    fakes.github.controls.addFault({
      method: 'POST',
      path: /\/app\/hook\/deliveries\/\d+\/attempts$/,
      status: 422,
      body: { message: 'Validation Failed' },
    });

    const response = await autoscaler.reconcile();
    expect(response.body.deliveries.redelivered).toEqual([]);
    const failed = linesSaying(autoscaler, METRIC_LOG_MESSAGES.redeliveryFailed);
    expect(failed).toEqual([
      expect.objectContaining({
        severity: 'WARNING',
        deliveryId: lost.id,
        guid: lost.guid,
        action: 'queued',
        reason: expect.stringContaining('Validation Failed'),
      }),
    ]);
    expect(JSON.stringify(failed)).not.toMatch(/Bearer|BEGIN RSA|eyJ/);
  });
});
