import request from 'supertest';
import { buildProxy, PAT, startProxyFakes, vm } from '#test-support/token-proxy-harness';
import type { ProxyFakes } from '#test-support/token-proxy-harness';

let fakes: ProxyFakes;
beforeAll(async () => {
  fakes = await startProxyFakes();
});
afterAll(() => fakes.close());
afterEach(() => {
  fakes.github.controls.clearFaults();
  fakes.github.controls.latencyMs = 0;
  fakes.github.setRateLimitRemaining(5000);
});

/** Calls the fake GitHub received after `mark` (an index into its call list). */
const since = (mark: number, method: string, path: string | RegExp) =>
  fakes.github.controls.calls
    .slice(mark)
    .filter((c) => c.method === method && (typeof path === 'string' ? c.path === path : path.test(c.path)));

describe('POST /register and /remove with a PAT', () => {
  it.each([
    ['an org', 'my-org', '/orgs/my-org/actions/runners/registration-token'],
    ['a repo', 'my-org/app', '/repos/my-org/app/actions/runners/registration-token'],
    ['a repo with slashes around it', '/my-org/app/', '/repos/my-org/app/actions/runners/registration-token'],
    ['an enterprise', 'enterprise:acme', '/enterprises/acme/actions/runners/registration-token'],
  ])('returns a registration token for %s', async (_, scope, path) => {
    const proxy = buildProxy(fakes);
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/register').send({ scope });
    expect(res.status).toBe(200);
    const issued = fakes.github.issuedTokens.runner.at(-1)!;
    expect(res.body).toEqual({ token: issued.token, expires_at: issued.expires_at });
    expect(since(mark, 'POST', path)).toHaveLength(1);
    expect(since(mark, 'POST', path)[0]!.headers.authorization).toBe(`token ${PAT}`);
  });

  it('returns a remove token', async () => {
    const proxy = buildProxy(fakes);
    const res = await proxy.call('post', '/remove').send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    expect(fakes.github.issuedTokens.runner.at(-1)).toMatchObject({ kind: 'remove', token: res.body.token });
  });

  it('parses a JSON body sent as application/x-www-form-urlencoded, as curl --data-binary does', async () => {
    const proxy = buildProxy(fakes);
    const res = await proxy
      .call('post', '/register')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('{"scope": "my-org"}');
    expect(res.status).toBe(200);
    expect(res.body.token).toEqual(expect.any(String));
  });
});

describe('POST /register with a GitHub App', () => {
  it('mints an installation token down-scoped to self-hosted runners for an org', async () => {
    const proxy = buildProxy(fakes, { credentials: 'app' });
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    const minted = fakes.github.issuedTokens.installation.at(-1)!;
    expect(minted.requested).toEqual({ permissions: { organization_self_hosted_runners: 'write' } });
  });

  it('mints an installation token for one repository with administration only for a repo', async () => {
    const proxy = buildProxy(fakes, { credentials: 'app' });
    const res = await proxy.call('post', '/register').send({ scope: 'my-org/app' });
    expect(res.status).toBe(200);
    const minted = fakes.github.issuedTokens.installation.at(-1)!;
    expect(minted.requested).toEqual({ permissions: { administration: 'write' }, repositories: ['app'] });
  });

  it('finds the installation when none is configured, and caches it', async () => {
    const proxy = buildProxy(fakes, { credentials: 'app-discover', reuseSeconds: 0 });
    const mark = fakes.github.controls.calls.length;
    for (let i = 0; i < 3; i += 1) {
      const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
      expect(res.status).toBe(200);
    }
    expect(since(mark, 'GET', '/orgs/my-org/installation')).toHaveLength(1);
    expect(since(mark, 'GET', '/orgs/my-org/installation')[0]!.headers.authorization).toMatch(/^bearer ey/);
  });

  it('answers a clear 502 naming the scope when the App is not installed there', async () => {
    const proxy = buildProxy(fakes, { credentials: 'app-discover', allowed: ['other-org'] });
    const res = await proxy.call('post', '/register').send({ scope: 'other-org' });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatch(/the GitHub App is not installed on other-org/);
  });

  it('refuses enterprise scopes clearly, without calling GitHub', async () => {
    const proxy = buildProxy(fakes, { credentials: 'app' });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/register').send({ scope: 'enterprise:acme' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/enterprise runners need a proxy configured with a PAT/);
    expect(fakes.github.controls.calls.length).toBe(mark);
  });
});

