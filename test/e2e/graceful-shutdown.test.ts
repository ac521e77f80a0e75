import path from 'node:path';
import { SERVICE_ENTRY_POINTS } from '#entry-points';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { freePort, spawnNode, waitUntilAnswering } from '#sandbox/node-process';
import { repoRoot } from '#sandbox/sandbox';

/**
 * Cloud Run sends SIGTERM and kills 10 s later. The built token proxy must stop accepting connections,
 * finish what is in flight, and exit 0 well inside that.
 */
let issuer: FakeGoogleIssuer;
let github: FakeGitHub;
beforeAll(async () => {
  issuer = await startFakeGoogleIssuer();
  github = await startFakeGitHub();
  github.addOrg('my-org');
  github.addPat('ghp_shutdownTestPersonalAccessToken0123456');
});
afterAll(async () => {
  await Promise.all([issuer.close(), github.close()]);
});

it('finishes an in-flight request after SIGTERM, refuses new connections, and exits 0', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proxy = spawnNode(path.join(repoRoot(), SERVICE_ENTRY_POINTS['token-proxy'].main), {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    PORT: String(port),
    AUTH_AUDIENCE: url,
    ID_TOKEN_CERTS_URL: issuer.certsUrl,
    GITHUB_API_URL: github.baseUrl,
    GITHUB_TOKEN: 'ghp_shutdownTestPersonalAccessToken0123456',
    ALLOWED_SCOPES: 'my-org',
    POLICY: 'open',
    LOG_LEVEL: 'info',
  });
  try {
    await waitUntilAnswering(proxy, port, { path: '/healthz', status: 200 });
    // GitHub answers slowly, so the request is still in flight when SIGTERM arrives: SIGTERM goes once
    // GitHub has the request (not after a fixed wait, which a busy machine can outlast).
    github.controls.latencyMs = 1500;
    const token = issuer.mintIdentityToken({ audience: url, email: 'runner@p.iam.gserviceaccount.com' });
    const asked = () => github.controls.calls.filter((c) => c.path.endsWith('/registration-token')).length;
    const before = asked();
    const inFlight = fetch(`${url}/register`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      body: JSON.stringify({ scope: 'my-org' }),
    });
    await until(() => asked() > before);
    const signalled = Date.now();
    proxy.child.kill('SIGTERM');
    await until(() => proxy.output().includes('shutting down: finishing in-flight requests'));
    const late = await fetch(`${url}/healthz`).then(
      (res) => res.status,
      () => 'refused',
    );

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ token: expect.any(String) });
    expect(late).toBe('refused');
    expect(await proxy.exited).toBe(0);
    // Well inside Cloud Run's 10 s: the in-flight request needed ~1.5 s; nothing may wait for the 8 s
    // grace (idle keep-alive connections would), which is what this bound tells apart.
    expect(Date.now() - signalled).toBeLessThan(8_000);
    expect(proxy.output()).toContain('shutting down: finishing in-flight requests');
  } finally {
    github.controls.latencyMs = 0;
    await proxy.stop(1000);
  }
});

/** Polls `condition` every 20 ms until it holds; the test's own timeout bounds the wait. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}
