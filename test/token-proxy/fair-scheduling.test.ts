/**
 * Issue 15 §1: one VM must not starve the fleet. Mutating GitHub requests go through one scheduler that
 * serves callers in turn, bounds its queue, and drops work whose caller is gone before it reaches GitHub.
 * Order and counts are read at the fake GitHub; a held scheduler slot makes the queue deterministic.
 */
import { instanceIdLabel } from '#token-proxy';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import {
  blockedMutationScheduler,
  buildProxy,
  openRequest,
  startProxyFakes,
  until,
  vm,
} from '#test-support/token-proxy-harness';
import type { ProxyFakes, SocketAnswer } from '#test-support/token-proxy-harness';

let fakes: ProxyFakes;
const servers: ServedApp[] = [];
beforeAll(async () => {
  fakes = await startProxyFakes();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await fakes.close();
});

const ORG = { kind: 'org', org: 'my-org' } as const;
const policy = {
  rules: [
    {
      name: 'presubmit',
      callers: { serviceAccounts: ['runner-presubmit@runners-prod.iam.gserviceaccount.com'] },
      scopes: ['my-org'],
      runnerGroups: ['presubmit'],
      defaultRunnerGroup: 'presubmit',
      defaultLabels: ['self-hosted', 'presubmit'],
      jitOnly: true,
    },
    {
      name: 'postsubmit',
      callers: { serviceAccounts: ['runner-postsubmit@runners-prod.iam.gserviceaccount.com'] },
      scopes: ['my-org', 'match:my-org/.*'],
      runnerGroups: ['postsubmit'],
      defaultRunnerGroup: 'postsubmit',
      defaultLabels: ['self-hosted', 'postsubmit'],
    },
  ],
};
let serial = 0;
const name = (prefix: string) => `${prefix}-${(serial += 1)}-${Date.now().toString(36)}`;
const presubmit = (n = name('gh-presubmit')) => ({
  email: 'runner-presubmit@runners-prod.iam.gserviceaccount.com',
  compute: vm(n),
});
const postsubmit = (n = name('gh-postsubmit')) => ({
  email: 'runner-postsubmit@runners-prod.iam.gserviceaccount.com',
  compute: vm(n),
});
/** Names of the runners GitHub was asked to create since `mark`, in the order it was asked. */
const jitNamesSince = (mark: number) =>
  fakes.github.controls.calls
    .slice(mark)
    .filter((c) => c.method === 'POST' && c.path.endsWith('/generate-jitconfig'))
    .map((c) => (c.body as { name: string }).name);

async function served(options: Parameters<typeof buildProxy>[1]) {
  const proxy = buildProxy(fakes, options);
  const server = await serveApp(proxy.app);
  servers.push(server);
  return { proxy, url: server.url };
}