describe('bad requests', () => {
  const proxy = () => buildProxy(fakes);

  it.each([
    ['an empty body', '', /request body is empty/],
    ['invalid JSON', '{"scope": ', /not valid JSON/],
    ['an array', '["my-org"]', /must be a JSON object/],
    ['a string', '"my-org"', /must be a JSON object/],
    ['null', 'null', /must be a JSON object/],
    ['a missing scope', '{}', /scope is required/],
    ['an empty scope', '{"scope": ""}', /scope must not be empty/],
    ['a numeric scope', '{"scope": 42}', /scope must be a string/],
    ['an unknown field', '{"scope": "my-org", "name": "x"}', /unknown field: "name"/],
    ['a __proto__ key', '{"scope": "my-org", "__proto__": {"admin": true}}', /unknown field: "__proto__"/],
    // Issue 14 §6(b): which scope would it be? Readers disagree; the proxy does not guess.
    [
      'the same key twice',
      '{"scope": "my-org", "scope": "my-org/secret"}',
      /^request body is ambiguous: key "scope" appears more than once in one object$/,
    ],
    ['a path traversal', '{"scope": "my-org/../../admin"}', /expected ORG, OWNER\/REPO/],
    ['an encoded traversal', '{"scope": "my-org/%2e%2e"}', /invalid repository name/],
    ['a query', '{"scope": "my-org/app?per_page=1"}', /invalid repository name/],
    ['a fragment', '{"scope": "my-org#x"}', /not a valid organization name/],
    ['a space', '{"scope": "my org"}', /not a valid organization name/],
    ['a full-width letter', '{"scope": "ｍy-org"}', /not a valid organization name/],
  ])('answers 400 for %s, without calling GitHub', async (_, body, message) => {
    const p = proxy();
    const mark = fakes.github.controls.calls.length;
    const res = await p.call('post', '/register').set('Content-Type', 'application/json').send(body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(message);
    expect(fakes.github.controls.calls.length).toBe(mark);
  });

  it('answers 413 for a body over 64 KiB', async () => {
    const p = proxy();
    const res = await p
      .call('post', '/register')
      .send(JSON.stringify({ scope: 'my-org', pad: 'x'.repeat(70 * 1024) }));
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/too large/);
  });

  it('answers 401 without an identity token, before reading the body', async () => {
    const res = await request(proxy().app).post('/register').send({ scope: 'my-org' });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/missing Authorization header/);
  });

  // Issue 15 §5: Cloud Run checks IAM on X-Serverless-Authorization and passes Authorization on unchecked.
  it('answers 400 for a request carrying two identities, without calling GitHub', async () => {
    const p = proxy();
    const mark = fakes.github.controls.calls.length;
    const res = await p
      .call('post', '/register')
      .set(
        'X-Serverless-Authorization',
        `Bearer ${p.token({ email: 'invoker@other.iam.gserviceaccount.com' })}`,
      )
      .send({ scope: 'my-org' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/carry different identity tokens/);
    expect(fakes.github.controls.calls.length).toBe(mark);
  });

  it('answers 401 for a token minted for another service', async () => {
    const p = proxy();
    const res = await p
      .call('post', '/register', { audience: 'https://instance-deleter.example' })
      .send({ scope: 'my-org' });
    expect(res.status).toBe(401);
  });

  it.each([
    ['GET', '/register'],
    ['PUT', '/remove'],
    ['GET', '/jitconfig'],
    ['POST', '/runner'],
    ['POST', '/healthz'],
  ])('answers 405 for %s %s', async (method, path) => {
    const res = await request(proxy().app)[method.toLowerCase() as 'get'](path);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBeDefined();
  });

  it('answers 404 for an unknown path', async () => {
    const res = await request(proxy().app).post('/admin');
    expect(res.status).toBe(404);
  });

  it('answers GET /healthz without auth and says nothing more', async () => {
    const res = await request(proxy().app).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.text).toBe('ok');
  });
});

describe('allowed and denied scopes', () => {
  const ask = async (options: { allowed?: string[]; denied?: string[] }, scope: string) => {
    const p = buildProxy(fakes, options);
    return p.call('post', '/register').send({ scope });
  };

  it('allows nothing by default', async () => {
    expect((await ask({ allowed: [] }, 'my-org')).status).toBe(403);
  });

  // Issue 11 §3: written with commas, as AUTH_AUDIENCE is, the list used to be one scope that matched nothing.
  it("serves ALLOWED_SCOPES='my-org,other-org' as two scopes", async () => {
    expect((await ask({ allowed: ['my-org,other-org'] }, 'other-org')).status).toBe(200);
    expect((await ask({ allowed: ['my-org,other-org'] }, 'my-org')).status).toBe(200);
  });

  it('lets deny win over allow', async () => {
    const res = await ask({ allowed: ['match:my-org/.*'], denied: ['my-org/secret'] }, 'my-org/secret');
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('scope "my-org/secret" is not allowed');
    expect(
      (await ask({ allowed: ['match:my-org/.*'], denied: ['my-org/secret'] }, 'my-org/app')).status,
    ).toBe(200);
  });

  it('anchors patterns to the whole scope', async () => {
    expect((await ask({ allowed: ['match:my-org/.*'] }, 'other-org')).status).toBe(403);
    expect((await ask({ allowed: ['match:other'] }, 'other-org')).status).toBe(403);
    expect((await ask({ allowed: ['match:my-org'] }, 'my-org/app')).status).toBe(403);
  });

  it('matches case-insensitively, as GitHub names are', async () => {
    expect((await ask({ allowed: ['MY-ORG'] }, 'my-org')).status).toBe(200);
    expect((await ask({ allowed: ['my-org'], denied: ['match:MY-.*'] }, 'my-org')).status).toBe(403);
  });
});

