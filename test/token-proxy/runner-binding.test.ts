/**
 * Issue 15 §3 and issue 19: a runner is bound to the instance that registered it by the instance-id label
 * the proxy always adds; derived labels come from the verified token only; reissue is limited per
 * instance; the calling instance may be required to still exist; and `GET /runner` tells a VM's idle check
 * what GitHub says of its runner. What GitHub received is read at the fake.
 */
import { OAuth2Client } from 'google-auth-library';
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi } from '#fakes/compute-api';
import { instanceIdLabel } from '#token-proxy';
import {
  blockedMutationScheduler,
  buildProxy,
  instanceIdOf,
  startProxyFakes,
  until,
  vm,
} from '#test-support/token-proxy-harness';
import type { ProxyFakes } from '#test-support/token-proxy-harness';

let fakes: ProxyFakes;
let compute: FakeComputeApi;
beforeAll(async () => {
  fakes = await startProxyFakes();
  compute = await startFakeComputeApi();
  compute.addProject({ projectId: 'runners-prod', projectNumber: '123456789012' });
});
afterAll(async () => {
  await Promise.all([fakes.close(), compute.close()]);
});
afterEach(() => {
  fakes.github.controls.clearFaults();
  compute.controls.clearFaults();
});

const ORG = { kind: 'org', org: 'my-org' } as const;
const APP_REPO = { kind: 'repo', owner: 'my-org', repo: 'app' } as const;
const PRESUBMIT_SA = 'runner-presubmit@runners-prod.iam.gserviceaccount.com';
const policy = {
  rules: [
    {
      name: 'presubmit',
      callers: { serviceAccounts: [PRESUBMIT_SA] },
      scopes: ['my-org'],
      runnerGroups: ['presubmit'],
      labels: ['self-hosted', 'linux', 'presubmit', 'match:.*'],
      defaultRunnerGroup: 'presubmit',
      defaultLabels: ['self-hosted', 'presubmit'],
      derivedLabels: ['zone', 'region', 'project', 'instance-name'],
      jitOnly: true,
    },
    {
      name: 'postsubmit',
      callers: { serviceAccounts: ['runner-postsubmit@runners-prod.iam.gserviceaccount.com'] },
      scopes: ['my-org', 'my-org/app'],
      runnerGroups: ['postsubmit', 'Default'],
      defaultLabels: ['self-hosted', 'postsubmit'],
      defaultRunnerGroup: 'postsubmit',
    },
  ],
};
let serial = 0;
const name = (prefix: string) => `${prefix}-${(serial += 1)}-${Date.now().toString(36)}`;
const presubmit = (n = name('gh-presubmit'), zone = 'us-central1-a') => ({
  email: PRESUBMIT_SA,
  compute: vm(n, { zone }),
});
const postsubmit = (n = name('gh-postsubmit')) => ({
  email: 'runner-postsubmit@runners-prod.iam.gserviceaccount.com',
  compute: vm(n),
});
const idLabel = (identity: { compute: { instanceId: string } }) =>
  instanceIdLabel(identity.compute.instanceId);
const jitCallsSince = (mark: number) =>
  fakes.github.controls.calls
    .slice(mark)
    .filter((c) => c.method === 'POST' && c.path.endsWith('/generate-jitconfig'));
const runnerNamed = (n: string, scope = ORG) => fakes.github.listRunners(scope).find((r) => r.name === n);

