import { setTimeout as sleep } from 'node:timers/promises';
import {
  buildAutoscaler,
  createCalls,
  examplePayload,
  jobId,
  PREVIOUS_WEBHOOK_SECRET,
  startAutoscalerFakes,
  WEBHOOK_SECRET,
  workflowJob,
} from './harness.js';
import type { AutoscalerFakes } from './harness.js';

describe('POST /webhook', () => {
  let fakes: AutoscalerFakes;
  beforeEach(async () => {
    fakes = await startAutoscalerFakes();
  });
  afterEach(() => fakes.close());

  const computeCalls = () => fakes.compute.controls.calls.length;

  describe('signatures', () => {
    it.each([
      ['no signature', { signature: null }, 'missing X-Hub-Signature-256'],
      ['an empty signature', { signature: '' }, 'missing X-Hub-Signature-256'],
      ['another secret', { secret: 'someone-elses-webhook-secret' }, 'does not match'],
      ['a sha1 signature', { signature: 'sha1=0123456789abcdef0123456789abcdef01234567' }, 'does not match'],
      ['garbage', { signature: 'sha256=zz' }, 'does not match'],
    ])('answers 401 to %s, and nothing else happens', async (_, options, message) => {
      const autoscaler = buildAutoscaler(fakes);
      const response = await autoscaler.deliver(workflowJob({ id: jobId() }), options);
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: expect.stringContaining(message) });
      expect(computeCalls()).toBe(0);
      expect(fakes.github.controls.calls).toEqual([]);
    });

    it('answers 401 to a valid signature of another body (one byte changed)', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const body = JSON.stringify(workflowJob({ id: jobId() }));
      const { Webhooks } = await import('@octokit/webhooks');
      const signature = await new Webhooks({ secret: WEBHOOK_SECRET }).sign(body);
      const response = await autoscaler.deliver(body.replace('"queued"', '"Queued"'), { signature });
      expect(response.status).toBe(401);
      expect(computeCalls()).toBe(0);
    });

    it('accepts the previous secret during a rotation', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const response = await autoscaler.deliver(workflowJob({ id: jobId() }), {
        secret: PREVIOUS_WEBHOOK_SECRET,
      });
      expect(response.status).toBe(200);
      expect(response.body.outcome).toBe('created');
    });

    it('answers 413 to a body over 1 MiB without reading it further', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const payload = workflowJob({ id: jobId() });
      payload.padding = 'x'.repeat(1024 * 1024);
      const response = await autoscaler.deliver(payload);
      expect(response.status).toBe(413);
      expect(computeCalls()).toBe(0);
    });

    it('never logs the webhook secret or the signature', async () => {
      const autoscaler = buildAutoscaler(fakes);
      await autoscaler.deliver(workflowJob({ id: jobId() }), { secret: 'wrong-secret-0123456789' });
      await autoscaler.deliver(workflowJob({ id: jobId() }));
      const text = autoscaler.logs.text();
      expect(text).not.toContain(WEBHOOK_SECRET);
      expect(text).not.toContain('sha256=');
    });
  });

  describe('events that are not acted on touch no Compute API', () => {
    it('answers ping with 200', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const response = await autoscaler.deliver(examplePayload('ping'), { event: 'ping' });
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ outcome: 'pong' });
    });

    it('acknowledges other events', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const response = await autoscaler.deliver(examplePayload('push'), { event: 'push' });
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ outcome: 'ignored', reason: 'push events are not acted on' });
      expect(computeCalls()).toBe(0);
    });

    it.each(['waiting', 'in_progress', 'completed'] as const)(
      'records %s without a capacity change',
      async (action) => {
        const autoscaler = buildAutoscaler(fakes);
        const id = jobId();
        const response = await autoscaler.deliver(workflowJob({ id, action }));
        expect(response.status).toBe(200);
        expect(response.body).toMatchObject({ outcome: 'recorded', action, jobId: id, pool: 'linux-cpu' });
        expect(computeCalls()).toBe(0);
      },
    );

    it.each([
      ['a job without labels', { labels: [] }, 'the job has no labels'],
      ['a GitHub-hosted job', { labels: ['ubuntu-latest'] }, 'no pool has all of its labels'],
      ['a label no pool has', { labels: ['self-hosted', 'linux', 'arm64'] }, 'no pool has all of its labels'],
      [
        'a repository outside every scope',
        { repository: 'evil-org/app' },
        'the repository is outside the scopes of linux-cpu',
      ],
      ['a look-alike org', { repository: 'my-org-evil/app' }, 'outside the scopes'],
    ])('answers 200 to %s, logs it, and creates nothing', async (_, fields, reason) => {
      const autoscaler = buildAutoscaler(fakes);
      const response = await autoscaler.deliver(workflowJob({ id: jobId(), ...fields }));
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ outcome: 'ignored', reason: expect.stringContaining(reason) });
      expect(computeCalls()).toBe(0);
      expect(autoscaler.logs.lines()).toContainEqual(
        expect.objectContaining({
          message: 'queued job gets no VM',
          reason: expect.stringContaining(reason),
          labels: expect.any(Array),
        }),
      );
    });

    it('ignores deliveries from another installation when GITHUB_INSTALLATION_ID pins one', async () => {
      const autoscaler = buildAutoscaler(fakes, {
        env: { GITHUB_INSTALLATION_ID: String(fakes.installationId) },
      });
      const other = await autoscaler.deliver(
        workflowJob({ id: jobId(), installationId: fakes.installationId + 1 }),
      );
      expect(other.body).toMatchObject({ outcome: 'ignored', reason: 'another installation of the App' });
      expect(computeCalls()).toBe(0);
      const ours = await autoscaler.deliver(
        workflowJob({ id: jobId(), installationId: fakes.installationId }),
      );
      expect(ours.body.outcome).toBe('created');
    });

    it.each([
      ['not JSON', 'this is not json', 'not JSON'],
      [
        'a workflow_job without a job',
        { action: 'queued', repository: { full_name: 'my-org/app' } },
        'workflow_job',
      ],
    ])('answers 400 to a signed body that is %s', async (_, body, message) => {
      const autoscaler = buildAutoscaler(fakes);
      const response = await autoscaler.deliver(body);
      expect(response.status).toBe(400);
      expect(response.body.error).toContain(message);
      expect(computeCalls()).toBe(0);
    });
  });

  describe('queued jobs', () => {
    it('creates one VM named after the job in the pool first MIG, and answers once Compute accepted it', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const id = jobId();
      const response = await autoscaler.deliver(workflowJob({ id }));
      expect(response.status).toBe(200);
      expect(response.body).toEqual({
        outcome: 'created',
        action: 'queued',
        jobId: id,
        pool: 'linux-cpu',
        instance: `gh-cpu-${id}`,
        mig: 'projects/runners-prod/regions/us-central1/instanceGroupManagers/gh-cpu',
      });
      expect(fakes.migs.cpu.members.get(`gh-cpu-${id}`)?.currentAction).toBe('CREATING');
      expect(fakes.migs.cpu.targetSize).toBe(1);
      expect(createCalls(fakes.compute)).toEqual({ calls: 1, instances: [`gh-cpu-${id}`] });
      // The first batch reads the pool's sizes (its count); later ones reuse it.
      expect(fakes.compute.controls.callsTo('GET', /instanceGroupManagers\/gh-cpu(-east)?$/)).toHaveLength(2);
      expect(fakes.compute.controls.calls[0]?.headers.authorization).toBe(
        'Bearer ya29.autoscaler-harness-access-token',
      );
    });

    it.each([
      ['labels in another case', ['Self-Hosted', 'LINUX'], 'linux-cpu', 'gh-cpu'],
      ['a subset of the labels', ['self-hosted'], 'linux-cpu', 'gh-cpu'],
      ['a label only the GPU pool has', ['self-hosted', 'gpu'], 'linux-gpu', 'gh-gpu-a'],
    ])('routes %s to its pool', async (_, labels, pool, mig) => {
      const autoscaler = buildAutoscaler(fakes);
      const id = jobId();
      const response = await autoscaler.deliver(workflowJob({ id, labels }));
      expect(response.body).toMatchObject({ outcome: 'created', pool });
      expect(response.body.mig).toMatch(new RegExp(`/${mig}$`));
    });

    it('creates one VM for the same delivery twice, in sequence or at once', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const first = jobId();
      const payload = workflowJob({ id: first });
      expect((await autoscaler.deliver(payload, { guid: 'g-1' })).body.outcome).toBe('created');
      const again = await autoscaler.deliver(payload, { guid: 'g-1' });
      expect(again.status).toBe(200);
      expect(again.body.outcome).toBe('exists');

      const second = jobId();
      const both = await Promise.all([1, 2, 3].map(() => autoscaler.deliver(workflowJob({ id: second }))));
      expect(both.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(createCalls(fakes.compute)).toEqual({
        calls: 2,
        instances: [`gh-cpu-${first}`, `gh-cpu-${second}`],
      });
      expect(fakes.migs.cpu.targetSize).toBe(2);
    });

    it.each(['http-409', 'operation-error'] as const)(
      'counts "already exists" as success after a restart (Compute answering %s)',
      async (answer) => {
        fakes.compute.duplicateNameAnswer = answer;
        const id = jobId();
        expect((await buildAutoscaler(fakes).deliver(workflowJob({ id }))).body.outcome).toBe('created');
        const restarted = buildAutoscaler(fakes);
        const response = await restarted.deliver(workflowJob({ id }));
        expect(response.status).toBe(200);
        expect(response.body.outcome).toBe('exists');
        expect(fakes.migs.cpu.members.size).toBe(1);
      },
    );

    it('splits a batch Compute refuses for one existing name, so the other jobs still get VMs', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const ids = Array.from({ length: 8 }, () => jobId());
      // A VM of one job exists already, unknown to this service (made before a restart).
      fakes.compute.addInstance({
        project: 'runners-prod',
        zone: 'us-central1-a',
        name: `gh-cpu-${ids[5]}`,
        mig: fakes.migs.cpu,
      });
      const responses = await Promise.all(ids.map((id) => autoscaler.deliver(workflowJob({ id }))));
      expect(responses.map((r) => r.status)).toEqual(ids.map(() => 200));
      expect(responses.map((r) => r.body.outcome)).toEqual(
        ids.map((_, i) => (i === 5 ? 'exists' : 'created')),
      );
      expect([...fakes.migs.cpu.members.keys()].sort()).toEqual(ids.map((id) => `gh-cpu-${id}`).sort());
      // One refused call of 8, then halves: 4 (refused), 4 (created), 2 (created), 2 (refused), 1, 1.
      expect(createCalls(fakes.compute).calls).toBe(7);
    });

    it.each(['in_progress', 'completed'] as const)(
      'gives no VM to a job whose %s arrived before its queued (deliveries out of order)',
      async (first) => {
        const autoscaler = buildAutoscaler(fakes);
        const id = jobId();
        await autoscaler.deliver(workflowJob({ id, action: first }));
        const response = await autoscaler.deliver(workflowJob({ id }));
        // A runner took it already, perhaps the VM requested for another job: the reconciler counts that
        // job's need (see reconcile.test.ts), so it is not counted twice here.
        expect(response.status).toBe(200);
        expect(response.body).toMatchObject({
          outcome: 'not-queued',
          reason: expect.stringContaining('already'),
        });
        expect(createCalls(fakes.compute).calls).toBe(0);
        expect(autoscaler.fleet.jobs.get(id)?.status).toBe(first);
      },
    );
  });

  describe('the pool cap', () => {
    it('never lets jobs arriving together push a pool over maxRunners', async () => {
      const autoscaler = buildAutoscaler(fakes);
      const ids = Array.from({ length: 10 }, () => jobId());
      const responses = await Promise.all(
        ids.map((id) => autoscaler.deliver(workflowJob({ id, labels: ['gpu'] }))),
      );
      const statuses = responses.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 200, 200, 200, 503, 503, 503, 503, 503, 503]);
      expect(responses.find((r) => r.status === 503)?.body.error).toContain(
        'pool linux-gpu is at maxRunners (4)',
      );
      expect(fakes.migs.gpuA.targetSize + fakes.migs.gpuB.targetSize).toBe(4);
    });

    it('holds across batches, and lets a job in once a VM has deleted itself', async () => {
      const autoscaler = buildAutoscaler(fakes);
      for (let wave = 0; wave < 3; wave += 1) {
        await Promise.all(
          [1, 2, 3].map(() => autoscaler.deliver(workflowJob({ id: jobId(), labels: ['gpu'] }))),
        );
      }
      expect(fakes.migs.gpuA.targetSize + fakes.migs.gpuB.targetSize).toBe(4);
      const refused = await autoscaler.deliver(workflowJob({ id: jobId(), labels: ['gpu'] }));
      expect(refused.status).toBe(503);

      // One VM leaves its MIG (through the deleter): the count is read again and the next job fits.
      const [member] = fakes.migs.gpuA.members.values();
      fakes.migs.gpuA.members.delete(member!.name);
      fakes.migs.gpuA.targetSize -= 1;
      const admitted = await autoscaler.deliver(workflowJob({ id: jobId(), labels: ['gpu'] }));
      expect(admitted.status).toBe(200);
      expect(fakes.migs.gpuA.targetSize + fakes.migs.gpuB.targetSize).toBe(4);
    });
  });

  describe('Compute failing', () => {
    it('answers 503 when Compute fails, records the failed delivery, and creates the VM when it is delivered again', async () => {
      const autoscaler = buildAutoscaler(fakes);
      fakes.compute.controls.addFault({
        path: '/createInstances',
        status: 500,
        times: 1,
        body: { error: { code: 500, message: 'backend error' } },
      });
      const id = jobId();
      const failed = await autoscaler.deliver(workflowJob({ id }), { guid: 'failing-guid' });
      expect(failed.status).toBe(503);
      expect(failed.body.error).toContain(`could not request VM gh-cpu-${id}`);
      // A 5xx may or may not have been carried out: no other MIG is asked.
      expect(fakes.compute.controls.callsTo('POST', 'gh-cpu-east/createInstances')).toEqual([]);
      const fleet = await autoscaler.getFleet();
      expect(fleet.body.deliveries.failed).toEqual([
        expect.objectContaining({ guid: 'failing-guid', jobId: id, status: 503 }),
      ]);
      expect((await autoscaler.deliver(workflowJob({ id }), { guid: 'failing-guid' })).body.outcome).toBe(
        'created',
      );
    });

    it('answers 503 within its deadline when Compute does not answer', async () => {
      const autoscaler = buildAutoscaler(fakes, {
        computeTimeoutMs: 300,
        overrides: { webhookDeadlineMs: 5000 },
      });
      // Compute hangs for two minutes: only a deadline can answer before the test's own timeout.
      fakes.compute.controls.addFault({ path: '/createInstances', delayMs: 120_000, times: 1 });
      const response = await autoscaler.deliver(workflowJob({ id: jobId() }));
      expect(response.status).toBe(503);
    });

    it('moves on to the next MIG when the first one has no quota', async () => {
      const autoscaler = buildAutoscaler(fakes);
      fakes.compute.failNextOperation({
        httpErrorStatusCode: 403,
        code: 'QUOTA_EXCEEDED',
        message: "Quota 'CPUS' exceeded. Limit: 24.0 in region us-central1.",
      });
      const response = await autoscaler.deliver(workflowJob({ id: jobId() }));
      expect(response.status).toBe(200);
      expect(response.body.mig).toBe(
        'projects/runners-prod/zones/us-east1-b/instanceGroupManagers/gh-cpu-east',
      );
      expect(autoscaler.logs.lines()).toContainEqual(
        expect.objectContaining({ message: 'MIG did not create VMs; trying the next MIG of the pool' }),
      );
      // The MIG short of quota is passed over for the next jobs until the reconciler sees it recover.
      const next = await autoscaler.deliver(workflowJob({ id: jobId() }));
      expect(next.body.mig).toMatch(/gh-cpu-east$/);
    });

    it('moves on to the next MIG when the first one refuses (it does not exist)', async () => {
      const autoscaler = buildAutoscaler(fakes);
      fakes.compute.controls.addFault({
        path: 'gh-cpu/createInstances',
        status: 404,
        times: 1,
        body: { error: { code: 404, message: "The resource 'gh-cpu' was not found" } },
      });
      const response = await autoscaler.deliver(workflowJob({ id: jobId() }));
      expect(response.body.mig).toMatch(/gh-cpu-east$/);
    });

    it('answers 503 when every MIG of the pool refuses', async () => {
      const autoscaler = buildAutoscaler(fakes);
      fakes.compute.controls.addFault({
        path: '/createInstances',
        status: 403,
        body: { error: { code: 403, message: "Required 'compute.instanceGroupManagers.update' permission" } },
      });
      const response = await autoscaler.deliver(workflowJob({ id: jobId() }));
      expect(response.status).toBe(503);
      expect(response.body.error).toContain("Required 'compute.instanceGroupManagers.update' permission");
      expect(createCalls(fakes.compute).calls).toBe(2);
      expect(autoscaler.logs.text()).not.toContain('ya29.');
      await sleep(0);
    });
  });
});