describe('the caller policy', () => {
  const policy = {
    rules: [
      {
        name: 'presubmit',
        callers: {
          serviceAccounts: ['runner-min@runners-prod.iam.gserviceaccount.com'],
          projects: ['runners-prod'],
          instanceNames: ['match:gh-runner-presubmit-.*'],
        },
        scopes: ['my-org/app'],
      },
      {
        name: 'postsubmit',
        callers: { serviceAccounts: ['runner-trusted@runners-prod.iam.gserviceaccount.com'] },
        scopes: ['my-org'],
      },
    ],
  };
  const presubmit = {
    email: 'runner-min@runners-prod.iam.gserviceaccount.com',
    compute: vm('gh-runner-presubmit-7'),
  };

  it('lets a caller have tokens for the scopes of the rule that names it', async () => {
    const p = buildProxy(fakes, { policy });
    const res = await p.call('post', '/register', presubmit).send({ scope: 'my-org/app' });
    expect(res.status).toBe(200);
  });

  it.each([
    ['a scope of another rule', presubmit, 'my-org'],
    [
      'another service account',
      { ...presubmit, email: 'someone@runners-prod.iam.gserviceaccount.com' },
      'my-org/app',
    ],
    ['another instance name', { ...presubmit, compute: vm('gh-runner-postsubmit-7') }, 'my-org/app'],
    [
      'another project',
      { ...presubmit, compute: vm('gh-runner-presubmit-7', { projectId: 'other' }) },
      'my-org/app',
    ],
    [
      'a token without Compute claims for a rule that names instances',
      { email: presubmit.email },
      'my-org/app',
    ],
  ])('refuses %s with a 403 that does not reveal the rules', async (_, identity, scope) => {
    const p = buildProxy(fakes, { policy });
    const res = await p.call('post', '/register', identity).send({ scope });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe(`this caller may not get tokens for scope "${scope}"`);
  });

  it('still applies the allow and deny lists on top of the policy', async () => {
    const p = buildProxy(fakes, { policy, denied: ['my-org/app'] });
    const res = await p.call('post', '/register', presubmit).send({ scope: 'my-org/app' });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('scope "my-org/app" is not allowed');
  });
});

