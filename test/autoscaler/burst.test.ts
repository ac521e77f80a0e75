import { Webhooks } from '@octokit/webhooks';
import { serveApp } from '#test-support/serve-app';
import {
  buildAutoscaler,
  createCalls,
  jobId,
  startAutoscalerFakes,
  WEBHOOK_SECRET,
  workflowJob,
} from './harness.js';
import type { AutoscalerFakes } from './harness.js';

/** Sends signed deliveries over real loopback sockets, all at once; resolves with their statuses and the time. */
async function deliverAll(url: string, payloads: unknown[]): Promise<{ statuses: number[]; ms: number }> {
  const webhooks = new Webhooks({ secret: WEBHOOK_SECRET });
  const signed = await Promise.all(
    payloads.map(async (payload) => {
      const body = JSON.stringify(payload);
      return { body, signature: await webhooks.sign(body) };
    }),
  );
  const started = performance.now();
  const statuses = await Promise.all(
    signed.map(async ({ body, signature }, i) => {
      const response = await fetch(`${url}/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'workflow_job',
          'x-github-delivery': `burst-${i}`,
          'x-hub-signature-256': signature,
        },
        body,
      });
      await response.arrayBuffer();
      return response.status;
    }),
  );
  return { statuses, ms: performance.now() - started };
}

describe('a burst of queued jobs', () => {
  let fakes: AutoscalerFakes;
  beforeEach(async () => {
    fakes = await startAutoscalerFakes();
  });
  afterEach(() => fakes.close());

  it('turns 1000 queued deliveries into a handful of createInstances calls, all answered 200', async () => {
    // The production batch window (1 s).
    const autoscaler = buildAutoscaler(fakes, { env: { BATCH_WINDOW_MS: '1000' } });
    const served = await serveApp(autoscaler.app);
    try {
      const ids = Array.from({ length: 1000 }, () => jobId());
      const { statuses, ms } = await deliverAll(
        served.url,
        ids.map((id) => workflowJob({ id })),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(1000);
      const { calls, instances } = createCalls(fakes.compute);
      expect(new Set(instances).size).toBe(1000);
      expect(fakes.migs.cpu.targetSize).toBe(1000);
      // Tens of calls at most, not a thousand: one per batch window (and per 1000 names).
      expect(calls).toBeLessThanOrEqual(20);
      const computeCalls = fakes.compute.controls.calls.length;
      process.stdout.write(
        `burst: 1000 queued deliveries -> ${calls} createInstances calls (${computeCalls} Compute calls in all), all answered in ${Math.round(ms)} ms\n`,
      );
    } finally {
      await served.close();
    }
  }, 120_000);

  it('holds a pool at its cap when 200 jobs for it arrive at once', async () => {
    const autoscaler = buildAutoscaler(fakes);
    const served = await serveApp(autoscaler.app);
    try {
      const { statuses } = await deliverAll(
        served.url,
        Array.from({ length: 200 }, () => workflowJob({ id: jobId(), labels: ['self-hosted', 'gpu'] })),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(4);
      expect(statuses.filter((s) => s === 503)).toHaveLength(196);
      expect(fakes.migs.gpuA.targetSize + fakes.migs.gpuB.targetSize).toBe(4);
      expect(createCalls(fakes.compute).instances).toHaveLength(4);
    } finally {
      await served.close();
    }
  }, 60_000);
});
