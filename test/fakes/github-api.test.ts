import crypto from 'node:crypto';
import { jest } from '@jest/globals';
import { App } from '@octokit/app';
import { Octokit } from '@octokit/core';
import { DEFAULT_RUNNER_VERSION, startFakeGitHub } from '#fakes/github-api';
import type { AppJwtSigning, FakeGitHub, FakeRunner } from '#fakes/github-api';

const noop = (): void => {};
const ORG = { kind: 'org', org: 'acme' } as const;
const REPO = { kind: 'repo', owner: 'acme', repo: 'app' } as const;

describe('fake GitHub API', () => {
  let github: FakeGitHub;
  let installationId: number;
  let GitHubOctokit: typeof Octokit;

  beforeEach(async () => {
    github = await startFakeGitHub();
    github.addOrg('acme', { runnerGroups: ['gpu'] });
    github.addRepo('acme/app');
    github.addRepo('acme/infra');
    github.addEnterprise('big-corp');
    installationId = github.addInstallation({ account: 'acme' });
    github.addPat('ghp_admin');
    GitHubOctokit = Octokit.defaults({ baseUrl: github.baseUrl });
  });
  afterEach(() => github.close());

  const newApp = (
    privateKey = github.app.privateKeyPem,
    log = { debug: noop, info: noop, warn: noop, error: noop },
  ) => new App({ appId: github.app.id, privateKey, Octokit: GitHubOctokit, log });

  /** An installation token the way the proxy would get one: through auth-app. */
  async function installationToken(permissions?: Record<string, 'read' | 'write'>): Promise<string> {
    const auth = (await newApp().octokit.auth({ type: 'installation', installationId, permissions })) as {
      token: string;
    };
    return auth.token;
  }

  async function sandbox(
    path: string,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${github.url}/_sandbox${path}`, { method: 'POST', body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }

  describe('App authentication', () => {
    it('issues an installation token for a JWT and accepts it on the runner API', async () => {
      const octokit = await newApp().getInstallationOctokit(installationId);
      const { status, data } = await octokit.request('POST /orgs/{org}/actions/runners/registration-token', {
        org: 'acme',
      });

      expect(status).toBe(201);
      expect(data.token).toMatch(/^[A-Z0-9]{29}$/);
      const [tokenCall, ...more] = github.controls.callsTo(
        'POST',
        `/app/installations/${installationId}/access_tokens`,
      );
      expect(more).toHaveLength(0);
      expect(tokenCall?.headers.authorization).toMatch(/^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
      const [issued] = github.issuedTokens.installation;
      expect(issued?.token).toMatch(/^ghs_[A-Za-z0-9]{36,}$/);
      expect(issued?.permissions).toEqual({
        organization_self_hosted_runners: 'write',
        administration: 'write',
        metadata: 'read',
      });
      const [runnerCall] = github.controls.callsTo('POST', '/orgs/acme/actions/runners/registration-token');
      expect(runnerCall?.headers.authorization).toBe(`token ${issued?.token}`);
      expect(github.issuedTokens.runner).toEqual([
        { kind: 'registration', scope: ORG, token: data.token, expires_at: data.expires_at },
      ]);
    });

    it('accepts the PKCS#1 export of the key too (universal-github-app-jwt converts it)', async () => {
      const { data } = await newApp(github.app.privateKeyPkcs1Pem).octokit.request('GET /app');
      expect(data).toMatchObject({ id: github.app.id });
    });

    it('down-scopes a token to the permissions and repositories asked for', async () => {
      const app = newApp();
      const { token } = (await app.octokit.auth({
        type: 'installation',
        installationId,
        permissions: { organization_self_hosted_runners: 'write' },
        repositoryNames: ['app'],
      })) as { token: string };

      const [call] = github.controls.callsTo('POST', '/access_tokens');
      expect(call?.body).toEqual({
        permissions: { organization_self_hosted_runners: 'write' },
        repositories: ['app'],
      });
      expect(github.issuedTokens.installation[0]).toMatchObject({
        token,
        permissions: { organization_self_hosted_runners: 'write' },
        repositories: ['acme/app'],
      });
      const octokit = new GitHubOctokit({ auth: token });
      await expect(
        octokit.request('POST /orgs/{org}/actions/runners/registration-token', { org: 'acme' }),
      ).resolves.toMatchObject({ status: 201 });
      // No `administration` permission in this token, so the repository's runners are out of reach.
      await expect(
        octokit.request('POST /repos/{owner}/{repo}/actions/runners/registration-token', {
          owner: 'acme',
          repo: 'app',
        }),
      ).rejects.toMatchObject({
        status: 403,
        response: { data: { message: 'Resource not accessible by integration' } },
      });
    });

    it.each([
      [{ actions: 'write' }, 'The permissions requested are not granted to this installation.'],
      [{ metadata: 'write' }, 'The permissions requested are not granted to this installation.'],
    ] as const)('refuses permissions beyond the installation: %j', async (permissions, message) => {
      await expect(installationToken(permissions)).rejects.toMatchObject({
        status: 422,
        response: { data: { message } },
      });
    });

    it('refuses repositories outside the installation', async () => {
      const only = github.addInstallation({ account: 'acme', repositories: ['acme/app'] });
      await expect(
        newApp().octokit.auth({ type: 'installation', installationId: only, repositoryNames: ['infra'] }),
      ).rejects.toMatchObject({ status: 422 });
    });

    it('refuses a JWT signed with another key', async () => {
      const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      const otherKey = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const octokit = await newApp(otherKey).getInstallationOctokit(installationId);
      await expect(
        octokit.request('POST /orgs/{org}/actions/runners/registration-token', { org: 'acme' }),
      ).rejects.toMatchObject({
        status: 401,
        response: { data: { message: 'A JSON web token could not be decoded' } },
      });
      expect(github.issuedTokens.installation).toHaveLength(0);
    });

    it.each<[string, Record<string, unknown>, AppJwtSigning, number, RegExp]>([
      ['alg none', {}, 'none', 401, /could not be decoded/],
      ['HS256 keyed with the public key', {}, 'hs256-public-key', 401, /could not be decoded/],
      ['a key the App does not have', {}, 'rs256-other-key', 401, /could not be decoded/],
      [
        'exp more than 10 minutes after iat',
        { exp: Math.floor(Date.now() / 1000) + 3000 },
        'rs256',
        401,
        /'exp'\) is too far/,
      ],
      [
        'an expired exp',
        { exp: Math.floor(Date.now() / 1000) - 1 },
        'rs256',
        401,
        /'exp'\) must be a numeric/,
      ],
      [
        'iat in the future',
        { iat: Math.floor(Date.now() / 1000) + 300, exp: Math.floor(Date.now() / 1000) + 600 },
        'rs256',
        401,
        /'iat'\)/,
      ],
      ['another app id', { iss: '999' }, 'rs256', 404, /Integration not found/],
      ['no iss', { iss: undefined }, 'rs256', 401, /Missing 'issuer'/],
    ])('refuses a JWT with %s', async (_name, claims, signing, status, message) => {
      const jwt = github.signAppJwt(claims, signing);
      const request = new GitHubOctokit().request('GET /app', {
        headers: { authorization: `bearer ${jwt}` },
      });
      await expect(request).rejects.toMatchObject({
        status,
        response: { data: { message: expect.stringMatching(message) } },
      });
    });

    it.each([
      ['the numeric app id as iss', (g: FakeGitHub) => ({ iss: g.app.id })],
      ['the client ID as iss', (g: FakeGitHub) => ({ iss: g.app.clientId })],
      // The example in GitHub's docs: iat 60 s back, exp 10 min ahead, so 660 s apart.
      [
        'the timing of GitHub’s docs',
        () => ({ iat: Math.floor(Date.now() / 1000) - 60, exp: Math.floor(Date.now() / 1000) + 600 }),
      ],
    ])('accepts a JWT with %s', async (_name, claims) => {
      const jwt = github.signAppJwt(claims(github));
      const { status } = await new GitHubOctokit().request('GET /app', {
        headers: { authorization: `bearer ${jwt}` },
      });
      expect(status).toBe(200);
    });

    it("lets auth-app correct a skewed clock from GitHub's Date header", async () => {
      github.setClockOffset(-20 * 60);
      const warn = jest.fn();
      const { status } = await newApp(undefined, {
        debug: noop,
        info: noop,
        warn,
        error: noop,
      }).octokit.request('GET /app');
      expect(status).toBe(200);
      expect(github.controls.callsTo('GET', '/app')).toHaveLength(2);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/different by -1200 seconds/));
    });

    it('finds installations by org and repository, with the JWT only', async () => {
      const app = newApp();
      const { data } = await app.octokit.request('GET /orgs/{org}/installation', { org: 'ACME' });
      expect(data).toMatchObject({ id: installationId, app_id: github.app.id, target_type: 'Organization' });
      expect(data.access_tokens_url).toBe(
        `${github.baseUrl}/app/installations/${installationId}/access_tokens`,
      );
      await expect(
        app.octokit.request('GET /repos/{owner}/{repo}/installation', { owner: 'acme', repo: 'app' }),
      ).resolves.toMatchObject({ data: { id: installationId } });
      await expect(
        app.octokit.request('GET /repos/{owner}/{repo}/installation', { owner: 'acme', repo: 'nope' }),
      ).rejects.toMatchObject({ status: 404, response: { data: { message: 'Not Found' } } });
      await expect(
        new GitHubOctokit({ auth: 'ghp_admin' }).request('GET /orgs/{org}/installation', { org: 'acme' }),
      ).rejects.toMatchObject({ status: 401 });
    });

    it('refuses an installation token once it has expired', async () => {
      const octokit = new GitHubOctokit({ auth: await installationToken() });
      const list = () => octokit.request('GET /orgs/{org}/actions/runners', { org: 'acme' });
      await expect(list()).resolves.toMatchObject({ status: 200 });
      github.setClockOffset(3601);
      await expect(list()).rejects.toMatchObject({
        status: 401,
        response: { data: { message: 'Bad credentials' } },
      });
    });

    it.each([
      ['no credentials', undefined, 'Requires authentication'],
      ['an unknown token', 'ghp_nobody', 'Bad credentials'],
    ])('answers 401 for %s', async (_name, auth, message) => {
      const octokit = auth === undefined ? new GitHubOctokit() : new GitHubOctokit({ auth });
      await expect(octokit.request('GET /orgs/{org}/actions/runners', { org: 'acme' })).rejects.toMatchObject(
        {
          status: 401,
          response: { data: { message, documentation_url: 'https://docs.github.com/rest' } },
        },
      );
    });
  });

  describe('runner scopes', () => {
    it('gives a PAT an enterprise registration token, and refuses an installation token there', async () => {
      const pat = new GitHubOctokit({ auth: 'ghp_admin' });
      const { status, headers } = await pat.request(
        'POST /enterprises/{enterprise}/actions/runners/registration-token',
        { enterprise: 'big-corp' },
      );
      expect(status).toBe(201);
      expect(headers['x-oauth-scopes']).toContain('manage_runners:enterprise');

      const octokit = new GitHubOctokit({ auth: await installationToken() });
      await expect(
        octokit.request('POST /enterprises/{enterprise}/actions/runners/registration-token', {
          enterprise: 'big-corp',
        }),
      ).rejects.toMatchObject({
        status: 403,
        response: { data: { message: 'Resource not accessible by integration' } },
      });
    });

    it('keeps an installation to its own org and repositories', async () => {
      github.addOrg('other');
      github.addRepo('other/app');
      const octokit = new GitHubOctokit({ auth: await installationToken() });
      await expect(
        octokit.request('GET /orgs/{org}/actions/runners', { org: 'other' }),
      ).rejects.toMatchObject({
        status: 403,
      });
      await expect(
        octokit.request('GET /repos/{owner}/{repo}/actions/runners', { owner: 'other', repo: 'app' }),
      ).rejects.toMatchObject({ status: 404 });
      await expect(
        octokit.request('GET /orgs/{org}/actions/runners', { org: 'ghost' }),
      ).rejects.toMatchObject({
        status: 404,
        response: { data: { message: 'Not Found' } },
      });
    });

    it('lists runner groups for orgs and enterprises but not repositories', async () => {
      const pat = new GitHubOctokit({ auth: 'ghp_admin' });
      const { data } = await pat.request('GET /orgs/{org}/actions/runner-groups', { org: 'acme' });
      expect(data.total_count).toBe(2);
      expect(data.runner_groups[0]).toMatchObject({
        id: 1,
        name: 'Default',
        visibility: 'all',
        default: true,
        inherited: false,
        allows_public_repositories: true,
        runners_url: `${github.baseUrl}/orgs/acme/actions/runner-groups/1/runners`,
      });
      expect(data.runner_groups[1]).toMatchObject({ id: 2, name: 'gpu', default: false });
      await expect(
        pat.request('GET /enterprises/{enterprise}/actions/runner-groups', { enterprise: 'big-corp' }),
      ).resolves.toMatchObject({ data: { total_count: 1 } });
      await expect(pat.request('GET /repos/acme/app/actions/runner-groups')).rejects.toMatchObject({
        status: 404,
      });
    });
  });

  describe('JIT runners', () => {
    const generate = (octokit: Octokit, body: Record<string, unknown>) =>
      octokit.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
        org: 'acme',
        name: 'ci-1',
        runner_group_id: 2,
        labels: ['self-hosted', 'gpu'],
        ...body,
      });

    it('generates a config for an offline runner, then 409 for the same name', async () => {
      const octokit = new GitHubOctokit({ auth: await installationToken() });
      const { status, data } = await generate(octokit, {});

      expect(status).toBe(201);
      expect(data.runner).toMatchObject({
        name: 'ci-1',
        os: 'unknown',
        status: 'offline',
        busy: false,
        runner_group_id: 2,
      });
      expect(data.runner.labels).toEqual([
        { id: expect.any(Number), name: 'self-hosted', type: 'read-only' },
        { id: expect.any(Number), name: 'gpu', type: 'custom' },
      ]);
      expect(typeof data.encoded_jit_config).toBe('string');
      expect(github.listRunners(ORG).map((r) => r.name)).toEqual(['ci-1']);
      await expect(generate(octokit, {})).rejects.toMatchObject({
        status: 409,
        response: { data: { message: 'Already exists - A runner with the name ci-1 already exists.' } },
      });
    });

    it.each([
      [
        'no runner_group_id',
        { runner_group_id: undefined },
        422,
        'Invalid input: object is missing required key: runner_group_id',
      ],
      ['no labels', { labels: [] }, 422, expect.stringMatching(/labels/)],
      [
        '101 labels',
        { labels: Array.from({ length: 101 }, (_, i) => `l${i}`) },
        422,
        expect.stringMatching(/labels/),
      ],
      ['an unknown runner group', { runner_group_id: 99 }, 404, 'Not Found'],
    ])('refuses %s', async (_name, body, status, message) => {
      const octokit = new GitHubOctokit({ auth: 'ghp_admin' });
      await expect(generate(octokit, body)).rejects.toMatchObject({
        status,
        response: { data: { message } },
      });
      expect(github.listRunners(ORG)).toHaveLength(0);
    });

    it('takes only the Default group for a repository', async () => {
      const pat = new GitHubOctokit({ auth: 'ghp_admin' });
      const body = { owner: 'acme', repo: 'app', name: 'r-1', labels: ['x'] };
      await expect(
        pat.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
          ...body,
          runner_group_id: 2,
        }),
      ).rejects.toMatchObject({ status: 404 });
      await expect(
        pat.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
          ...body,
          runner_group_id: 1,
        }),
      ).resolves.toMatchObject({ status: 201 });
    });

    it('starts a runner from its config once, and never from a forged one', async () => {
      const { data } = await generate(new GitHubOctokit({ auth: 'ghp_admin' }), {});
      const started = await sandbox('/runners/jit', { encoded_jit_config: data.encoded_jit_config });
      expect(started).toMatchObject({ status: 200, body: { id: data.runner.id, status: 'online' } });
      expect(github.issuedTokens.jitConfigs).toEqual([
        { runnerId: data.runner.id, name: 'ci-1', scope: ORG, used: true },
      ]);

      expect((await sandbox('/runners/jit', { encoded_jit_config: data.encoded_jit_config })).status).toBe(
        409,
      );
      const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');
      const forged = encode({ '.credentials': encode({ Data: { secret: 'guess' } }) });
      expect((await sandbox('/runners/jit', { encoded_jit_config: forged })).status).toBe(401);
    });

    it('reports no version until the runner connects, then the one it connected with', async () => {
      const pat = new GitHubOctokit({ auth: 'ghp_admin' });
      const { data } = await generate(pat, {});
      expect(data.runner.version).toBeNull();
      const read = async () =>
        (
          await pat.request('GET /orgs/{org}/actions/runners/{runner_id}', {
            org: 'acme',
            runner_id: data.runner.id,
          })
        ).data as { version: string | null };
      expect((await read()).version).toBeNull();
      const bad = await sandbox('/runners/jit', {
        encoded_jit_config: data.encoded_jit_config,
        version: 'latest',
      });
      expect(bad.status).toBe(400);
      const started = await sandbox('/runners/jit', {
        encoded_jit_config: data.encoded_jit_config,
        version: '2.323.0',
      });
      expect(started).toMatchObject({ status: 200, body: { version: '2.323.0' } });
      expect((await read()).version).toBe('2.323.0');
      // Without one named, the stand-in connects with the default release.
      const other = await generate(pat, { name: 'ci-2' });
      await sandbox('/runners/jit', { encoded_jit_config: other.data.encoded_jit_config });
      expect(github.listRunners(ORG).find((r) => r.name === 'ci-2')?.version).toBe(DEFAULT_RUNNER_VERSION);
    });
  });

  describe('listing and deleting runners', () => {
    it('paginates with a Link header and filters by name', async () => {
      for (let i = 1; i <= 5; i += 1) github.addRunner(REPO, { name: `r-${i}` });
      const octokit = new GitHubOctokit({ auth: await installationToken() });
      const route = 'GET /repos/{owner}/{repo}/actions/runners' as const;

      const first = await octokit.request(route, { owner: 'acme', repo: 'app', per_page: 2 });
      expect(first.data.total_count).toBe(5);
      expect(first.data.runners.map((r) => r.name)).toEqual(['r-1', 'r-2']);
      expect(first.headers.link).toBe(
        `<${github.baseUrl}/repos/acme/app/actions/runners?per_page=2&page=2>; rel="next", ` +
          `<${github.baseUrl}/repos/acme/app/actions/runners?per_page=2&page=3>; rel="last"`,
      );
      const last = await octokit.request(route, { owner: 'acme', repo: 'app', per_page: 2, page: 3 });
      expect(last.data.runners.map((r) => r.name)).toEqual(['r-5']);
      expect(last.headers.link).toContain('rel="prev"');
      expect(last.headers.link).not.toContain('rel="next"');

      const byName = await octokit.request(route, { owner: 'acme', repo: 'app', name: 'r-4' });
      expect(byName.data).toMatchObject({ total_count: 1, runners: [{ name: 'r-4', status: 'online' }] });
    });

    it('deletes an idle runner, but not a busy one (422)', async () => {
      const runner = github.addRunner(ORG, { name: 'busy-1', busy: true });
      const octokit = new GitHubOctokit({ auth: await installationToken() });
      const remove = () =>
        octokit.request('DELETE /orgs/{org}/actions/runners/{runner_id}', {
          org: 'acme',
          runner_id: runner.id,
        });

      await expect(remove()).rejects.toMatchObject({
        status: 422,
        response: { data: { message: 'Bad request - Runner "busy-1" is still running a job.' } },
      });
      github.setRunner(runner.id, { busy: false });
      await expect(remove()).resolves.toMatchObject({ status: 204 });
      await expect(
        octokit.request('GET /orgs/{org}/actions/runners/{runner_id}', { org: 'acme', runner_id: runner.id }),
      ).rejects.toMatchObject({ status: 404 });
      await expect(remove()).rejects.toMatchObject({ status: 404 });
    });

    it('lets a test hand a job to a runner between a list and a re-read (a fault with `before`)', async () => {
      const runner = github.addRunner(ORG, { name: 'vm-1', labels: ['self-hosted', 'gpu'], ephemeral: true });
      const octokit = new GitHubOctokit({ auth: await installationToken() });
      let job: { id: number } | undefined;
      github.controls.addFault({
        method: 'GET',
        path: `/orgs/acme/actions/runners/${runner.id}`,
        times: 1,
        before: () => {
          job = github.queueJob({ repository: 'acme/app', labels: ['gpu'] });
        },
      });
      const listed = await octokit.request('GET /orgs/{org}/actions/runners', { org: 'acme' });
      expect(listed.data.runners).toEqual([expect.objectContaining({ id: runner.id, busy: false })]);
      const reread = await octokit.request('GET /orgs/{org}/actions/runners/{runner_id}', {
        org: 'acme',
        runner_id: runner.id,
      });
      expect(reread.data.busy).toBe(true);
      expect(github.getJob(job!.id)).toMatchObject({ status: 'in_progress', runner_id: runner.id });
    });

    it('does not show one scope’s runner under another', async () => {
      const runner = github.addRunner(REPO, { name: 'r' });
      const pat = new GitHubOctokit({ auth: 'ghp_admin' });
      await expect(
        pat.request('GET /orgs/{org}/actions/runners/{runner_id}', { org: 'acme', runner_id: runner.id }),
      ).rejects.toMatchObject({ status: 404 });
    });
  });

  describe('sandbox runner binary', () => {
    it('registers with a real registration token and unregisters with a remove token', async () => {
      const octokit = await newApp().getInstallationOctokit(installationId);
      const scope = { owner: 'acme', repo: 'app' };
      const { data: reg } = await octokit.request(
        'POST /repos/{owner}/{repo}/actions/runners/registration-token',
        scope,
      );
      const url = 'https://github.com/acme/app';
      const body = { url, token: reg.token, name: 'vm-1', labels: ['linux-x64'], ephemeral: true };

      const registered = await sandbox('/runners/register', body);
      expect(registered).toMatchObject({
        status: 201,
        body: { name: 'vm-1', status: 'online', ephemeral: true },
      });
      const { data: listed } = await octokit.request('GET /repos/{owner}/{repo}/actions/runners', scope);
      expect(listed.runners.map((r: { name: string }) => r.name)).toEqual(['vm-1']);
      expect((listed.runners[0] as FakeRunner).labels.map((l) => `${l.name}:${l.type}`)).toEqual([
        'self-hosted:read-only',
        'Linux:read-only',
        'X64:read-only',
        'linux-x64:custom',
      ]);

      expect((await sandbox('/runners/register', body)).status).toBe(409);
      const replaced = await sandbox('/runners/register', { ...body, replace: true });
      expect(replaced.status).toBe(201);
      expect(replaced.body.id).not.toBe(registered.body.id);
      expect((await sandbox('/runners/register', { ...body, url: 'https://github.com/acme' })).status).toBe(
        401,
      );
      expect((await sandbox('/runners/register', { ...body, token: 'NOPE' })).status).toBe(401);

      const { data: rm } = await octokit.request(
        'POST /repos/{owner}/{repo}/actions/runners/remove-token',
        scope,
      );
      expect((await sandbox('/runners/remove', { url, token: reg.token, name: 'vm-1' })).status).toBe(401);
      expect((await sandbox('/runners/remove', { url, token: rm.token, name: 'vm-1' })).status).toBe(204);
      expect(github.listRunners(REPO)).toEqual([]);
    });

    it('resolves a runner group by name and reports busy and exit', async () => {
      const { data: reg } = await new GitHubOctokit({ auth: 'ghp_admin' }).request(
        'POST /orgs/{org}/actions/runners/registration-token',
        { org: 'acme' },
      );
      const body = {
        url: 'https://github.com/acme',
        token: reg.token,
        name: 'g-1',
        labels: [],
        runner_group: 'gpu',
      };
      expect((await sandbox('/runners/register', { ...body, runner_group: 'nope' })).status).toBe(404);
      const { body: runner } = await sandbox('/runners/register', { ...body, ephemeral: true });
      expect(runner.runner_group_id).toBe(2);

      expect((await sandbox(`/runners/${String(runner.id)}/busy`, { busy: true })).body.busy).toBe(true);
      expect((await sandbox(`/runners/${String(runner.id)}/exit`, {})).body.deleted).toBe(true);
      expect(github.listRunners(ORG)).toEqual([]);
    });
  });

  describe('rate limits', () => {
    it('sends rate-limit headers and refuses requests once the budget is spent', async () => {
      const octokit = new GitHubOctokit({ auth: await installationToken() });
      const { headers } = await octokit.request('GET /orgs/{org}/actions/runners', { org: 'acme' });
      expect(headers).toMatchObject({
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '4998', // the access_tokens call counted too
        'x-ratelimit-used': '2',
        'x-ratelimit-resource': 'core',
      });
      expect(Number(headers['x-ratelimit-reset'])).toBeGreaterThan(Date.now() / 1000);

      github.setRateLimitRemaining(0);
      await expect(octokit.request('GET /orgs/{org}/actions/runners', { org: 'acme' })).rejects.toMatchObject(
        {
          status: 403,
          response: {
            headers: { 'x-ratelimit-remaining': '0' },
            data: { message: `API rate limit exceeded for installation ID ${installationId}.` },
          },
        },
      );
    });

    it('injects a secondary rate limit the client sees with retry-after', async () => {
      github.injectSecondaryRateLimit({ path: '/registration-token', retryAfterSeconds: 7 });
      const octokit = new GitHubOctokit({ auth: 'ghp_admin' });
      const request = () =>
        octokit.request('POST /orgs/{org}/actions/runners/registration-token', { org: 'acme' });

      await expect(request()).rejects.toMatchObject({
        status: 403,
        response: {
          headers: { 'retry-after': '7' },
          data: { message: expect.stringMatching(/secondary rate limit/) },
        },
      });
      await expect(request()).resolves.toMatchObject({ status: 201 });
    });
  });

  it('answers an unknown route with a GitHub 404', async () => {
    await expect(new GitHubOctokit({ auth: 'ghp_admin' }).request('GET /nope')).rejects.toMatchObject({
      status: 404,
      response: { data: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } },
    });
  });

  describe('renamed repositories', () => {
    const admin = { authorization: 'token ghp_admin' };

    it('redirects a POST for the former name with 307 to /repositories/{id}, as GitHub does', async () => {
      github.renameRepo('acme/app', 'acme/web');
      const res = await fetch(`${github.url}/repos/acme/app/actions/runners/registration-token`, {
        method: 'POST',
        headers: admin,
        redirect: 'manual',
      });
      expect(res.status).toBe(307);
      expect(res.headers.get('location')).toMatch(
        new RegExp(`^${github.url}/repositories/\\d+/actions/runners/registration-token$`),
      );
      expect(await res.json()).toMatchObject({ message: 'Temporary Redirect' });
    });

    it('redirects a GET with 301, and serves the repository at its new name and at /repositories/{id}', async () => {
      github.renameRepo('acme/app', 'acme/web');
      const moved = await fetch(`${github.url}/repos/acme/app/actions/runners`, {
        headers: admin,
        redirect: 'manual',
      });
      expect(moved.status).toBe(301);
      const followed = await fetch(`${github.url}/repos/acme/app/actions/runners`, { headers: admin });
      expect(followed.status).toBe(200);
      const byName = await fetch(`${github.url}/repos/acme/web/actions/runners`, { headers: admin });
      expect(byName.status).toBe(200);
    });

    it('keeps the runners of a renamed repository', () => {
      github.addRunner(REPO, { name: 'r1' });
      github.renameRepo('acme/app', 'acme/web');
      expect(github.listRunners({ kind: 'repo', owner: 'acme', repo: 'web' }).map((r) => r.name)).toEqual([
        'r1',
      ]);
    });
  });
});