describe('token reuse in a boot storm', () => {
  it('serves 300 concurrent registrations for one scope with one GitHub call', async () => {
    const proxy = buildProxy(fakes, { credentials: 'app' });
    fakes.github.controls.latencyMs = 20;
    const mark = fakes.github.controls.calls.length;
    const results = await Promise.all(
      Array.from({ length: 300 }, () => proxy.call('post', '/register').send({ scope: 'my-org' })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(new Set(results.map((r) => r.body.token)).size).toBe(1);
    expect(since(mark, 'POST', '/orgs/my-org/actions/runners/registration-token')).toHaveLength(1);
    expect(since(mark, 'POST', /access_tokens$/)).toHaveLength(1);
  });

  it('makes one GitHub call per request with reuse off', async () => {
    const proxy = buildProxy(fakes, { reuseSeconds: 0 });
    const mark = fakes.github.controls.calls.length;
    // Ten VMs: one caller may have only MUTATION_QUEUE_LIMIT_PER_CALLER (4) requests waiting.
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        proxy.call('post', '/register', { compute: vm(`gh-reuse-off-${i}`) }).send({ scope: 'my-org' }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(since(mark, 'POST', '/orgs/my-org/actions/runners/registration-token')).toHaveLength(10);
  });

  it('keeps registration and remove tokens and scopes apart', async () => {
    const proxy = buildProxy(fakes);
    const auth = `Bearer ${proxy.token()}`;
    const reg = await request(proxy.app)
      .post('/register')
      .set('Authorization', auth)
      .send({ scope: 'my-org' });
    const rem = await request(proxy.app).post('/remove').set('Authorization', auth).send({ scope: 'my-org' });
    const repo = await request(proxy.app)
      .post('/register')
      .set('Authorization', auth)
      .send({ scope: 'my-org/app' });
    const again = await request(proxy.app)
      .post('/register')
      .set('Authorization', auth)
      .send({ scope: 'MY-ORG' });
    expect(new Set([reg.body.token, rem.body.token, repo.body.token]).size).toBe(3);
    expect(again.body.token).toBe(reg.body.token);
  });
});

describe('GitHub failures', () => {
  it('retries a 5xx with backoff and then succeeds', async () => {
    const proxy = buildProxy(fakes);
    fakes.github.controls.addFault({
      path: '/registration-token',
      status: 502,
      body: { message: 'Server Error' },
      times: 2,
    });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    expect(since(mark, 'POST', '/orgs/my-org/actions/runners/registration-token')).toHaveLength(3);
  });

  it('retries after a secondary rate limit with retry-after', async () => {
    const proxy = buildProxy(fakes);
    fakes.github.injectSecondaryRateLimit({ path: '/registration-token', retryAfterSeconds: 1 });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    const calls = since(mark, 'POST', '/orgs/my-org/actions/runners/registration-token');
    expect(calls).toHaveLength(2);
    expect(calls[1]!.time - calls[0]!.time).toBeGreaterThanOrEqual(900);
  });

  it('answers 503 with Retry-After when the rate limit outlasts what it waits for', async () => {
    const proxy = buildProxy(fakes, { maxRateLimitWaitSeconds: 1 });
    fakes.github.injectSecondaryRateLimit({ path: '/registration-token', retryAfterSeconds: 120, times: 5 });
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('120');
    expect(res.body.error).toMatch(/rate limit/);
  });

  it('answers 503 on an exhausted primary rate limit', async () => {
    const proxy = buildProxy(fakes);
    fakes.github.setRateLimitRemaining(0, 600);
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(500);
  });

  it("does not retry a 4xx, and passes on GitHub's message as a 502", async () => {
    const proxy = buildProxy(fakes);
    fakes.github.controls.addFault({
      path: '/registration-token',
      status: 404,
      body: { message: 'Not Found' },
    });
    const mark = fakes.github.controls.calls.length;
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatch(/while creating a registration token for my-org: Not Found/);
    expect(since(mark, 'POST', '/orgs/my-org/actions/runners/registration-token')).toHaveLength(1);
  });

  it('answers 502 when GitHub stays down, without echoing any credential', async () => {
    const proxy = buildProxy(fakes, { retries: 2 });
    fakes.github.controls.addFault({
      path: '/registration-token',
      status: 503,
      body: { message: 'Service Unavailable' },
    });
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(502);
    expect(JSON.stringify(res.body)).not.toContain(PAT);
  });

  it('answers 502 when GitHub resets the connection', async () => {
    const proxy = buildProxy(fakes, { retries: 1 });
    fakes.github.controls.addFault({ path: '/registration-token', reset: true });
    const res = await proxy.call('post', '/register').send({ scope: 'my-org' });
    expect(res.status).toBe(502);
  });

  it('answers 504 when GitHub does not answer within the deadline, and caches the late token', async () => {
    const proxy = buildProxy(fakes, { deadlineMs: 200 });
    fakes.github.controls.addFault({ path: '/registration-token', delayMs: 600, times: 1 });
    const mark = fakes.github.controls.calls.length;
    const auth = `Bearer ${proxy.token()}`;
    const res = await request(proxy.app)
      .post('/register')
      .set('Authorization', auth)
      .send({ scope: 'my-org' });
    expect(res.status).toBe(504);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const retry = await request(proxy.app)
      .post('/register')
      .set('Authorization', auth)
      .send({ scope: 'my-org' });
    expect(retry.status).toBe(200);
    expect(since(mark, 'POST', '/orgs/my-org/actions/runners/registration-token')).toHaveLength(1);
  });
});

describe('logs', () => {
  it('never contain a token, key or Authorization value', async () => {
    const proxy = buildProxy(fakes, { credentials: 'app' });
    const idToken = proxy.token({ compute: vm('gh-runner-1') });
    const res = await request(proxy.app)
      .post('/register')
      .set('Authorization', `Bearer ${idToken}`)
      .send({ scope: 'my-org' });
    await request(proxy.app)
      .post('/register')
      .set('Authorization', `Bearer ${idToken}x`)
      .send({ scope: 'my-org' });
    expect(res.status).toBe(200);
    const text = proxy.logs.text();
    expect(text).toContain('issued registration token');
    for (const secret of [
      res.body.token,
      idToken.split('.')[1],
      idToken.split('.')[2],
      ...fakes.github.issuedTokens.installation.map((t) => t.token),
      fakes.github.app.privateKeyPkcs1Pem.split('\n')[1],
    ]) {
      expect(text).not.toContain(secret);
    }
  });
});