describe('labels the proxy derives from the verified caller', () => {
  it("adds the instance-id label and the rule's derived labels to the JIT config GitHub receives", async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit(name('gh-presubmit'), 'europe-west4-b');
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    const expected = [
      'self-hosted',
      'presubmit',
      `gce-instance-id-${identity.compute.instanceId}`,
      'gce-zone-europe-west4-b',
      'gce-region-europe-west4',
      'gce-project-runners-prod',
      `gce-instance-name-${identity.compute.instanceName}`,
    ];
    expect((jitCallsSince(mark)[0]!.body as { labels: string[] }).labels).toEqual(expected);
    expect(runnerNamed(identity.compute.instanceName)!.labels.map((l) => l.name)).toEqual(expected);
  });

  it('adds only the instance-id label for a rule without derivedLabels', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = postsubmit();
    const mark = fakes.github.controls.calls.length;
    expect((await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' })).status).toBe(200);
    expect((jitCallsSince(mark)[0]!.body as { labels: string[] }).labels).toEqual([
      'self-hosted',
      'postsubmit',
      idLabel(identity),
    ]);
  });

  it.each([
    ["another VM's instance id", 'gce-instance-id-1234567890123456789'],
    ['its own instance id', 'OWN'],
    ['a zone, in capitals', 'GCE-ZONE-us-east1-b'],
    ['a region', 'gce-region-us-east1'],
    ['a project', 'gce-project-prod-secrets'],
    ['an instance name', 'gce-instance-name-gh-postsubmit-1'],
  ])('refuses a caller asking for a label of the reserved form: %s', async (_, label) => {
    // The presubmit rule allows any label (`match:.*`): the reservation holds whatever a policy allows.
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const asked = label === 'OWN' ? idLabel(identity) : label;
    const mark = fakes.github.controls.calls.length;
    const res = await proxy
      .call('post', '/jitconfig', identity)
      .send({ scope: 'my-org', labels: ['self-hosted', asked] });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe(
      `label ${JSON.stringify(asked)} is reserved: the proxy sets gce-… labels from the caller's identity token`,
    );
    expect(fakes.github.controls.calls.slice(mark)).toEqual([]);
  });

  it('refuses labels that would pass 100 once the proxy adds its own', async () => {
    const proxy = buildProxy(fakes, { policy });
    const labels = Array.from({ length: 96 }, (_, i) => `l${i}`);
    const res = await proxy.call('post', '/jitconfig', presubmit()).send({ scope: 'my-org', labels });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe(
      'labels must list at most 95 labels: the proxy adds 5 of its own and GitHub takes 100',
    );
  });
});

describe('a runner belongs to the instance whose id it carries', () => {
  it('will not replace an offline runner of the same name that another instance (another zone) registered', async () => {
    const proxy = buildProxy(fakes, { policy });
    const runnerName = name('gh-presubmit');
    const inZoneA = presubmit(runnerName, 'us-central1-a');
    const inZoneB = { ...presubmit(runnerName, 'us-central1-b') };
    inZoneB.compute = { ...inZoneB.compute, instanceId: instanceIdOf(`${runnerName}/b`) };
    expect((await proxy.call('post', '/jitconfig', inZoneA).send({ scope: 'my-org' })).status).toBe(200);
    const theirs = runnerNamed(runnerName)!;
    expect(theirs.status).toBe('offline');

    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/jitconfig', inZoneB).send({ scope: 'my-org' });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe(
      `a runner named ${JSON.stringify(runnerName)} in my-org belongs to another instance: it does not carry ${idLabel(inZoneB)}`,
    );
    expect(runnerNamed(runnerName)!.id).toBe(theirs.id);
    expect(fakes.github.controls.calls.slice(mark).filter((c) => c.method === 'DELETE')).toEqual([]);
  });

  it('will not replace a runner of the same name that carries no instance-id label', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const legacy = fakes.github.addRunner(ORG, { name: identity.compute.instanceName, status: 'offline' });
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(409);
    expect(res.body.error).toContain('belongs to another instance');
    expect(runnerNamed(identity.compute.instanceName)!.id).toBe(legacy.id);
  });

  it('DELETE /runner leaves alone a same-name runner of another instance: 409, and it stays', async () => {
    const proxy = buildProxy(fakes, { policy });
    const runnerName = name('gh-presubmit');
    const owner = presubmit(runnerName, 'us-central1-a');
    expect((await proxy.call('post', '/jitconfig', owner).send({ scope: 'my-org' })).status).toBe(200);
    const theirs = runnerNamed(runnerName)!;
    const namesake = presubmit(runnerName, 'us-central1-c');
    namesake.compute = { ...namesake.compute, instanceId: instanceIdOf(`${runnerName}/c`) };

    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('delete', '/runner', namesake).send({ scope: 'my-org' });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe(
      `runner ${JSON.stringify(runnerName)} in my-org belongs to another instance: it does not carry ${idLabel(namesake)}`,
    );
    expect(runnerNamed(runnerName)!.id).toBe(theirs.id);
    expect(fakes.github.controls.calls.slice(mark).filter((c) => c.method === 'DELETE')).toEqual([]);

    // Its owner may still remove it.
    const own = await proxy.call('delete', '/runner', owner).send({ scope: 'my-org' });
    expect(own.body).toEqual({ deleted: true, runner: { id: theirs.id, name: runnerName } });
  });
});

