/**
 * Faults injected at the fakes: 5xx, hangs beyond the deadline, connection resets, malformed JSON and rate
 * limits with retry-after. The services must answer within their deadlines with the documented status
 * (502, 503 with Retry-After, 504), recover as soon as the fake does, and lose no registration that a retry
 * could have saved.
 *
 * No assertion here times anything from above: a hang is a fault that answers after HANG_MS, far beyond the
 * 20 s every call of this file waits, so only the service's own deadline can produce the answer the test
 * expects, however slow the machine. Lower bounds (a wait really happened) are kept: a slow machine only
 * makes them truer.
 */
import {
  buildDeleter,
  DELETER_ACCESS_TOKEN,
  memberOf,
  regionalMig,
  startDeleterFakes,
} from '#test-support/deleter-harness';
import type { Deleter, DeleterFakes } from '#test-support/deleter-harness';
import { createSecretAudit, secretShapes } from '#test-support/secret-audit';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import { buildProxy, PAT, startProxyFakes, vm } from '#test-support/token-proxy-harness';
import type { Proxy, ProxyFakes } from '#test-support/token-proxy-harness';

/** A fault delay no deadline-less service would survive: the calls below give up after 20 s. */
const HANG_MS = 120_000;
const CALL_TIMEOUT_MS = 20_000;
/** The deadline of the services that meet hangs: short, so those tests end soon. */
const DEADLINE_MS = 1500;
/**
 * The deadline everywhere else: a busy machine can take longer than DEADLINE_MS to go through a few
 * retries, and a 504 there would be the machine's doing, not the service's.
 */
const ROOMY_DEADLINE_MS = 15_000;

const audit = createSecretAudit();
const servers: ServedApp[] = [];
const logTexts: Array<() => string> = [];

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: string; token?: string; encoded_jit_config?: string } & Record<string, unknown>;
  text: string;
  ms: number;
}

