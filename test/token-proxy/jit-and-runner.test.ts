import request from 'supertest';
import { instanceIdLabel } from '#token-proxy';
import { buildProxy, startProxyFakes, vm } from '#test-support/token-proxy-harness';
import type { ProxyFakes } from '#test-support/token-proxy-harness';

let fakes: ProxyFakes;
beforeAll(async () => {
  fakes = await startProxyFakes();
});
afterAll(() => fakes.close());

const ORG = { kind: 'org', org: 'my-org' } as const;
const since = (mark: number, method: string, path: string | RegExp) =>
  fakes.github.controls.calls
    .slice(mark)
    .filter((c) => c.method === method && (typeof path === 'string' ? c.path === path : path.test(c.path)));
const runnerNamed = (name: string) => fakes.github.listRunners(ORG).find((r) => r.name === name);
let serial = 0;
const uniqueName = (prefix: string) => `${prefix}-${(serial += 1)}-${Date.now().toString(36)}`;

/** Presubmit VMs run untrusted code; postsubmit VMs are trusted. The policy keeps them apart. */
const policy = {
  rules: [
    {
      name: 'presubmit',
      callers: {
        serviceAccounts: ['runner-presubmit@runners-prod.iam.gserviceaccount.com'],
        instanceNames: ['match:gh-presubmit-.*'],
      },
      scopes: ['my-org'],
      runnerGroups: ['presubmit'],
      labels: ['self-hosted', 'linux', 'presubmit', 'match:cpu-[0-9]+'],
      defaultRunnerGroup: 'presubmit',
      defaultLabels: ['self-hosted', 'linux', 'presubmit'],
      jitOnly: true,
    },
    {
      name: 'postsubmit',
      callers: {
        serviceAccounts: ['runner-postsubmit@runners-prod.iam.gserviceaccount.com'],
        instanceNames: ['match:gh-postsubmit-.*'],
      },
      scopes: ['my-org', 'match:my-org/.*'],
      runnerGroups: ['postsubmit', 'Default'],
      labels: ['self-hosted', 'linux', 'postsubmit'],
    },
  ],
};
const presubmit = (name = uniqueName('gh-presubmit')) => ({
  email: 'runner-presubmit@runners-prod.iam.gserviceaccount.com',
  compute: vm(name),
});
const postsubmit = (name = uniqueName('gh-postsubmit')) => ({
  email: 'runner-postsubmit@runners-prod.iam.gserviceaccount.com',
  compute: vm(name),
});
/** The label binding a runner to the VM `identity` names. */
const idLabel = (identity: { compute: { instanceId: string } }) =>
  instanceIdLabel(identity.compute.instanceId);

