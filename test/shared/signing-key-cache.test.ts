import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import {
  AuthError,
  AuthUnavailableError,
  createAuthMiddleware,
  createErrorMiddleware,
  createIdTokenVerifier,
  maxAgeMs,
} from '#shared';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { captureLogs } from '#test-support/log-capture';

const AUDIENCE = 'https://token-proxy.example.run.app';

/**
 * A certificate endpoint in front of the fake issuer that can be told to accept connections and never
 * answer (the field report: a hung endpoint wedged every authenticated request for minutes), or to fail
 * at once. `fetches` counts the requests it answered: a request the client gave up on before it arrived
 * (a busy machine, a short deadline) is not counted either way.
 */
async function startSwitchableCerts(issuer: FakeGoogleIssuer) {
  let hang = false;
  let fail = false;
  const hung = new Set<http.ServerResponse>();
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    if (hang) {
      hung.add(res);
      return;
    }
    fetches += 1;
    if (fail) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('backend error');
      return;
    }
    fetch(issuer.certsUrl)
      .then(async (upstream) => {
        res.writeHead(upstream.status, {
          'content-type': 'application/json',
          'cache-control': upstream.headers.get('cache-control') ?? '',
        });
        res.end(await upstream.text());
      })
      .catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/oauth2/v1/certs`,
    setHang(value: boolean) {
      hang = value;
    },
    setFail(value: boolean) {
      fail = value;
    },
    get fetches() {
      return fetches;
    },
    async close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('signing certificates: deadlines, stale keys and rotation', () => {
  const logs = captureLogs();
  let issuer: FakeGoogleIssuer;
  let certs: Awaited<ReturnType<typeof startSwitchableCerts>>;
  let clock: number;
  const now = () => clock;

  // A deadline no busy machine reaches, except where a test waits out a hung endpoint.
  const verifierFor = (certsFetchTimeoutMs = 20_000) =>
    createIdTokenVerifier({
      audiences: [AUDIENCE],
      certsUrl: certs.url,
      certsFetchTimeoutMs,
      now,
    });
  const mint = () => issuer.mintIdentityToken({ audience: AUDIENCE });

  beforeEach(async () => {
    clock = 1_000_000;
    issuer = await startFakeGoogleIssuer();
    certs = await startSwitchableCerts(issuer);
  });
  afterEach(async () => {
    await certs.close();
    await issuer.close();
  });

  it('answers 503 with Retry-After within the fetch deadline when the endpoint never answers, then recovers', async () => {
    certs.setHang(true);
    const verifier = verifierFor(1500);
    const app = express();
    app.get('/', createAuthMiddleware(verifier), (_req, res) => res.json({ ok: true }));
    app.use(createErrorMiddleware(logs.logger));

    const refused = await request(app).get('/').set('Authorization', `Bearer ${mint()}`);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body.error).toMatch(/cannot verify identity tokens right now/);

    // The endpoint recovers; the next request (past the retry spacing) fetches again and is served.
    certs.setHang(false);
    clock += 5_000;
    const served = await request(app).get('/').set('Authorization', `Bearer ${mint()}`);
    expect(served.status).toBe(200);
    expect(certs.fetches).toBe(1);
  });

  it('does not fetch again on every request right after a failure', async () => {
    certs.setFail(true);
    const verifier = verifierFor();
    await expect(verifier.verify(mint())).rejects.toBeInstanceOf(AuthUnavailableError);
    await expect(verifier.verify(mint())).rejects.toBeInstanceOf(AuthUnavailableError);
    expect(certs.fetches).toBe(1);
  });

  it('keeps serving expired certificates while a refresh fails', async () => {
    const verifier = verifierFor();
    await verifier.verify(mint());
    certs.setFail(true);
    clock += 24_442_000 + 1; // past the max-age the endpoint sent
    await expect(verifier.verify(mint())).resolves.toMatchObject({ sub: expect.any(String) });
    expect(certs.fetches).toBe(2);
    // The next refresh waits for the retry spacing; the stale set keeps serving meanwhile.
    await expect(verifier.verify(mint())).resolves.toMatchObject({ sub: expect.any(String) });
    expect(certs.fetches).toBe(2);
  });

  it('accepts a token signed with a key Google has just published, with one more fetch', async () => {
    const verifier = verifierFor();
    await verifier.verify(mint());
    clock += 60_000;
    issuer.rotateKey();
    await expect(verifier.verify(mint())).resolves.toMatchObject({ sub: expect.any(String) });
    expect(certs.fetches).toBe(2);
  });

  it('refreshes for unknown key ids at most once a minute, and says the key is unknown', async () => {
    const verifier = verifierFor();
    await verifier.verify(mint());
    const forged = issuer.sign(
      { iss: 'https://accounts.google.com', aud: AUDIENCE, sub: '1', iat: 1, exp: 2 },
      { header: { kid: 'not-a-published-kid' } },
    );
    // Right after a fetch an unknown key id is not worth another one.
    await expect(verifier.verify(forged)).rejects.toBeInstanceOf(AuthError);
    expect(certs.fetches).toBe(1);
    clock += 60_000;
    const errors = await Promise.all(
      Array.from({ length: 10 }, () => verifier.verify(forged).catch((e: unknown) => e)),
    );
    for (const error of errors) {
      expect(error).toBeInstanceOf(AuthError);
      expect((error as AuthError).reason).toBe('unknown-key');
      expect((error as AuthError).message).not.toMatch(/Google does not publish/);
    }
    expect(certs.fetches).toBe(2);
    await verifier.verify(forged).catch(() => undefined);
    expect(certs.fetches).toBe(2);
    clock += 60_000;
    await verifier.verify(forged).catch(() => undefined);
    expect(certs.fetches).toBe(3);
  });
});

describe('maxAgeMs', () => {
  it.each([
    ['public, max-age=24442, must-revalidate, no-transform', 24_442_000],
    ['max-age=0', 0],
    ['MAX-AGE = 60', 60_000],
    ['no-cache', undefined],
    ['s-max-age=5', undefined],
    [null, undefined],
  ])('%j → %j', (header, expected) => {
    expect(maxAgeMs(header)).toBe(expected);
  });
});