describe('one scheduler for all mutating GitHub requests', () => {
  it('serves the next VM promptly when one VM fires 100 JIT requests and disconnects', async () => {
    const { scheduler, release } = await blockedMutationScheduler();
    const { proxy, url } = await served({ policy, mutationScheduler: scheduler });
    const flooder = presubmit();
    const token = proxy.token(flooder);
    const mark = fakes.github.controls.calls.length;

    const flood = Array.from({ length: 100 }, () =>
      openRequest(url, { method: 'POST', path: '/jitconfig', token, body: { scope: 'my-org' } }),
    );
    const answered: SocketAnswer[] = [];
    for (const request of flood) {
      request.answer.then((a) => a && answered.push(a)).catch(() => {});
    }
    // One runner change per instance at a time: 99 are refused at once, one waits for its turn.
    await until(
      '99 answers and one queued request',
      () => answered.length === 99 && scheduler.stats().queued === 1,
    );
    for (const answer of answered) {
      expect(answer.status).toBe(429);
      expect(answer.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(answer.body.error).toBe(
        'this instance is already getting a JIT config; wait for that answer before asking again',
      );
    }

    // The VM gives up: its waiting request leaves the queue without reaching GitHub.
    for (const request of flood) request.close();
    await until('the abandoned request to be dropped', () => scheduler.stats().queued === 0);

    const next = postsubmit();
    const pending = proxy.call('post', '/jitconfig', next).send({ scope: 'my-org' });
    const answer = pending.then((res) => res);
    await until("the next VM's request to queue", () => scheduler.stats().queued === 1);
    release();
    const res = await answer;
    expect(res.status).toBe(200);
    expect(jitNamesSince(mark)).toEqual([next.compute.instanceName]);
    expect(fakes.github.listRunners(ORG).some((r) => r.name === flooder.compute.instanceName)).toBe(false);
  });

  it("gives another service account's VM the second turn behind 20 queued VMs of one account", async () => {
    const { scheduler, release } = await blockedMutationScheduler();
    const { proxy } = await served({ policy, mutationScheduler: scheduler });
    const mark = fakes.github.controls.calls.length;
    const storm = Array.from({ length: 20 }, () => presubmit());
    const stormAnswers = storm.map((identity) =>
      proxy
        .call('post', '/jitconfig', identity)
        .send({ scope: 'my-org' })
        .then((res) => res),
    );
    await until('20 queued presubmit requests', () => scheduler.stats().queued === 20);
    const late = postsubmit();
    const lateAnswer = proxy
      .call('post', '/jitconfig', late)
      .send({ scope: 'my-org' })
      .then((res) => res);
    await until('the postsubmit request to queue', () => scheduler.stats().queued === 21);
    release();
    const results = await Promise.all([...stormAnswers, lateAnswer]);
    expect(results.map((r) => r.status)).toEqual(Array(21).fill(200));
    const order = jitNamesSince(mark);
    expect(order).toHaveLength(21);
    // Round-robin over accounts: one presubmit VM, then the postsubmit VM, then the rest.
    expect(order.indexOf(late.compute.instanceName)).toBe(1);
  });

  it('answers 504 to a VM whose deadline passed while it waited, and never sends its request', async () => {
    const { scheduler, release } = await blockedMutationScheduler();
    const { proxy } = await served({ policy, mutationScheduler: scheduler, deadlineMs: 300 });
    const mark = fakes.github.controls.calls.length;
    const slow = presubmit();
    const res = await proxy.call('post', '/jitconfig', slow).send({ scope: 'my-org' });
    expect(res.status).toBe(504);
    await until('the timed-out request to leave the queue', () => scheduler.stats().queued === 0);
    release();
    // Requests run one at a time and in turn: once a later one is answered, an earlier one would have run.
    const after = presubmit();
    expect((await proxy.call('post', '/jitconfig', after).send({ scope: 'my-org' })).status).toBe(200);
    expect(jitNamesSince(mark)).toEqual([after.compute.instanceName]);
  });

  it("sends a request that waited in the queue longer than one GitHub call's deadline, once its turn comes", async () => {
    // A boot storm's queue takes longer to drain than one call to GitHub may take. The call's deadline
    // must start with its turn: started on arrival, it had passed by then, and the request failed
    // unsent after taking the turn.
    const requestTimeoutMs = 2000;
    const { scheduler, release } = await blockedMutationScheduler();
    const { proxy } = await served({
      policy,
      mutationScheduler: scheduler,
      requestTimeoutMs,
      deadlineMs: 60_000,
    });
    const mark = fakes.github.controls.calls.length;
    const waiting = presubmit();
    const answer = proxy
      .call('post', '/jitconfig', waiting)
      .send({ scope: 'my-org' })
      .then((res) => res);
    await until('the request to queue', () => scheduler.stats().queued === 1);
    await new Promise((resolve) => setTimeout(resolve, 2 * requestTimeoutMs));
    release();
    const res = await answer;
    expect(res.status).toBe(200);
    expect(jitNamesSince(mark)).toEqual([waiting.compute.instanceName]);
  });

  it('refuses a second JIT config or runner deletion of an instance while its first is in flight', async () => {
    const { scheduler, release } = await blockedMutationScheduler();
    const { proxy } = await served({ policy, mutationScheduler: scheduler });
    const identity = presubmit();
    const mark = fakes.github.controls.calls.length;
    const first = proxy
      .call('post', '/jitconfig', identity)
      .send({ scope: 'my-org' })
      .then((res) => res);
    await until('the first request to queue', () => scheduler.stats().queued === 1);

    const again = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(again.status).toBe(429);
    expect(again.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    const remove = await proxy.call('delete', '/runner', identity).send({ scope: 'my-org' });
    expect(remove.status).toBe(429);
    expect(remove.body.error).toBe(
      'this instance is already getting a JIT config; wait for that answer before asking again',
    );
    // Another instance is not held up by it.
    const other = presubmit();
    const otherAnswer = proxy
      .call('post', '/jitconfig', other)
      .send({ scope: 'my-org' })
      .then((res) => res);
    await until('the other instance to queue', () => scheduler.stats().queued === 2);

    release();
    expect((await first).status).toBe(200);
    expect((await otherAnswer).status).toBe(200);
    expect(jitNamesSince(mark).sort()).toEqual(
      [identity.compute.instanceName, other.compute.instanceName].sort(),
    );
    // Once the first has its answer, the instance may act again.
    const removed = await proxy.call('delete', '/runner', identity).send({ scope: 'my-org' });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ deleted: true, runner: { name: identity.compute.instanceName } });
  });

  it('answers 429 with Retry-After beyond the total queue, and the refused request never reaches GitHub', async () => {
    const { scheduler, release } = await blockedMutationScheduler({ maxQueued: 3 });
    const { proxy } = await served({ policy, mutationScheduler: scheduler });
    const mark = fakes.github.controls.calls.length;
    const queued = [presubmit(), presubmit(), postsubmit()];
    const answers = queued.map((identity) =>
      proxy
        .call('post', '/jitconfig', identity)
        .send({ scope: 'my-org' })
        .then((res) => res),
    );
    await until('three queued requests', () => scheduler.stats().queued === 3);
    const refused = postsubmit();
    const res = await proxy.call('post', '/jitconfig', refused).send({ scope: 'my-org' });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(res.body.error).toBe('the token proxy has 3 GitHub changes waiting; retry later');
    release();
    expect((await Promise.all(answers)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(jitNamesSince(mark)).not.toContain(refused.compute.instanceName);
    // The refusal counted as no JIT config: the VM may ask again and get one.
    expect((await proxy.call('post', '/jitconfig', refused).send({ scope: 'my-org' })).status).toBe(200);
  });

  it("answers 429 with Retry-After beyond one caller's queue; other callers still get in", async () => {
    const { scheduler, release } = await blockedMutationScheduler({ maxQueuedPerCaller: 2 });
    // Reuse off: every registration request makes its own GitHub call. A token without Compute Engine
    // claims is one caller however many machines hold it.
    const { proxy } = await served({ mutationScheduler: scheduler, reuseSeconds: 0 });
    const mark = fakes.github.controls.calls.length;
    const sameCaller = { email: 'ci@runners-prod.iam.gserviceaccount.com' };
    const answers = [1, 2].map(() =>
      proxy
        .call('post', '/register', sameCaller)
        .send({ scope: 'my-org' })
        .then((res) => res),
    );
    await until('two queued registrations', () => scheduler.stats().queued === 2);
    const third = await proxy.call('post', '/register', sameCaller).send({ scope: 'my-org' });
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(third.body.error).toBe('this caller already has 2 GitHub changes waiting; retry later');
    const other = proxy
      .call('post', '/register', { email: 'other@runners-prod.iam.gserviceaccount.com' })
      .send({ scope: 'my-org' })
      .then((res) => res);
    await until('the other caller to queue', () => scheduler.stats().queued === 3);
    release();
    expect((await Promise.all([...answers, other])).map((r) => r.status)).toEqual([200, 200, 200]);
    const registrations = fakes.github.controls.calls
      .slice(mark)
      .filter((c) => c.path === '/orgs/my-org/actions/runners/registration-token');
    expect(registrations).toHaveLength(3);
  });

  it('drops a JIT request whose VM disconnects while it waits: GitHub never sees it', async () => {
    const { scheduler, release } = await blockedMutationScheduler();
    const { proxy, url } = await served({ policy, mutationScheduler: scheduler });
    const mark = fakes.github.controls.calls.length;
    const leaving = presubmit();
    const request = openRequest(url, {
      method: 'POST',
      path: '/jitconfig',
      token: proxy.token(leaving),
      body: { scope: 'my-org' },
    });
    await until('the request to queue', () => scheduler.stats().queued === 1);
    request.close();
    expect(await request.answer).toBeUndefined();
    await until('the request to be dropped', () => scheduler.stats().queued === 0);
    release();
    const after = postsubmit();
    expect((await proxy.call('post', '/jitconfig', after).send({ scope: 'my-org' })).status).toBe(200);
    expect(jitNamesSince(mark)).toEqual([after.compute.instanceName]);
    // Its instance is free again: the abandoned request did not leave it marked as in flight.
    const back = await proxy.call('post', '/jitconfig', leaving).send({ scope: 'my-org' });
    expect(back.status).toBe(200);
    expect(back.body.runner.labels).toContain(instanceIdLabel(leaving.compute.instanceId));
  });
});