describe('POST /jitconfig', () => {
  it('names the runner after the calling instance and applies the rule defaults', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      encoded_jit_config: expect.any(String),
      runner: {
        id: expect.any(Number),
        name: identity.compute.instanceName,
        labels: ['self-hosted', 'linux', 'presubmit', idLabel(identity)],
      },
    });
    const [call] = since(mark, 'POST', '/orgs/my-org/actions/runners/generate-jitconfig');
    expect(call!.body).toEqual({
      name: identity.compute.instanceName,
      runner_group_id: 2,
      labels: ['self-hosted', 'linux', 'presubmit', idLabel(identity)],
    });
    expect(runnerNamed(identity.compute.instanceName)).toMatchObject({ runner_group_id: 2 });
  });

  it('takes labels, group and work folder from the request when the rule allows them', async () => {
    const proxy = buildProxy(fakes, { policy });
    const mark = fakes.github.controls.calls.length;
    const identity = presubmit();
    const res = await proxy.call('post', '/jitconfig', identity).send({
      scope: 'my-org',
      labels: ['self-hosted', 'CPU-16'],
      runner_group: 'presubmit',
      work_folder: 'work/_w',
    });
    expect(res.status).toBe(200);
    expect(since(mark, 'POST', /generate-jitconfig$/)[0]!.body).toMatchObject({
      labels: ['self-hosted', 'CPU-16', idLabel(identity)],
      work_folder: 'work/_w',
    });
  });

  it('works for a repository scope with the Default group', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = postsubmit();
    const mark = fakes.github.controls.calls.length;
    const res = await proxy
      .call('post', '/jitconfig', identity)
      .send({ scope: 'my-org/app', labels: ['self-hosted', 'postsubmit'], runner_group: 'Default' });
    expect(res.status).toBe(200);
    expect(
      since(mark, 'POST', '/repos/my-org/app/actions/runners/generate-jitconfig')[0]!.body,
    ).toMatchObject({
      name: identity.compute.instanceName,
      runner_group_id: 1,
    });
  });

  it('works with a GitHub App token down-scoped to self-hosted runners', async () => {
    const proxy = buildProxy(fakes, { policy, credentials: 'app' });
    const res = await proxy.call('post', '/jitconfig', postsubmit()).send({
      scope: 'my-org',
      labels: ['postsubmit'],
      runner_group: 'postsubmit',
    });
    expect(res.status).toBe(200);
    expect(fakes.github.issuedTokens.installation.at(-1)!.requested).toEqual({
      permissions: { organization_self_hosted_runners: 'write' },
    });
  });

  it.each([
    [
      "another rule's label",
      { labels: ['self-hosted', 'postsubmit'] },
      403,
      'this caller may not use label "postsubmit"',
    ],
    [
      "another rule's group",
      { runner_group: 'postsubmit' },
      403,
      'this caller may not join runner group "postsubmit"',
    ],
    [
      'the Default group it was not given',
      { runner_group: 'Default' },
      403,
      'this caller may not join runner group "Default"',
    ],
    [
      'a label a pattern does not fully match',
      { labels: ['cpu-16x'] },
      403,
      'this caller may not use label "cpu-16x"',
    ],
    ['a runner name of its own', { name: 'gh-postsubmit-1' }, 400, 'unknown field: "name"'],
    ['no labels at all', { labels: [] }, 400, 'labels must list at least one label'],
    [
      '101 labels',
      { labels: Array.from({ length: 101 }, (_, i) => `l${i}`) },
      400,
      'labels must list at most 100 labels',
    ],
    ['a label with a comma', { labels: ['linux,postsubmit'] }, 400, 'each label must be'],
    ['a repeated label', { labels: ['linux', 'LINUX'] }, 400, 'labels must not repeat'],
    [
      'a work folder outside the runner',
      { work_folder: '../../etc' },
      400,
      'work_folder must be a relative path',
    ],
    ['a group of the wrong type', { runner_group: 7 }, 400, 'runner_group must be a string'],
  ])('refuses a presubmit VM asking for %s', async (_, extra, status, message) => {
    const proxy = buildProxy(fakes, { policy });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/jitconfig', presubmit()).send({ scope: 'my-org', ...extra });
    expect(res.status).toBe(status);
    expect(res.body.error).toContain(message);
    expect(since(mark, 'POST', /generate-jitconfig$/)).toHaveLength(0);
  });

  it('requires labels when the rule has no default labels', async () => {
    const proxy = buildProxy(fakes, { policy });
    const res = await proxy
      .call('post', '/jitconfig', postsubmit())
      .send({ scope: 'my-org', runner_group: 'postsubmit' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/labels are required/);
  });

  it('uses the Default group when neither the request nor the rule names one', async () => {
    const proxy = buildProxy(fakes, { policy });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy
      .call('post', '/jitconfig', postsubmit())
      .send({ scope: 'my-org', labels: ['linux'] });
    expect(res.status).toBe(200);
    expect(since(mark, 'POST', /generate-jitconfig$/)[0]!.body).toMatchObject({ runner_group_id: 1 });
  });

  it('allows any group and labels to any VM when no policy is configured', async () => {
    const proxy = buildProxy(fakes);
    const res = await proxy
      .call('post', '/jitconfig', { compute: vm(uniqueName('vm')) })
      .send({ scope: 'my-org', labels: ['anything'], runner_group: 'postsubmit' });
    expect(res.status).toBe(200);
  });

  it('answers 400 for a group the scope does not have', async () => {
    const proxy = buildProxy(fakes);
    const res = await proxy
      .call('post', '/jitconfig', { compute: vm(uniqueName('vm')) })
      .send({ scope: 'my-org', labels: ['x'], runner_group: 'nonexistent' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('runner group "nonexistent" does not exist in my-org');
  });

  it('lists runner groups once for many JIT requests', async () => {
    const proxy = buildProxy(fakes, { policy });
    const mark = fakes.github.controls.calls.length;
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        proxy.call('post', '/jitconfig', presubmit()).send({ scope: 'my-org' }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(since(mark, 'GET', '/orgs/my-org/actions/runner-groups')).toHaveLength(1);
    expect(since(mark, 'POST', /generate-jitconfig$/)).toHaveLength(8);
  });

  it('replaces an offline runner of the same name that this instance registered (its runner died)', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const stale = fakes.github.addRunner(ORG, {
      name: identity.compute.instanceName,
      status: 'offline',
      labels: ['self-hosted', idLabel(identity)],
    });
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    expect(res.body.runner.id).not.toBe(stale.id);
    expect(
      fakes.github
        .listRunners(ORG)
        .filter((r) => r.name === identity.compute.instanceName)
        .map((r) => r.id),
    ).toEqual([res.body.runner.id]);
  });

  it('answers 409 when a runner of the same name is online', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const live = fakes.github.addRunner(ORG, {
      name: identity.compute.instanceName,
      status: 'online',
      labels: [idLabel(identity)],
    });
    const res = await proxy.call('post', '/jitconfig', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(409);
    expect(res.body.error).toContain('is already online');
    expect(runnerNamed(identity.compute.instanceName)!.id).toBe(live.id);
  });

  it.each([
    ['post', '/jitconfig', { scope: 'my-org', labels: ['x'] }],
    ['delete', '/runner', { scope: 'my-org' }],
  ] as const)(
    'answers 401 to %s %s with a token without Compute Engine claims, as the deleter does',
    async (method, path, body) => {
      const proxy = buildProxy(fakes);
      const mark = fakes.github.controls.calls.length;
      const res = await proxy.call(method, path).send(body);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
      expect(res.body.error).toBe(
        'identity token has no Compute Engine claims: request it from the metadata server with format=full',
      );
      expect(fakes.github.controls.calls.slice(mark)).toEqual([]);
    },
  );
});

describe('jitOnly rules', () => {
  it.each([
    ['/register', 'use POST /jitconfig'],
    ['/remove', 'use DELETE /runner'],
  ])('refuse %s to their callers', async (path, hint) => {
    const proxy = buildProxy(fakes, { policy });
    const res = await request(proxy.app)
      .post(path)
      .set('Authorization', `Bearer ${proxy.token(presubmit())}`)
      .send({ scope: 'my-org' });
    expect(res.status).toBe(403);
    expect(res.body.error).toContain(hint);
  });

  it("leave other rules' callers their registration tokens", async () => {
    const proxy = buildProxy(fakes, { policy });
    const res = await proxy.call('post', '/register', postsubmit()).send({ scope: 'my-org' });
    expect(res.status).toBe(200);
  });
});

describe('DELETE /runner', () => {
  it('deletes the runner named after the caller, and only that one', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const mine = fakes.github.addRunner(ORG, {
      name: identity.compute.instanceName,
      status: 'online',
      labels: ['self-hosted', idLabel(identity)],
    });
    const other = fakes.github.addRunner(ORG, { name: uniqueName('gh-postsubmit'), status: 'online' });
    const res = await proxy.call('delete', '/runner', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: true, runner: { id: mine.id, name: identity.compute.instanceName } });
    expect(runnerNamed(identity.compute.instanceName)).toBeUndefined();
    expect(runnerNamed(other.name)).toBeDefined();
  });

  it('answers 200 when no such runner is registered (idempotent)', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    const res = await proxy.call('delete', '/runner', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      deleted: false,
      message: `no runner named "${identity.compute.instanceName}" is registered in my-org`,
    });
  });

  it('answers 409 while the runner is running a job', async () => {
    const proxy = buildProxy(fakes, { policy });
    const identity = presubmit();
    fakes.github.addRunner(ORG, {
      name: identity.compute.instanceName,
      status: 'online',
      busy: true,
      labels: [idLabel(identity)],
    });
    const res = await proxy.call('delete', '/runner', identity).send({ scope: 'my-org' });
    expect(res.status).toBe(409);
    expect(res.body.error).toContain('is running a job');
    expect(runnerNamed(identity.compute.instanceName)).toBeDefined();
  });

  it("answers 401 for a token without Compute Engine claims, and 403 for a scope outside the caller's rule", async () => {
    const proxy = buildProxy(fakes, { policy });
    const noCompute = await proxy
      .call('delete', '/runner', { email: presubmit().email })
      .send({ scope: 'my-org' });
    expect(noCompute.status).toBe(401);
    expect(noCompute.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    const otherScope = await proxy.call('delete', '/runner', presubmit()).send({ scope: 'my-org/app' });
    expect(otherScope.status).toBe(403);
  });
});
