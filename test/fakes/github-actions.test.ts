import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { App } from '@octokit/app';
import { Octokit } from '@octokit/core';
import { Webhooks } from '@octokit/webhooks';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';

const noop = (): void => {};
const SECRET = 'fake-github-webhook-secret';

/** A loopback webhook receiver answering with `status()`; records what it got. */
async function startReceiver(status: () => number = () => 200) {
  const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status(), { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    received,
    events: () =>
      received.map(
        (r) => `${String(r.headers['x-github-event'])}:${(JSON.parse(r.body) as { action: string }).action}`,
      ),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('fake GitHub: jobs and the App webhook', () => {
  let github: FakeGitHub;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let status = 200;
  let installationId: number;

  beforeEach(async () => {
    github = await startFakeGitHub();
    receiver = await startReceiver(() => status);
    status = 200;
    github.addOrg('acme', { runnerGroups: ['linux'] });
    github.addRepo('acme/app');
    github.addRepo('other/thing');
    installationId = github.addInstallation({
      account: 'acme',
      permissions: { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' },
    });
    github.setWebhook({ url: receiver.url, secret: SECRET });
  });
  afterEach(async () => {
    await github.deliveriesSettled();
    await Promise.all([github.close(), receiver.close()]);
  });

  const app = () =>
    new App({
      appId: github.app.id,
      privateKey: github.app.privateKeyPem,
      Octokit: Octokit.defaults({ baseUrl: github.baseUrl }),
      log: { debug: noop, info: noop, warn: noop, error: noop },
    });

  it('sends a signed queued delivery with GitHub-Hookshot headers', async () => {
    const job = github.queueJob({ repository: 'acme/app', labels: ['self-hosted', 'linux'] });
    await github.deliveriesSettled();
    expect(receiver.received).toHaveLength(1);
    const [{ headers, body }] = receiver.received as [{ headers: http.IncomingHttpHeaders; body: string }];
    expect(headers).toMatchObject({
      'x-github-event': 'workflow_job',
      'x-github-hook-installation-target-type': 'integration',
      'content-type': 'application/json',
    });
    expect(await new Webhooks({ secret: SECRET }).verify(body, String(headers['x-hub-signature-256']))).toBe(
      true,
    );
    expect(JSON.parse(body)).toMatchObject({
      action: 'queued',
      workflow_job: { id: job.id, status: 'queued', labels: ['self-hosted', 'linux'], runner_id: null },
      repository: { full_name: 'acme/app', owner: { login: 'acme' } },
      organization: { login: 'acme' },
      installation: { id: installationId },
    });
    expect(github.deliveries[0]).toMatchObject({
      status: 'OK',
      status_code: 200,
      event: 'workflow_job',
      action: 'queued',
    });
  });

  it('hands a job to an idle runner whose labels cover it, then completes it and removes the ephemeral runner', async () => {
    const wrong = github.addRunner(
      { kind: 'org', org: 'acme' },
      { name: 'arm', labels: ['self-hosted', 'arm64'] },
    );
    const job = github.queueJob({ repository: 'acme/app', labels: ['Self-Hosted', 'LINUX'] });
    expect(github.getJob(job.id)?.status).toBe('queued');
    const runner = github.addRunner(
      { kind: 'org', org: 'acme' },
      { name: 'vm-1', labels: ['self-hosted', 'linux', 'x64'], ephemeral: true, runnerGroupId: 2 },
    );
    expect(github.getJob(job.id)).toMatchObject({
      status: 'in_progress',
      runner_id: runner.id,
      runner_name: 'vm-1',
      runner_group_name: 'linux',
    });
    expect(github.listRunners({ kind: 'org', org: 'acme' }).find((r) => r.id === runner.id)?.busy).toBe(true);
    const answer = await fetch(`${github.url}/_sandbox/runners/${runner.id}/job`);
    expect(((await answer.json()) as { id: number }).id).toBe(job.id);

    github.completeJob(job.id, 'success');
    expect(github.getJob(job.id)).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(github.listRunners({ kind: 'org', org: 'acme' }).map((r) => r.name)).toEqual([wrong.name]);
    await github.deliveriesSettled();
    expect(receiver.events()).toEqual([
      'workflow_job:queued',
      'workflow_job:in_progress',
      'workflow_job:completed',
    ]);
  });

  it('completes jobs by itself when told to', async () => {
    github.autoCompleteJobsAfterMs = 5;
    github.addRunner({ kind: 'org', org: 'acme' }, { name: 'vm-2', labels: ['self-hosted'] });
    const job = github.queueJob({ repository: 'acme/app', labels: ['self-hosted'] });
    for (let i = 0; i < 100 && github.getJob(job.id)?.status !== 'completed'; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(github.getJob(job.id)?.status).toBe('completed');
  });

  it('lists deliveries newest first with cursor pages, shows payloads, and redelivers failed ones', async () => {
    status = 503;
    const jobs = [1, 2, 3].map(() => github.queueJob({ repository: 'acme/app', labels: ['gpu'] }));
    await github.deliveriesSettled();
    const octokit = app().octokit;
    const first = await octokit.request('GET /app/hook/deliveries', { per_page: 2 });
    expect(first.data.map((d) => d.status)).toEqual([
      'Invalid HTTP Response: 503',
      'Invalid HTTP Response: 503',
    ]);
    expect(first.data[0]).not.toHaveProperty('request');
    const cursor = new URL(/<([^>]+)>; rel="next"/.exec(String(first.headers.link))![1]!).searchParams.get(
      'cursor',
    );
    const second = await octokit.request('GET /app/hook/deliveries', { per_page: 2, cursor: cursor! });
    expect(second.data).toHaveLength(1);
    expect(second.headers.link).toBeUndefined();
    const ids = [...first.data, ...second.data].map((d) => Number(d.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));

    const oldest = second.data[0]!;
    const { data: detail } = await octokit.request('GET /app/hook/deliveries/{delivery_id}', {
      delivery_id: Number(oldest.id),
    });
    expect((detail.request.payload as { workflow_job: { id: number } }).workflow_job.id).toBe(jobs[0]!.id);

    status = 200;
    const attempt = await octokit.request('POST /app/hook/deliveries/{delivery_id}/attempts', {
      delivery_id: Number(oldest.id),
    });
    expect(attempt.status).toBe(202);
    await github.deliveriesSettled();
    expect(github.deliveries.at(-1)).toMatchObject({
      guid: oldest.guid,
      redelivery: true,
      status: 'OK',
      status_code: 200,
    });
    expect(receiver.received).toHaveLength(4);
  });

  it('drops deliveries on request: recorded as failed, never sent', async () => {
    github.dropNextDeliveries(1);
    github.queueJob({ repository: 'acme/app', labels: ['gpu'] });
    github.queueJob({ repository: 'acme/app', labels: ['gpu'] });
    await github.deliveriesSettled();
    expect(github.deliveries.map((d) => [d.status, d.status_code])).toEqual([
      ['failed to connect to host', 0],
      ['OK', 200],
    ]);
    expect(receiver.received).toHaveLength(1);
    github.deliverySettings.dropShare = 1;
    github.queueJob({ repository: 'acme/app', labels: ['gpu'] });
    expect(github.deliveries.at(-1)?.status).toBe('failed to connect to host');
  });

  it('serves a job to an installation token with actions permission only', async () => {
    const job = github.queueJob({ repository: 'acme/app', labels: ['gpu'] });
    const token = async (permissions: Record<string, 'read'>) =>
      ((await app().octokit.auth({ type: 'installation', installationId, permissions })) as { token: string })
        .token;
    const get = async (repo: string, credential: string) =>
      fetch(`${github.url}/repos/${repo}/actions/jobs/${job.id}`, {
        headers: { authorization: `token ${credential}` },
      });
    const reader = await token({ actions: 'read' });
    const ok = await get('acme/app', reader);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ id: job.id, status: 'queued' });
    expect((await get('acme/app', await token({ metadata: 'read' }))).status).toBe(403);
    expect((await get('other/thing', reader)).status).toBe(404);
    expect((await fetch(`${github.url}/repos/acme/app/actions/jobs/${job.id}`)).status).toBe(401);
  });

  it('is driven over /_sandbox: webhook target, queueing and completing jobs', async () => {
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${github.url}/_sandbox${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    expect((await call('PUT', '/webhook', { url: null })).status).toBe(204);
    const created = await call('POST', '/jobs', { repository: 'acme/app', labels: ['gpu'] });
    expect(created.status).toBe(201);
    const job = (await created.json()) as { id: number };
    expect(github.deliveries).toHaveLength(0);
    expect((await call('PUT', '/webhook', { url: receiver.url, secret: SECRET, dropShare: 0 })).status).toBe(
      204,
    );
    expect((await call('POST', `/jobs/${job.id}/complete`, { conclusion: 'cancelled' })).status).toBe(200);
    expect((await (await call('GET', `/jobs/${job.id}`)).json()) as object).toMatchObject({
      conclusion: 'cancelled',
    });
    expect((await call('PUT', '/webhook', { url: receiver.url, secret: SECRET, dropShare: 2 })).status).toBe(
      400,
    );
    await github.deliveriesSettled();
    expect(receiver.events()).toEqual(['workflow_job:completed']);
  });
});
