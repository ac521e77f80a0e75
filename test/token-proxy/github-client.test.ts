import { instanceIdLabel } from '#token-proxy';
import { buildProxy, startProxyFakes, vm } from '#test-support/token-proxy-harness';
import type { Proxy, ProxyFakes, ProxyOptions } from '#test-support/token-proxy-harness';
import { startSilentFront } from '#test-support/silent-front';
import type { SilentFront } from '#test-support/silent-front';

/**
 * How the proxy's GitHub client behaves at the edges: rate limits, conflicts, redirects and a GitHub that
 * never answers, seen as a VM sees them (status, body) and as GitHub sees them (the calls the fake got).
 */
let fakes: ProxyFakes;
let front: SilentFront;
beforeAll(async () => {
  fakes = await startProxyFakes();
  front = await startSilentFront(fakes.github.baseUrl);
});
afterAll(async () => {
  await front.close();
  await fakes.close();
});
afterEach(() => {
  front.silence(undefined);
  fakes.github.controls.clearFaults();
});

/** Calls the fake GitHub received after `mark` (an index into its call list). */
const since = (mark: number, method: string, path: string | RegExp) =>
  fakes.github.controls.calls
    .slice(mark)
    .filter((c) => c.method === method && (typeof path === 'string' ? c.path === path : path.test(c.path)));

// Issue 14 §3. GitHub's rule: `retry-after` if present; else the reset only when the budget is exhausted;
// else at least a minute, backing off exponentially.
// https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately
describe('a secondary rate limit', () => {
  it('is waited out for a minute, not until the reset, when the budget is not exhausted', async () => {
    const proxy = buildProxy(fakes);
    const reset = Math.floor(Date.now() / 1000) + 45 * 60;
    fakes.github.controls.addFault({
      path: '/orgs/my-org/actions/runners/registration-token',
      status: 403,
      headers: {
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '4870',
        'x-ratelimit-used': '130',
        'x-ratelimit-reset': String(reset),
        'x-ratelimit-resource': 'core',
      },
      body: {
        message:
          'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.',
        documentation_url:
          'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
      },
    });
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('60');
    expect(res.body.error).toMatch(
      /GitHub rate limit reached while creating a registration token for my-org/,
    );
  });
});

// Issue 14 §6(c): plugin-retry repeated a 409 three times before the proxy's conflict handling ran.
describe('a conflict', () => {
  it('is never retried blindly: one generate-jitconfig call for a name an online runner holds', async () => {
    const proxy = buildProxy(fakes);
    fakes.github.addRunner({ kind: 'org', org: 'my-org' }, { name: 'gh-runner-taken', status: 'online' });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy
      .call('post', '/jitconfig', { compute: vm('gh-runner-taken') })
      .send({ scope: 'my-org', labels: ['self-hosted'] });
    expect(res.status).toBe(409);
    expect(since(mark, 'POST', '/orgs/my-org/actions/runners/generate-jitconfig')).toHaveLength(1);
  });
});

// A write holds the one turn of the mutation scheduler while it runs: its retries must stop at the call's
// deadline, or a slowly failing GitHub would hold back every other write for all its attempts.
describe('a GitHub that keeps failing slowly', () => {
  it('is given up on at the deadline of the whole call, retries included', async () => {
    const proxy = buildProxy(fakes, { requestTimeoutMs: 1500, retries: 3, deadlineMs: 60_000 });
    fakes.github.controls.addFault({
      path: '/orgs/my-org/actions/runners/generate-jitconfig',
      status: 500,
      delayMs: 600,
      body: { message: 'Server Error' },
    });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy
      .call('post', '/jitconfig', { compute: vm(`gh-runner-slow-${Date.now().toString(36)}`) })
      .send({ scope: 'my-org', labels: ['self-hosted'] });
    expect(res.status).toBe(504);
    expect(res.body.error).toMatch(/^GitHub did not answer in time while creating a JIT config/);
    // Three retries would make four attempts; the deadline ends them after two or three.
    expect(since(mark, 'POST', '/orgs/my-org/actions/runners/generate-jitconfig').length).toBeLessThan(4);
  }, 30_000);
});

