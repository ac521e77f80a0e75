import { setTimeout as sleep } from 'node:timers/promises';
import type { FakeInstance } from '#fakes/compute-api';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import {
  buildAutoscaler,
  createCalls,
  runnerLabels,
  startAutoscalerFakes,
  WEBHOOK_SECRET,
} from './harness.js';
import type { AutoscalerFakes } from './harness.js';

const GPU_LABELS = ['self-hosted', 'linux', 'x64', 'gpu'];

/**
 * The property, with stand-ins for the VMs: a created VM registers an ephemeral runner (in the
 * reverse order of creation, so jobs run on VMs requested for other jobs), GitHub hands it the oldest queued
 * job it can run, the job finishes, and the VM deletes itself from its MIG. The GPU pool is capped at 4
 * and gets 10 jobs at once; the reconciler runs as Cloud Scheduler would, only faster.
 */
describe('no job is lost', () => {
  let fakes: AutoscalerFakes;
  let served: ServedApp;
  beforeEach(async () => {
    fakes = await startAutoscalerFakes({ bootDelayMs: 0, deletionDelayMs: 0 });
  });
  afterEach(async () => {
    await fakes.github.deliveriesSettled();
    await served.close();
    await fakes.close();
  });

  it('runs every job of a burst beyond the cap, handed out of order, with a share of deliveries dropped', async () => {
    const autoscaler = buildAutoscaler(fakes);
    served = await serveApp(autoscaler.app);
    fakes.github.setWebhook({ url: `${served.url}/webhook`, secret: WEBHOOK_SECRET });
    fakes.github.autoCompleteJobsAfterMs = 30;
    let seed = 7;
    fakes.github.deliverySettings.random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    fakes.github.deliverySettings.dropShare = 0.2;

    const booted: FakeInstance[] = [];
    fakes.compute.onInstanceCreated((instance) => booted.push(instance));
    const registered = new Set<string>();
    const org = { kind: 'org', org: 'my-org' } as const;
    /** VMs whose runner has come and gone delete themselves, as deploy/vm/ does through the deleter. */
    const vmsLeave = async () => {
      const runners = new Set(fakes.github.listRunners(org).map((r) => r.name));
      for (const mig of [fakes.migs.gpuA, fakes.migs.gpuB]) {
        const gone = [...mig.members.values()].filter(
          (m) => m.currentAction === 'NONE' && registered.has(m.name) && !runners.has(m.name),
        );
        if (gone.length === 0) continue;
        const response = await fetch(
          `${fakes.compute.url}/compute/v1/projects/runners-prod/zones/${mig.location}/instanceGroupManagers/${mig.name}/deleteInstances`,
          {
            method: 'POST',
            headers: { authorization: 'Bearer ya29.vm-stand-in', 'content-type': 'application/json' },
            body: JSON.stringify({ instances: gone.map((m) => `zones/${m.zone}/instances/${m.name}`) }),
          },
        );
        expect(response.status).toBe(200);
      }
    };

    const createCallsTotal = () => createCalls(fakes.compute).instances.length;
    const jobs = Array.from({ length: 10 }, () =>
      fakes.github.queueJob({ repository: 'my-org/app', labels: GPU_LABELS }),
    );
    let peak = 0;
    for (let round = 0; round < 300; round += 1) {
      await fakes.github.deliveriesSettled();
      // New VMs register, newest first: the oldest queued job goes to a VM requested for a later one.
      for (const instance of booted.splice(0).reverse()) {
        registered.add(instance.name);
        fakes.github.addRunner(org, {
          name: instance.name,
          labels: runnerLabels(instance, GPU_LABELS),
          ephemeral: true,
        });
      }
      peak = Math.max(peak, fakes.migs.gpuA.targetSize + fakes.migs.gpuB.targetSize);
      await sleep(40);
      await vmsLeave();
      if (jobs.every((job) => fakes.github.getJob(job.id)?.status === 'completed')) break;
      if (round % 3 === 2) {
        const response = await autoscaler.reconcile();
        expect(response.body.problems).toEqual([]);
      }
    }

    // About one VM per job (10 in the runs seen); never a runaway.
    expect(createCallsTotal()).toBeLessThanOrEqual(2 * jobs.length);
    const finished = jobs.map((job) => fakes.github.getJob(job.id)!);
    expect(finished.map((job) => job.status)).toEqual(jobs.map(() => 'completed'));
    expect(peak).toBeLessThanOrEqual(4);
    // Jobs ran on VMs requested for other jobs.
    expect(finished.some((job) => !job.runner_name!.startsWith(`gh-gpu-${job.id}`))).toBe(true);
    // Deliveries were lost and refused on the way (at the cap), and redelivered.
    expect(fakes.github.deliveries.some((d) => d.status_code !== 200 && !d.redelivery)).toBe(true);
    expect(fakes.github.deliveries.some((d) => d.redelivery)).toBe(true);
  }, 90_000);
});
