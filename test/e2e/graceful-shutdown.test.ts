import path from 'node:path';
import { SERVICE_ENTRY_POINTS } from '#entry-points';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { freePort, spawnNode } from '#sandbox/node-process';
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
    for (let ready = false; !ready;) {
      ready = await fetch(`${url}/healthz`).then(
        (res) => res.ok,
        () => false,
      );
      if (proxy.child.exitCode !== null) throw new Error(`proxy exited:\n${proxy.output()}`);
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // GitHub answers slowly, so the request is still in flight when SIGTERM arrives.
    github.controls.latencyMs = 1500;
    const token = issuer.mintIdentityToken({ audience: url, email: 'runner@p.iam.gserviceaccount.com' });
    const inFlight = fetch(`${url}/register`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      body: JSON.stringify({ scope: 'my-org' }),
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const signalled = Date.now();
    proxy.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const late = await fetch(`${url}/healthz`).then(
      (res) => res.status,
      () => 'refused',
    );

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ token: expect.any(String) });
    expect(late).toBe('refused');
    expect(await proxy.exited).toBe(0);
    // Well inside Cloud Run's 10 s: the in-flight request needed ~1.5 s, nothing should wait for the grace.
    expect(Date.now() - signalled).toBeLessThan(5_000);
    expect(proxy.output()).toContain('shutting down: finishing in-flight requests');
  } finally {
    github.controls.latencyMs = 0;
    await proxy.stop(1000);
  }
});
