/**
 * A boot storm: 500 VMs ask for a registration token for one scope at the same moment, while the fake
 * GitHub fails every third call. Every caller must get the token, and GitHub must see only a handful of
 * calls: the proxy shares one call among concurrent callers and retries the failure for all of them.
 */
import { failEvery } from '#test-support/periodic-faults';
import { createSecretAudit, secretShapes } from '#test-support/secret-audit';
import { serveApp } from '#test-support/serve-app';
import { buildProxy, PAT, startProxyFakes, vm } from '#test-support/token-proxy-harness';
import type { ProxyFakes } from '#test-support/token-proxy-harness';

const STORM = 500;
/** Every GitHub REST path (not the fake's own `/_sandbox` ones). */
const REST = /^\/(?!_sandbox\/)/;

let fakes: ProxyFakes;
const audit = createSecretAudit();
const logs: string[] = [];

beforeAll(async () => {
  fakes = await startProxyFakes();
  audit.add(PAT, fakes.github.app.privateKeyPkcs1Pem);
});
afterEach(() => {
  fakes.github.controls.clearFaults();
  fakes.github.controls.latencyMs = 0;
});
afterAll(() => fakes.close());

describe.each([
  // App credentials, installation found by lookup: calls 1 and 2 (installation, installation token) pass,
  // call 3, the registration token, fails and is retried.
  { credentials: 'app-discover' as const, phase: 2, scope: 'my-org/app' },
  // A PAT: the very first call, the registration token, fails and is retried.
  { credentials: 'pat' as const, phase: 0, scope: 'my-org' },
])(
  '$credentials: 500 concurrent registrations while GitHub fails every third call',
  ({ credentials, phase, scope }) => {
    it('gives every caller the token, for a handful of GitHub calls', async () => {
      const proxy = buildProxy(fakes, { credentials, deadlineMs: 10_000 });
      const server = await serveApp(proxy.app);
      try {
        fakes.github.controls.latencyMs = 20;
        failEvery(fakes.github.controls, { period: 3, phase, cycles: 50, path: REST, status: 500 });
        const mark = fakes.github.controls.calls.length;

        const results = await Promise.all(
          Array.from({ length: STORM }, async (_, i) => {
            // Each VM has its own identity token, so each request is verified on its own.
            const token = proxy.token({ compute: vm(`gh-runner-storm-${i}`) });
            audit.add(token);
            const res = await fetch(`${server.url}/register`, {
              method: 'POST',
              headers: { authorization: `Bearer ${token}` },
              body: JSON.stringify({ scope }),
            });
            return { status: res.status, body: (await res.json()) as { token?: string; error?: string } };
          }),
        );

        const statuses = new Map<number, number>();
        for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        expect(Object.fromEntries(statuses)).toEqual({ 200: STORM });
        const tokens = new Set(results.map((r) => r.body.token));
        expect(tokens.size).toBe(1);
        audit.add(...tokens);

        const calls = fakes.github.controls.calls.slice(mark).map((c) => `${c.method} ${c.path}`);
        const registrations = calls.filter((c) => c.endsWith('/actions/runners/registration-token'));
        // One failed, one retried: the 500 callers shared both.
        expect(registrations).toHaveLength(2);
        expect(calls.length).toBeLessThanOrEqual(credentials === 'pat' ? 2 : 5);
        logs.push(proxy.logs.text());
        expect(
          proxy.logs.lines().filter((line) => line.message === 'issued registration token'),
        ).toHaveLength(STORM);
      } finally {
        await server.close();
      }
    });
  },
);

it('leaves no token, key or Authorization value in the logs of the storms', () => {
  audit.add(...fakes.github.issuedTokens.installation.map((t) => t.token));
  expect(logs.join('').length).toBeGreaterThan(10_000);
  expect(audit.leaks(...logs)).toEqual([]);
  expect(secretShapes(...logs)).toEqual([]);
});
