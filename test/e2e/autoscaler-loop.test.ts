import { setTimeout as sleep } from 'node:timers/promises';
import { RUNNER_LABELS, SANDBOX_ORG, SCHEDULER_SERVICE_ACCOUNT, startSandbox } from '#sandbox/sandbox';
import type { RunnerKind, Sandbox } from '#sandbox/sandbox';

/**
 * The closed loop on the sandbox: jobs queued at the fake GitHub are delivered, signed, to the built
 * autoscaler (a child process), which creates VMs in the fake Compute's MIGs; each VM registers a JIT runner
 * through the token proxy, runs the job GitHub hands it, and deletes itself through the instance deleter.
 * A delivery lost on the way is redelivered by POST /reconcile. Outcomes are read at the fakes.
 */
let sandbox: Sandbox;
const serviceLog: string[] = [];
const REPO = `${SANDBOX_ORG}/app`;
/** A busy 2-core machine is slow, not broken: waits are bounded, but generously. */
const WAIT_MS = 120_000;

beforeAll(async () => {
  sandbox = await startSandbox({
    proxyPort: 0,
    deleterPort: 0,
    autoscalerPort: 0,
    vms: { presubmit: 0, postsubmit: 0 },
    deletionDelayMs: 100,
    jobMs: 200,
    // POST /reconcile may request a spare VM for a job its redelivery also asks for: let it leave soon.
    idleTimeoutMs: 5000,
    onServiceLog: (service, line) => serviceLog.push(`${service} ${line}`),
  });
}, 300_000);

afterAll(async () => {
  await sandbox?.stop();
});

/** Polls `done` until it holds, or fails with `what` and the recent service log after {@link WAIT_MS}. */
async function waitFor(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!done()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting until ${what}\n${serviceLog.slice(-30).join('\n')}`);
    }
    await sleep(100);
  }
}

const migsEmpty = () =>
  Object.values(sandbox.migs).every((mig) => mig.targetSize === 0 && mig.members.size === 0);

async function reconcile(): Promise<Response> {
  const token = sandbox.issuer.mintIdentityToken({
    audience: sandbox.autoscalerUrl,
    email: SCHEDULER_SERVICE_ACCOUNT,
  });
  return fetch(`${sandbox.autoscalerUrl}/reconcile`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(60_000),
  });
}

it('runs every queued job on a VM the autoscaler creates, and the MIGs shrink back to empty', async () => {
  const kinds: RunnerKind[] = [
    'presubmit',
    'postsubmit',
    'presubmit',
    'postsubmit',
    'presubmit',
    'postsubmit',
  ];
  const jobs = kinds.map((kind) =>
    sandbox.github.queueJob({ repository: REPO, labels: RUNNER_LABELS[kind] }),
  );

  await waitFor('every job is completed', () =>
    jobs.every((job) => sandbox.github.getJob(job.id)?.status === 'completed'),
  );
  await waitFor('both MIGs are empty', migsEmpty);
  await sandbox.autoscaledVmsSettled();

  for (const [index, job] of jobs.entries()) {
    const ran = sandbox.github.getJob(job.id)!;
    // Ran by a runner of its own kind's MIG, whose VM the autoscaler named after a job.
    expect({ conclusion: ran.conclusion, runner: ran.runner_name }).toEqual({
      conclusion: 'success',
      runner: expect.stringMatching(new RegExp(`^gh-runner-${kinds[index]}-\\d+(-\\d+)?$`)),
    });
  }
  const outcomes = sandbox.autoscaledVms();
  expect(outcomes.filter((o) => o.error !== undefined)).toEqual([]);
  expect(outcomes.length).toBeGreaterThanOrEqual(jobs.length);
  expect(outcomes.every((o) => o.deleted)).toBe(true);
  expect(new Set(outcomes.flatMap((o) => (o.jobId === undefined ? [] : [o.jobId])))).toEqual(
    new Set(jobs.map((job) => job.id)),
  );
  expect(sandbox.vms()).toEqual([]);
  // Every delivery reached the autoscaler and was accepted.
  expect(sandbox.github.deliveries.filter((d) => d.status !== 'OK')).toEqual([]);
}, 300_000);

it('recovers a job whose queued delivery was lost, through POST /reconcile', async () => {
  const before = sandbox.autoscaledVms().length;
  sandbox.github.dropNextDeliveries(1);
  const job = sandbox.github.queueJob({ repository: REPO, labels: RUNNER_LABELS.postsubmit });
  const lost = sandbox.github.deliveries.at(-1)!;
  expect({ dropped: lost.dropped, action: lost.action }).toEqual({ dropped: true, action: 'queued' });
  // Nothing happens without the delivery: no VM is requested.
  await sleep(1000);
  expect(sandbox.migs.postsubmit.targetSize).toBe(0);

  const answer = await reconcile();
  expect(answer.status).toBe(200);
  const summary = (await answer.json()) as { deliveries: { redelivered: Array<{ guid: string }> } };
  expect(summary.deliveries.redelivered.map((d) => d.guid)).toContain(lost.guid);

  await waitFor(
    'the recovered job is completed',
    () => sandbox.github.getJob(job.id)?.status === 'completed',
  );
  await waitFor('both MIGs are empty', migsEmpty);
  await sandbox.autoscaledVmsSettled();
  expect(
    sandbox
      .autoscaledVms()
      .slice(before)
      .map((o) => o.jobId),
  ).toContain(job.id);
  expect(sandbox.vms()).toEqual([]);
}, 300_000);