// Issue 15 §4: no request with a credential follows a redirect.
describe('a redirect from GitHub', () => {
  beforeAll(() => {
    // The case: DENIED_SCOPES=my-org/secret-repo, and my-org/old-name is its former name.
    fakes.github.addRepo('my-org/old-name');
    fakes.github.renameRepo('my-org/old-name', 'my-org/secret-repo');
  });

  it.each([
    ['a PAT', 'pat', 'POST', '/repos/my-org/old-name/actions/runners/registration-token', 307],
    [
      'a GitHub App finding its installation',
      'app-discover',
      'GET',
      '/repos/my-org/old-name/installation',
      301,
    ],
  ] as const)(
    'is not followed with %s: 502 saying the scope has moved, and nothing reaches the denied repository',
    async (_, credentials, method, path, status) => {
      const proxy = buildProxy(fakes, { credentials, denied: ['my-org/secret-repo'] });
      const mark = fakes.github.controls.calls.length;
      const issued = fakes.github.issuedTokens.runner.length;
      const res = await proxy.call('post', '/register').send({ scope: 'my-org/old-name' });
      expect(res.status).toBe(502);
      expect(res.body.error).toMatch(
        new RegExp(
          `^GitHub answered with a redirect \\(HTTP ${status}\\) while creating a registration token for my-org/old-name: the scope has moved`,
        ),
      );
      expect(since(mark, method, path)).toHaveLength(1);
      expect(since(mark, 'POST', /^\/repositories\//)).toHaveLength(0);
      expect(since(mark, 'GET', /^\/repositories\//)).toHaveLength(0);
      expect(fakes.github.issuedTokens.runner.length).toBe(issued);
    },
  );

  it('still leaves the denied repository refused by its own name', async () => {
    const proxy = buildProxy(fakes, { denied: ['my-org/secret-repo'] });
    const res = await proxy.call('post', '/register').send({ scope: 'my-org/secret-repo' });
    expect(res.status).toBe(403);
  });
});

// Issue 14 §1: every outbound call of the proxy has a deadline. Here GitHub accepts the connection and never
// answers, on each distinct path the proxy takes to it.
describe('a GitHub that never answers', () => {
  const DEADLINE_MS = 300;
  const REQUEST_TIMEOUT_MS = 1000;

  type Call = (proxy: Proxy) => Promise<{ status: number; body: { error?: string } }>;
  const register: Call = async (proxy) => proxy.call('post', '/register').send({ scope: 'my-org' });
  const jit =
    (name: string): Call =>
    async (proxy) =>
      proxy
        .call('post', '/jitconfig', { compute: vm(name) })
        .send({ scope: 'my-org', labels: ['self-hosted'] });
  const removeRunner =
    (name: string): Call =>
    async (proxy) =>
      proxy.call('delete', '/runner', { compute: vm(name) }).send({ scope: 'my-org' });

  interface SilentCase {
    what: string;
    credentials: NonNullable<ProxyOptions['credentials']>;
    method: string;
    path: string | RegExp;
    call: Call;
    action: RegExp;
    /** A runner of this name is registered (offline) first, for DELETE /runner to find. */
    existingRunner?: string;
  }
  const cases: SilentCase[] = [
    {
      what: 'a registration token (PAT)',
      credentials: 'pat',
      method: 'POST',
      path: '/orgs/my-org/actions/runners/registration-token',
      call: register,
      action: /creating a registration token for my-org/,
    },
    {
      what: "the App's installation look-up (App JWT)",
      credentials: 'app-discover',
      method: 'GET',
      path: '/orgs/my-org/installation',
      call: register,
      action: /creating a registration token for my-org/,
    },
    {
      what: "the App's installation token",
      credentials: 'app',
      method: 'POST',
      path: /^\/app\/installations\/\d+\/access_tokens$/,
      call: register,
      action: /creating a registration token for my-org/,
    },
    {
      what: 'the runner groups of a JIT config',
      credentials: 'pat',
      method: 'GET',
      path: '/orgs/my-org/actions/runner-groups',
      call: jit('gh-runner-silent-groups'),
      action: /creating a JIT config for gh-runner-silent-groups in my-org/,
    },
    {
      what: 'generate-jitconfig',
      credentials: 'pat',
      method: 'POST',
      path: '/orgs/my-org/actions/runners/generate-jitconfig',
      call: jit('gh-runner-silent-jit'),
      action: /creating a JIT config for gh-runner-silent-jit in my-org/,
    },
    {
      what: 'the runner look-up of DELETE /runner',
      credentials: 'pat',
      method: 'GET',
      path: '/orgs/my-org/actions/runners',
      call: removeRunner('gh-runner-silent-find'),
      action: /removing runner gh-runner-silent-find from my-org/,
      existingRunner: 'gh-runner-silent-find',
    },
    {
      what: 'the runner deletion',
      credentials: 'pat',
      method: 'DELETE',
      path: /^\/orgs\/my-org\/actions\/runners\/\d+$/,
      call: removeRunner('gh-runner-silent-delete'),
      action: /removing runner gh-runner-silent-delete from my-org/,
      existingRunner: 'gh-runner-silent-delete',
    },
  ];

  it.each(cases)(
    'answers 504 in bounded time when $what hangs, and serves the next caller once GitHub answers again',
    async ({ credentials, method, path, call, action, existingRunner }) => {
      if (existingRunner !== undefined) {
        // Bound to the calling VM by its instance-id label, as the proxy binds the runners it registers.
        fakes.github.addRunner(
          { kind: 'org', org: 'my-org' },
          {
            name: existingRunner,
            status: 'offline',
            labels: ['self-hosted', instanceIdLabel(vm(existingRunner).instanceId)],
          },
        );
      }
      const proxy = buildProxy(fakes, {
        credentials,
        githubApiUrl: front.url,
        deadlineMs: DEADLINE_MS,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        // Every test starts from an empty token cache, so /register reaches GitHub.
        reuseSeconds: 0,
      });
      front.silence((m, p) => m === method && (typeof path === 'string' ? p === path : path.test(p)));
      const silencedBefore = front.silenced;

      const res = await call(proxy);
      expect(res.status).toBe(504);
      expect(res.body.error).toMatch(new RegExp(`^GitHub did not answer within ${DEADLINE_MS} ms while`));
      expect(res.body.error).toMatch(action);
      expect(front.silenced).toBeGreaterThan(silencedBefore);

      // GitHub answers again. The silenced request, shared by whoever waits for the same token or list, is
      // cut off by its own deadline, so a later caller is served instead of waiting behind it forever.
      front.silence(undefined);
      let status = 0;
      for (let attempt = 0; attempt < 50 && status !== 200; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        status = (await call(proxy)).status;
      }
      expect(status).toBe(200);
    },
    30_000,
  );

  it("answers 503 in bounded time when Google's certificate endpoint hangs", async () => {
    const issuerFront = await startSilentFront(fakes.issuer.certsUrl);
    try {
      issuerFront.silence(() => true);
      const proxy = buildProxy(fakes, {
        certsUrl: `${issuerFront.url}${new URL(fakes.issuer.certsUrl).pathname}`,
      });
      const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
      expect(res.status).toBe(503);
      expect(res.body.error).toMatch(/cannot verify identity tokens right now/);
      expect(issuerFront.silenced).toBe(1);
    } finally {
      await issuerFront.close();
    }
  }, 30_000);
});

// Issue 15 §7: a failed installation look-up cost one GitHub call per request.
describe('failed look-ups', () => {
  it('remembers for a while that the App is not installed on a scope', async () => {
    const proxy = buildProxy(fakes, { credentials: 'app-discover', allowed: ['other-org'] });
    const mark = fakes.github.controls.calls.length;
    for (let i = 0; i < 3; i += 1) {
      const res = await proxy.call('post', '/register').send({ scope: 'other-org' });
      expect(res.status).toBe(502);
      expect(res.body.error).toMatch(/the GitHub App is not installed on other-org/);
    }
    expect(since(mark, 'GET', '/orgs/other-org/installation')).toHaveLength(1);
  });

  it('does not remember a timeout: the next caller asks again', async () => {
    const proxy = buildProxy(fakes, {
      credentials: 'app-discover',
      githubApiUrl: front.url,
      deadlineMs: 300,
      requestTimeoutMs: 500,
      reuseSeconds: 0,
    });
    front.silence((m, p) => m === 'GET' && p === '/orgs/my-org/installation');
    expect((await proxy.call('post', '/register').send({ scope: 'my-org' })).status).toBe(504);
    front.silence(undefined);
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = (await proxy.call('post', '/register').send({ scope: 'my-org' })).status;
    }
    expect(status).toBe(200);
  }, 30_000);
});