describe('JIT configs per instance', () => {
  it('refuses the third JIT config of an instance within the hour, as its runner goes offline each time', async () => {
    let clock = Date.now();
    const proxy = buildProxy(fakes, { policy, jitConfigsPerHour: 2, now: () => clock });
    const identity = presubmit();
    const first = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(first.status).toBe(200);
    // The runner never connects, or dies: offline. The VM asks again and its stale runner is replaced.
    clock += 60_000;
    const second = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(second.status).toBe(200);
    expect(second.body.runner.id).not.toBe(first.body.runner.id);

    clock += 60_000;
    const mark = fakes.github.controls.calls.length;
    const third = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(third.status).toBe(429);
    expect(third.body.error).toBe(
      'this instance already got 2 JIT configs in the last hour (the limit): a VM registers one runner; replace the VM instead',
    );
    // The first of the two leaves the hour 58 minutes from now.
    expect(third.headers['retry-after']).toBe(String(58 * 60));
    expect(fakes.github.controls.calls.slice(mark)).toEqual([]);

    // Other instances are not affected; an hour after its first, the instance may have one again.
    expect((await proxy.call('post', '/jitconfig', presubmit()).send({ scope: 'my-org' })).status).toBe(200);
    clock += 58 * 60_000;
    expect((await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' })).status).toBe(200);
  });

  it('does not count a refused request against the instance', async () => {
    const proxy = buildProxy(fakes, { policy, jitConfigsPerHour: 1 });
    const identity = presubmit();
    const live = fakes.github.addRunner(ORG, {
      name: identity.compute.instanceName,
      status: 'online',
      labels: [idLabel(identity)],
    });
    expect((await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' })).status).toBe(409);
    fakes.github.setRunner(live.id, { status: 'offline' });
    expect((await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' })).status).toBe(200);
    expect((await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' })).status).toBe(429);
  });
});

describe('VERIFY_INSTANCE_EXISTS', () => {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'ya29.token-proxy-test-access-token' });
  const verifying = () =>
    buildProxy(fakes, {
      policy,
      verifyInstances: {
        endpoint: `${compute.endpoint.protocol}://${compute.endpoint.apiEndpoint}:${compute.endpoint.port}`,
        authClient: auth,
      },
    });
  const instanceGets = (mark: number) =>
    compute.controls.calls
      .slice(mark)
      .filter((c) => c.method === 'GET' && /\/instances\/[^/]+$/.test(c.path));
  /** A VM the fake Compute Engine knows, and its identity. */
  const liveVm = () => {
    const identity = presubmit();
    compute.addInstance({
      project: 'runners-prod',
      zone: identity.compute.zone,
      name: identity.compute.instanceName,
      id: identity.compute.instanceId,
    });
    return identity;
  };

  it('issues a JIT config to a VM that exists and runs, after asking Compute Engine', async () => {
    const proxy = verifying();
    const identity = liveVm();
    const mark = compute.controls.calls.length;
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    expect(instanceGets(mark).map((c) => c.path)).toEqual([
      `/compute/v1/projects/runners-prod/zones/us-central1-a/instances/${identity.compute.instanceName}`,
    ]);
  });

  it.each([
    ['a deleted VM', 'gone', 'no longer exists'],
    [
      'a VM whose name now belongs to a new VM',
      'replaced',
      'no longer exists: a VM of that name has another id',
    ],
    ['a stopped VM', 'stopped', 'is not running (TERMINATED)'],
  ])('refuses %s with 403, and asks GitHub nothing', async (_, kind, message) => {
    const proxy = verifying();
    const identity = presubmit();
    if (kind !== 'gone') {
      compute.addInstance({
        project: 'runners-prod',
        zone: identity.compute.zone,
        name: identity.compute.instanceName,
        id:
          kind === 'replaced'
            ? instanceIdOf(`${identity.compute.instanceName}/new`)
            : identity.compute.instanceId,
        status: kind === 'stopped' ? 'TERMINATED' : 'RUNNING',
      });
    }
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe(
      `instance ${identity.compute.instanceName} (id ${identity.compute.instanceId}) in runners-prod/us-central1-a ${message}`,
    );
    expect(jitCallsSince(mark)).toEqual([]);
  });

  it('fails closed with 503 when Compute Engine cannot say', async () => {
    const proxy = verifying();
    const identity = liveVm();
    compute.controls.addFault({
      path: '/instances/',
      status: 500,
      body: { error: { code: 500, message: 'boom' } },
    });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body.error).toMatch(
      /^cannot check that instance .* exists: Compute Engine answered HTTP 500$/,
    );
    expect(jitCallsSince(mark)).toEqual([]);
  });

  it('checks registration tokens for callers with Compute Engine claims too', async () => {
    const proxy = verifying();
    const res = await proxy.call('post', '/register', postsubmit()).send({ scope: 'my-org' });
    expect(res.status).toBe(403);
    expect(res.body.error).toContain('no longer exists');
  });

  it('is off by default: Compute Engine is never asked', async () => {
    const proxy = buildProxy(fakes, { policy });
    const mark = compute.controls.calls.length;
    expect((await proxy.call('post', '/jitconfig', presubmit()).send({ scope: 'my-org' })).status).toBe(200);
    expect(compute.controls.calls.slice(mark)).toEqual([]);
  });
});

describe('GET /runner', () => {
  /** A runner registered by `identity` through the proxy, as GitHub then lists it. */
  async function registered(proxy: ReturnType<typeof buildProxy>, identity: ReturnType<typeof presubmit>) {
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    return res.body.runner as { id: number; name: string };
  }

  it("answers what GitHub says of the caller's runner, fresh each time", async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const runner = await registered(proxy, identity);
    const idle = await proxy.call('get', '/runner', identity);
    expect(idle.status).toBe(200);
    expect(idle.body).toEqual({
      id: runner.id,
      name: identity.compute.instanceName,
      status: 'offline',
      busy: false,
    });
    fakes.github.setRunner(runner.id, { status: 'online', busy: true });
    const busy = await proxy.call('get', '/runner', identity);
    expect(busy.body).toEqual({
      id: runner.id,
      name: identity.compute.instanceName,
      status: 'online',
      busy: true,
    });
  });

  it('answers 404 when the caller has no runner, or only a namesake of another instance does', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const none = await proxy.call('get', '/runner', identity);
    expect(none.status).toBe(404);
    expect(none.body.error).toBe('no runner of this instance is registered in my-org');
    fakes.github.addRunner(ORG, {
      name: identity.compute.instanceName,
      status: 'online',
      busy: true,
      labels: [instanceIdLabel(instanceIdOf('someone else'))],
    });
    expect((await proxy.call('get', '/runner', identity)).status).toBe(404);
  });

  it('answers 409, not 404, for a namesake without an instance-id label: its idle check must keep the VM', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    fakes.github.addRunner(ORG, { name: identity.compute.instanceName, status: 'online', busy: true });
    const res = await proxy.call('get', '/runner', identity);
    expect(res.status).toBe(409);
    expect(res.body.error).toBe(
      `runner ${JSON.stringify(identity.compute.instanceName)} in my-org carries no instance-id label, so whose it is cannot be told; register it with label ${idLabel(identity)}`,
    );
  });

  it('searches every scope the caller may use when they are all literal', async () => {
    const proxy = buildProxy(fakes, { policy, allowed: ['my-org', 'my-org/app'] });
    const identity = postsubmit();
    const runner = fakes.github.addRunner(APP_REPO, {
      name: identity.compute.instanceName,
      status: 'online',
      labels: [idLabel(identity)],
    });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('get', '/runner', identity);
    expect(res.body).toEqual({ id: runner.id, name: runner.name, status: 'online', busy: false });
    expect(
      fakes.github.controls.calls
        .slice(mark)
        .map((c) => `${c.method} ${c.path}`)
        .filter((c) => c.endsWith('/actions/runners')),
    ).toEqual(['GET /orgs/my-org/actions/runners', 'GET /repos/my-org/app/actions/runners']);
  });

  it('asks for the scope when the configuration allows scopes only by pattern, and takes it', async () => {
    const proxy = buildProxy(fakes, { allowed: ['match:my-org(/.*)?'] });
    const identity = { compute: vm(name('gh-runner')) };
    const runner = fakes.github.addRunner(ORG, {
      name: identity.compute.instanceName,
      status: 'online',
      labels: [idLabel(identity)],
    });
    const unnamed = await proxy.call('get', '/runner', identity);
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.error).toBe(
      "no runner of this instance in the scopes this caller's configuration names literally; name the scope: GET /runner?scope=…",
    );
    const named = await proxy.call('get', '/runner?scope=my-org', identity);
    expect(named.body).toEqual({ id: runner.id, name: runner.name, status: 'online', busy: false });
  });

  it.each([
    [
      'a scope outside its rule',
      '/runner?scope=my-org/app',
      403,
      'this caller may not manage runners in scope "my-org/app"',
    ],
    ['a scope not allowed', '/runner?scope=other-org', 403, 'scope "other-org" is not allowed'],
    ['two scopes', '/runner?scope=my-org&scope=my-org', 400, 'scope must be given once'],
    ['an unknown parameter', '/runner?name=gh-postsubmit-1', 400, 'unknown query parameter: name'],
  ])('refuses %s', async (_, path, status, message) => {
    const proxy = buildProxy(fakes, { policy });
    const res = await proxy.call('get', path, presubmit());
    expect(res.status).toBe(status);
    expect(res.body.error).toBe(message);
  });

  it('answers 403 to a caller no rule lets manage runners anywhere', async () => {
    const proxy = buildProxy(fakes, { policy });
    const res = await proxy.call('get', '/runner', {
      email: 'stranger@elsewhere.iam.gserviceaccount.com',
      compute: vm(name('gh-stranger')),
    });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('this caller may not manage runners in any scope');
  });

  it('answers 401 to a token without Compute Engine claims', async () => {
    const proxy = buildProxy(fakes, { policy });
    const res = await proxy.call('get', '/runner', { email: PRESUBMIT_SA });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
  });

  it('limits each instance to a few reads a minute, with Retry-After', async () => {
    const proxy = buildProxy(fakes, { policy, runnerReadsPerMinute: 2 });
    const identity = presubmit();
    expect((await proxy.call('get', '/runner', identity)).status).toBe(404);
    expect((await proxy.call('get', '/runner', identity)).status).toBe(404);
    const mark = fakes.github.controls.calls.length;
    const third = await proxy.call('get', '/runner', identity);
    expect(third.status).toBe(429);
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(third.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(fakes.github.controls.calls.slice(mark)).toEqual([]);
    expect((await proxy.call('get', '/runner', presubmit())).status).toBe(404);
  });

  it('does not wait behind queued GitHub changes: reads bypass the mutation scheduler', async () => {
    const { scheduler, release } = await blockedMutationScheduler();
    const proxy = buildProxy(fakes, { policy, mutationScheduler: scheduler });
    const identity = presubmit();
    const runner = fakes.github.addRunner(ORG, {
      name: identity.compute.instanceName,
      status: 'online',
      labels: [idLabel(identity)],
    });
    const queued = proxy
      .call('post', '/jitconfig', presubmit())
      .send({ scope: 'my-org' })
      .then((res) => res);
    await until('a queued JIT request', () => scheduler.stats().queued === 1);
    const res = await proxy.call('get', '/runner', identity);
    expect(res.body).toMatchObject({ id: runner.id, busy: false });
    release();
    expect((await queued).status).toBe(200);
  });
});