async function call(url: string, init: RequestInit & { token: string }): Promise<Answer> {
  audit.add(init.token);
  const started = Date.now();
  const res = await fetch(url, {
    ...init,
    headers: { authorization: `Bearer ${init.token}`, 'content-type': 'application/json' },
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const text = await res.text();
  let body: Answer['body'] = {};
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    // text answers (the deleter's successes)
  }
  audit.add(body.token, body.encoded_jit_config);
  return { status: res.status, headers: res.headers, body, text, ms: Date.now() - started };
}

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('token proxy against a failing GitHub', () => {
  let fakes: ProxyFakes;

  beforeAll(async () => {
    fakes = await startProxyFakes();
    audit.add(PAT, fakes.github.app.privateKeyPkcs1Pem);
  });
  afterEach(() => {
    fakes.github.controls.clearFaults();
    fakes.github.setRateLimitRemaining(5000);
  });
  afterAll(async () => {
    audit.add(
      ...fakes.github.issuedTokens.runner.map((t) => t.token),
      ...fakes.github.issuedTokens.installation.map((t) => t.token),
    );
    await fakes.close();
  });

  /** A fresh proxy (empty caches) on loopback, with reuse on and a roomy deadline unless told otherwise. */
  async function proxyOn(
    options: Parameters<typeof buildProxy>[1] = {},
  ): Promise<{ proxy: Proxy; url: string }> {
    const proxy = buildProxy(fakes, { deadlineMs: ROOMY_DEADLINE_MS, ...options });
    const server = await serveApp(proxy.app);
    servers.push(server);
    logTexts.push(() => proxy.logs.text());
    return { proxy, url: server.url };
  }
  const register = (url: string, proxy: Proxy, scope = 'my-org') =>
    call(`${url}/register`, { method: 'POST', token: proxy.token(), body: JSON.stringify({ scope }) });
  const githubCalls = (mark: number, path: string) =>
    fakes.github.controls.calls.slice(mark).filter((c) => c.path.endsWith(path)).length;

  describe.each(['pat', 'app'] as const)('with %s credentials', (credentials) => {
    it('retries 5xx and resets, so a transient failure costs the caller nothing', async () => {
      const { proxy, url } = await proxyOn({ credentials });
      const mark = fakes.github.controls.calls.length;
      fakes.github.controls.addFault({
        path: '/registration-token',
        status: 500,
        body: { message: 'boom' },
        times: 1,
      });
      fakes.github.controls.addFault({ path: '/registration-token', reset: true, times: 1 });
      fakes.github.controls.addFault({
        path: '/registration-token',
        status: 503,
        body: { message: 'unavailable' },
        times: 1,
      });
      const res = await register(url, proxy);
      expect(res.status).toBe(200);
      expect(res.body.token).toEqual(expect.any(String));
      expect(githubCalls(mark, '/registration-token')).toBe(4);
    });

    it('answers 502 within the deadline when GitHub stays down, then recovers with it', async () => {
      const { proxy, url } = await proxyOn({ credentials });
      fakes.github.controls.addFault({
        path: '/registration-token',
        status: 500,
        body: { message: 'GitHub is down' },
      });
      const down = await register(url, proxy);
      expect(down.status).toBe(502);
      expect(down.body.error).toMatch(
        /GitHub failed while creating a registration token for my-org: GitHub is down/,
      );
      fakes.github.controls.clearFaults();
      const up = await register(url, proxy);
      expect(up.status).toBe(200);
    });

    it('answers 502 when GitHub keeps resetting the connection, then recovers', async () => {
      const { proxy, url } = await proxyOn({ credentials });
      fakes.github.controls.addFault({ path: '/registration-token', reset: true });
      const down = await register(url, proxy);
      expect(down.status).toBe(502);
      fakes.github.controls.clearFaults();
      expect((await register(url, proxy)).status).toBe(200);
    });

    it('answers 504 at the deadline when GitHub hangs, and serves the late token once it comes', async () => {
      const { proxy, url } = await proxyOn({ credentials, deadlineMs: DEADLINE_MS });
      const mark = fakes.github.controls.calls.length;
      const issued = fakes.github.issuedTokens.runner.length;
      fakes.github.controls.addFault({ path: '/registration-token', delayMs: DEADLINE_MS + 1000, times: 1 });
      const slow = await register(url, proxy);
      expect(slow.status).toBe(504);
      expect(slow.body.error).toMatch(/did not answer within/);
      expect(slow.ms).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
      // GitHub answers the abandoned call late; the proxy keeps that token (or is about to), so the next
      // caller gets it without a second call to GitHub.
      while (fakes.github.issuedTokens.runner.length === issued) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const late = await register(url, proxy);
      expect(late.status).toBe(200);
      expect(githubCalls(mark, '/registration-token')).toBe(1);
    });

    it('answers 502, not a token-less 200, when GitHub sends malformed JSON, then recovers', async () => {
      const { proxy, url } = await proxyOn({ credentials });
      fakes.github.controls.addFault({ path: '/registration-token', malformed: true, times: 1 });
      const bad = await register(url, proxy);
      expect({ status: bad.status, body: bad.body }).toEqual({
        status: 502,
        body: { error: expect.stringMatching(/GitHub/) },
      });
      const good = await register(url, proxy);
      expect(good.status).toBe(200);
      expect(good.body.token).toEqual(expect.any(String));
    });

    it('answers 503 with Retry-After on a secondary rate limit it will not wait out, then recovers', async () => {
      const { proxy, url } = await proxyOn({ credentials, maxRateLimitWaitSeconds: 1 });
      fakes.github.injectSecondaryRateLimit({
        path: '/registration-token',
        retryAfterSeconds: 90,
        times: 10,
      });
      const limited = await register(url, proxy);
      expect(limited.status).toBe(503);
      expect(limited.headers.get('retry-after')).toBe('90');
      expect(limited.body.error).toMatch(/rate limit/);
      fakes.github.controls.clearFaults();
      expect((await register(url, proxy)).status).toBe(200);
    });

    it('waits out a short secondary rate limit and answers 200', async () => {
      const { proxy, url } = await proxyOn({ credentials, deadlineMs: 5000 });
      fakes.github.injectSecondaryRateLimit({ path: '/registration-token', retryAfterSeconds: 1, times: 1 });
      const res = await register(url, proxy);
      expect(res.status).toBe(200);
      expect(res.ms).toBeGreaterThanOrEqual(900);
    });

    it('answers 503 with Retry-After on a 429 with retry-after', async () => {
      const { proxy, url } = await proxyOn({ credentials, maxRateLimitWaitSeconds: 1 });
      fakes.github.controls.addFault({
        path: '/registration-token',
        status: 429,
        headers: { 'retry-after': '30', 'x-ratelimit-remaining': '0' },
        body: { message: 'API rate limit exceeded' },
      });
      const res = await register(url, proxy);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('30');
    });

    it('answers 503 until an exhausted primary rate limit resets, then recovers', async () => {
      const { proxy, url } = await proxyOn({ credentials });
      fakes.github.setRateLimitRemaining(0, 600);
      const limited = await register(url, proxy);
      expect(limited.status).toBe(503);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(500);
      fakes.github.setRateLimitRemaining(5000);
      expect((await register(url, proxy)).status).toBe(200);
    });
  });

  it('retries a failing installation-token request (App mode) and recovers', async () => {
    const { proxy, url } = await proxyOn({ credentials: 'app' });
    fakes.github.controls.addFault({
      path: /\/access_tokens$/,
      status: 502,
      body: { message: 'bad gateway' },
      times: 2,
    });
    const res = await register(url, proxy);
    expect(res.status).toBe(200);
  });

  it('answers 502 when the installation-token request keeps failing, naming no credential', async () => {
    const { proxy, url } = await proxyOn({ credentials: 'app' });
    fakes.github.controls.addFault({ path: /\/access_tokens$/, status: 500, body: { message: 'down' } });
    const res = await register(url, proxy);
    expect(res.status).toBe(502);
    expect(res.text).not.toContain(PAT);
    fakes.github.controls.clearFaults();
    expect((await register(url, proxy)).status).toBe(200);
  });

  it('gives every one of 30 concurrent callers the token when the one shared GitHub call is retried', async () => {
    const { proxy, url } = await proxyOn({ credentials: 'pat' });
    fakes.github.controls.addFault({
      path: '/registration-token',
      status: 500,
      body: { message: 'boom' },
      times: 2,
      delayMs: 50,
    });
    const mark = fakes.github.controls.calls.length;
    const results = await Promise.all(Array.from({ length: 30 }, () => register(url, proxy, 'my-org/app')));
    expect(results.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(new Set(results.map((r) => r.body.token)).size).toBe(1);
    expect(githubCalls(mark, '/registration-token')).toBe(3);
  });

  describe('JIT configs and runner removal', () => {
    const identity = (name: string) => ({
      email: 'runner@runners-prod.iam.gserviceaccount.com',
      compute: vm(name),
    });
    let serial = 0;
    const name = () => `gh-runner-fault-${(serial += 1)}-${Date.now().toString(36)}`;
    // No policy is configured, so no rule supplies default labels: the request names them.
    const jitBody = JSON.stringify({ scope: 'my-org', labels: ['self-hosted', 'linux'] });

    it.each([
      ['runner-groups', /\/runner-groups$/],
      ['generate-jitconfig', /\/generate-jitconfig$/],
    ])(
      'answers /jitconfig with 502, not 500, when %s sends malformed JSON, then recovers',
      async (_, path) => {
        const { proxy, url } = await proxyOn();
        fakes.github.controls.addFault({ path, malformed: true, times: 1 });
        const bad = await call(`${url}/jitconfig`, {
          method: 'POST',
          token: proxy.token(identity(name())),
          body: jitBody,
        });
        expect({ status: bad.status, body: bad.body }).toEqual({
          status: 502,
          body: { error: expect.stringMatching(/GitHub/) },
        });
        const good = await call(`${url}/jitconfig`, {
          method: 'POST',
          token: proxy.token(identity(name())),
          body: jitBody,
        });
        expect(good.status).toBe(200);
      },
    );

    it('answers DELETE /runner with 502, not 500, when the runner list is malformed JSON', async () => {
      const { proxy, url } = await proxyOn();
      fakes.github.controls.addFault({ path: /\/actions\/runners$/, malformed: true, times: 1 });
      const bad = await call(`${url}/runner`, {
        method: 'DELETE',
        token: proxy.token(identity(name())),
        body: '{"scope":"my-org"}',
      });
      expect({ status: bad.status, body: bad.body }).toEqual({
        status: 502,
        body: { error: expect.stringMatching(/GitHub/) },
      });
    });

    it('answers /jitconfig with 502 within the deadline when generate-jitconfig stays down, then recovers', async () => {
      const { proxy, url } = await proxyOn();
      fakes.github.controls.addFault({
        path: /\/generate-jitconfig$/,
        status: 500,
        body: { message: 'down' },
      });
      const bad = await call(`${url}/jitconfig`, {
        method: 'POST',
        token: proxy.token(identity(name())),
        body: jitBody,
      });
      expect(bad.status).toBe(502);
      fakes.github.controls.clearFaults();
      const good = await call(`${url}/jitconfig`, {
        method: 'POST',
        token: proxy.token(identity(name())),
        body: jitBody,
      });
      expect(good.status).toBe(200);
    });
  });
});

describe('instance deleter against a failing Compute API', () => {
  let fakes: DeleterFakes;
  let deleter: Deleter;
  let url: string;
  /** The same deleter with the short deadline, for the hangs. */
  let hurriedUrl: string;

  beforeAll(async () => {
    fakes = await startDeleterFakes();
    for (const deadlineMs of [ROOMY_DEADLINE_MS, DEADLINE_MS]) {
      deleter = buildDeleter(fakes, { requestTimeoutMs: deadlineMs });
      const server = await serveApp(deleter.app);
      servers.push(server);
      const logs = deleter.logs;
      logTexts.push(() => logs.text());
      if (deadlineMs === DEADLINE_MS) hurriedUrl = server.url;
      else url = server.url;
    }
    audit.add(DELETER_ACCESS_TOKEN);
  });
  afterEach(() => fakes.compute.controls.clearFaults());
  afterAll(() => fakes.close());

  const fresh = () => memberOf(fakes, regionalMig(fakes));
  const del = (vm = fresh(), at = url) => call(`${at}/`, { method: 'DELETE', token: deleter.token(vm) });
  const get = (vm = fresh(), at = url) => call(`${at}/`, { method: 'GET', token: deleter.token(vm) });
  const deleteCalls = () => fakes.compute.controls.callsTo('POST', /\/deleteInstances$/).length;

  it.each([
    ['instances.get', 'GET', /\/instances\//],
    ['listManagedInstances', 'POST', /\/listManagedInstances$/],
    ['deleteInstances', 'POST', /\/deleteInstances$/],
  ])('answers DELETE with 502 when %s fails with 500, then recovers', async (_, method, path) => {
    fakes.compute.controls.addFault({
      method,
      path,
      status: 500,
      body: { error: { code: 500, message: 'backend error' } },
    });
    const bad = await del();
    expect(bad.status).toBe(502);
    expect(bad.body.error).toMatch(/^Compute Engine failed to .*HTTP 500/);
    fakes.compute.controls.clearFaults();
    expect((await del()).status).toBe(200);
  });

  it('answers 502 when Compute resets the connection, then recovers', async () => {
    fakes.compute.controls.addFault({ path: /\/instances\//, reset: true });
    const bad = await del();
    expect(bad.status).toBe(502);
    fakes.compute.controls.clearFaults();
    expect((await del()).status).toBe(200);
  });

  it.each([
    ['instances.get', 'GET', /\/instances\//],
    ['listManagedInstances', 'POST', /\/listManagedInstances$/],
    ['deleteInstances', 'POST', /\/deleteInstances$/],
  ])(
    'answers DELETE with 502 when %s sends malformed JSON, without deleting on a guess',
    async (_, method, path) => {
      const vm = fresh();
      fakes.compute.controls.addFault({ method, path, malformed: true, times: 1 });
      const before = deleteCalls();
      const bad = await del(vm);
      expect({ status: bad.status, error: bad.body.error }).toEqual({
        status: 502,
        error: expect.stringMatching(/^Compute Engine failed/),
      });
      // At most the one (malformed) deleteInstances: nothing was deleted twice or on a guess.
      expect(deleteCalls() - before).toBeLessThanOrEqual(
        method === 'POST' && String(path).includes('delete') ? 1 : 0,
      );
      expect((await del(fresh())).status).toBe(200);
    },
  );

  it('answers 502 or 503 with Retry-After, within the deadline, when Compute rate-limits (429)', async () => {
    fakes.compute.controls.addFault({
      path: /\/instances\//,
      status: 429,
      headers: { 'retry-after': '7' },
      body: { error: { code: 429, message: 'Quota exceeded', status: 'RESOURCE_EXHAUSTED' } },
    });
    const bad = await del();
    expect([502, 503]).toContain(bad.status);
    if (bad.status === 503) expect(bad.headers.get('retry-after')).toBe('7');
    fakes.compute.controls.clearFaults();
    expect((await del()).status).toBe(200);
  });

  it('answers GET / with 504 by its deadline when Compute hangs reading the MIG', async () => {
    fakes.compute.controls.addFault({
      method: 'GET',
      path: /\/instanceGroupManagers\/[^/]+$/,
      delayMs: HANG_MS,
    });
    const slow = await get(fresh(), hurriedUrl);
    expect(slow.status).toBe(504);
  });

  it('answers DELETE with 504 within the deadline when Compute hangs looking up the instance, then recovers', async () => {
    fakes.compute.controls.addFault({
      method: 'GET',
      path: /\/instances\//,
      delayMs: HANG_MS,
      times: 1,
    });
    const slow = await del(fresh(), hurriedUrl);
    expect(slow.status).toBe(504);
    expect((await del()).status).toBe(200);
  });

  it('does not let a hung deleteInstances hold up the other VMs of the MIG past the deadline', async () => {
    const mig = regionalMig(fakes);
    const first = memberOf(fakes, mig);
    const second = memberOf(fakes, mig);
    fakes.compute.controls.addFault({ path: /\/deleteInstances$/, delayMs: HANG_MS, times: 1 });
    const [a, b] = await Promise.all([
      del(first, hurriedUrl),
      new Promise<Answer>((resolve) => setTimeout(() => resolve(del(second, hurriedUrl)), 100)),
    ]);
    // Both answered before the 20 s the calls wait (a hang would outlast it): one deleted, the hung one 504.
    expect([a.status, b.status].sort()).toEqual([200, 504]);
  });

  it('answers GET / with false at once while the MIG is unstable, then true/false once stable', async () => {
    const mig = regionalMig(fakes);
    const vm = memberOf(fakes, mig);
    fakes.compute.setStable(mig, false);
    const unstable = await get(vm);
    expect({ status: unstable.status, text: unstable.text }).toEqual({ status: 200, text: 'false' });
    fakes.compute.setStable(mig, undefined);
    const ok = await get(vm);
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('false');
  });
});

describe('logs under faults', () => {
  it('contain no token, key, JIT config or Authorization value', () => {
    const texts = logTexts.map((text) => text());
    expect(texts.join('').length).toBeGreaterThan(1000);
    expect(audit.leaks(...texts)).toEqual([]);
    expect(secretShapes(...texts)).toEqual([]);
    expect(texts.join('\n')).not.toMatch(/(?:Bearer|token) [A-Za-z0-9_.-]{20}/);
  });
});
