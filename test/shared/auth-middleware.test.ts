import express from 'express';
import request from 'supertest';
import {
  callerOf,
  createAuthMiddleware,
  createErrorMiddleware,
  createIdTokenVerifier,
  createRequestLogger,
} from '#shared';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer, IdentityTokenRequest } from '#fakes/google-issuer';
import { captureLogs } from '#test-support/log-capture';

const AUDIENCE = 'https://token-proxy.example.run.app';
const now = () => Math.floor(Date.now() / 1000);
const VM = {
  projectId: 'runners-prod',
  projectNumber: 123456789012,
  zone: 'us-central1-a',
  instanceId: '9223372036854775809',
  instanceName: 'gh-runner-presubmit-x7k2',
};

describe('identity-token auth middleware', () => {
  let issuer: FakeGoogleIssuer;
  const logs = captureLogs();
  let app: express.Express;

  const mint = (overrides: Partial<IdentityTokenRequest> = {}) =>
    issuer.mintIdentityToken({ audience: AUDIENCE, email: 'runner@p.iam.gserviceaccount.com', ...overrides });

  beforeAll(async () => {
    issuer = await startFakeGoogleIssuer();
    const verifier = createIdTokenVerifier({ audiences: [AUDIENCE], certsUrl: issuer.certsUrl });
    app = express();
    app.use(createRequestLogger(logs.logger));
    app.get('/whoami', createAuthMiddleware(verifier), (_req, res) => {
      res.json(callerOf(res));
    });
    app.use(createErrorMiddleware(logs.logger));
  });
  afterAll(() => issuer.close());

  it('accepts a valid token with Compute Engine claims, keeping the instance id exact', async () => {
    const res = await request(app)
      .get('/whoami')
      .set('Authorization', `Bearer ${mint({ compute: VM })}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      sub: '109422233875895820585',
      email: 'runner@p.iam.gserviceaccount.com',
      compute: {
        projectId: 'runners-prod',
        projectNumber: '123456789012',
        zone: 'us-central1-a',
        instanceId: '9223372036854775809',
        instanceName: 'gh-runner-presubmit-x7k2',
      },
    });
  });

  it('accepts a valid token without Compute Engine claims', async () => {
    const res = await request(app).get('/whoami').set('Authorization', `Bearer ${mint()}`);
    expect(res.status).toBe(200);
    expect(res.body.compute).toBeUndefined();
    expect(res.body.email).toBe('runner@p.iam.gserviceaccount.com');
  });

  it.each([
    ['with', `${AUDIENCE}/`, [AUDIENCE]],
    ['without', AUDIENCE, [`${AUDIENCE}/`]],
  ])('treats an audience %s a trailing slash as the same audience', async (_, tokenAudience, configured) => {
    const verifier = createIdTokenVerifier({ audiences: configured, certsUrl: issuer.certsUrl });
    await expect(verifier.verify(mint({ audience: tokenAudience }))).resolves.toMatchObject({
      sub: '109422233875895820585',
    });
  });

  it('does not loosen the audience beyond one trailing slash', async () => {
    const verifier = createIdTokenVerifier({ audiences: [AUDIENCE], certsUrl: issuer.certsUrl });
    for (const audience of [
      `${AUDIENCE}//`,
      `${AUDIENCE}/x`,
      AUDIENCE.toUpperCase(),
      `${AUDIENCE}.evil.com`,
    ]) {
      await expect(verifier.verify(mint({ audience }))).rejects.toMatchObject({ reason: 'audience' });
    }
  });

  it('accepts any of several configured audiences', async () => {
    const verifier = createIdTokenVerifier({
      audiences: ['https://a.example', 'https://b.example'],
      certsUrl: issuer.certsUrl,
    });
    await expect(verifier.verify(mint({ audience: 'https://b.example' }))).resolves.toBeDefined();
  });

  const header = (h: Record<string, unknown>) => Buffer.from(JSON.stringify(h)).toString('base64url');
  const swapPayload = (token: string, payload: Record<string, unknown>) => {
    const [h, , s] = token.split('.');
    return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
  };

  const rejections: Array<[string, () => Record<string, string>, RegExp]> = [
    ['no Authorization header', () => ({}), /missing Authorization header/],
    ['an empty Authorization header', () => ({ Authorization: '' }), /missing Authorization header/],
    ['an empty Bearer token', () => ({ Authorization: 'Bearer ' }), /the Bearer token is empty/],
    ['a Basic scheme', () => ({ Authorization: 'Basic dXNlcjpwYXNz' }), /not a Bearer token/],
    ['a bare token without scheme', () => ({ Authorization: mint() }), /not a Bearer token/],
    ['a malformed token', () => ({ Authorization: 'Bearer not.a-jwt' }), /malformed/],
    ['a token of garbage segments', () => ({ Authorization: 'Bearer a.b.c' }), /malformed/],
    [
      'alg none',
      () => ({
        Authorization: `Bearer ${issuer.mintIdentityToken({ audience: AUDIENCE }, { signing: 'none' })}`,
      }),
      /must be signed with RS256/,
    ],
    [
      'HS256 signed with the public key',
      () => ({
        Authorization: `Bearer ${issuer.mintIdentityToken({ audience: AUDIENCE }, { signing: 'hs256-public-key' })}`,
      }),
      /must be signed with RS256/,
    ],
    [
      'RS256 claimed but HS256 signature with the public key',
      () => {
        const honest = issuer.mintIdentityToken({ audience: AUDIENCE }, { signing: 'hs256-public-key' });
        const [, p, s] = honest.split('.');
        return { Authorization: `Bearer ${header({ alg: 'RS256', typ: 'JWT', kid: issuer.kid })}.${p}.${s}` };
      },
      /signature is invalid/,
    ],
    [
      'an unknown kid',
      () => ({
        Authorization: `Bearer ${issuer.mintIdentityToken({ audience: AUDIENCE }, { header: { kid: 'f'.repeat(40) } })}`,
      }),
      /not among the issuer.s current signing keys/,
    ],
    [
      'no kid',
      () => ({
        Authorization: `Bearer ${issuer.mintIdentityToken({ audience: AUDIENCE }, { header: { kid: undefined } })}`,
      }),
      /not among the issuer.s current signing keys/,
    ],
    [
      'a key the issuer does not publish',
      () => ({
        Authorization: `Bearer ${issuer.mintIdentityToken({ audience: AUDIENCE }, { signing: 'rs256-other-key' })}`,
      }),
      /signature is invalid/,
    ],
    [
      'a tampered payload',
      () => {
        const token = mint({ compute: VM });
        const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
          google: { compute_engine: { instance_name: string } };
        };
        payload.google.compute_engine.instance_name = 'gh-runner-postsubmit-1';
        return { Authorization: `Bearer ${swapPayload(token, payload)}` };
      },
      /signature is invalid/,
    ],
    [
      'an expired token (beyond the 5-minute skew)',
      () => ({ Authorization: `Bearer ${mint({ iat: now() - 3600 - 400, exp: now() - 400 })}` }),
      /has expired/,
    ],
    [
      'a token issued in the future',
      () => ({ Authorization: `Bearer ${mint({ iat: now() + 900, exp: now() + 900 + 3600 })}` }),
      /not valid yet/,
    ],
    [
      'a lifetime longer than Google issues',
      () => ({ Authorization: `Bearer ${mint({ iat: now() - 10, exp: now() + 3 * 3600 })}` }),
      /lifetime exceeds 3600 seconds/,
    ],
    [
      'a lifetime of 25 hours',
      () => ({ Authorization: `Bearer ${mint({ iat: now(), exp: now() + 25 * 3600 })}` }),
      /lifetime exceeds/,
    ],
    [
      'a token that expires before it was issued',
      () => ({ Authorization: `Bearer ${mint({ iat: now(), exp: now() - 60 })}` }),
      /expires before it was issued/,
    ],
    [
      'a wrong audience',
      () => ({ Authorization: `Bearer ${mint({ audience: 'https://instance-deleter.example' })}` }),
      /audience is not accepted/,
    ],
    [
      'a wrong issuer',
      () => ({ Authorization: `Bearer ${mint({ issuer: 'https://evil.example.com' })}` }),
      /not issued by Google/,
    ],
    [
      'an instance id sent as a JSON number',
      () => {
        const token = issuer.sign({
          iss: 'https://accounts.google.com',
          aud: AUDIENCE,
          sub: '1',
          iat: now(),
          exp: now() + 3600,
          // eslint-disable-next-line no-loss-of-precision -- the point: a JSON number cannot carry a 19-digit id
          google: { compute_engine: { ...VM, instance_id: 1234567890123456789 } },
        });
        return { Authorization: `Bearer ${token}` };
      },
      /claims are missing or malformed/,
    ],
    [
      'two Authorization headers',
      () => ({ Authorization: `Bearer ${mint()}`, authorization: `Bearer ${mint()}` }),
      /more than one Authorization header/,
    ],
  ];

  it.each(rejections)(
    'refuses %s with a 401 that names the reason and echoes no token',
    async (_, headersOf, reason) => {
      const headers = headersOf();
      let req = request(app).get('/whoami');
      // supertest merges same-named headers; raw duplicates go through the node request directly.
      const entries = Object.entries(headers);
      if (entries.length > 1) {
        const res = await rawRequestWithDuplicateHeaders(app, entries);
        expect(res).toMatchObject({ status: 401 });
        expect(res.body).toMatch(reason);
        return;
      }
      for (const [name, value] of entries) req = req.set(name, value);
      const res = await req;
      expect(res.status).toBe(401);
      expect(res.body.error).toMatch(reason);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      const sent = entries[0]?.[1] ?? '';
      const token = sent.replace(/^\S+\s+/, '');
      if (token.length > 8) {
        for (const part of token.split('.').filter((p) => p.length > 8)) {
          expect(JSON.stringify(res.body)).not.toContain(part);
          expect(logs.text()).not.toContain(part);
        }
      }
    },
  );

  it('accepts lowercase bearer and extra spaces, as RFC 7235 allows', async () => {
    const res = await request(app).get('/whoami').set('Authorization', `bearer   ${mint()}  `);
    expect(res.status).toBe(200);
  });

  it('accepts a token expired four minutes ago (inside the 5-minute skew)', async () => {
    const res = await request(app)
      .get('/whoami')
      .set('Authorization', `Bearer ${mint({ iat: now() - 3600 - 240, exp: now() - 240 })}`);
    expect(res.status).toBe(200);
  });

  it('fetches the certificates once for many verifications, even concurrent first ones', async () => {
    const fresh = await startFakeGoogleIssuer();
    try {
      const verifier = createIdTokenVerifier({ audiences: [AUDIENCE], certsUrl: fresh.certsUrl });
      const tokens = Array.from({ length: 20 }, () => fresh.mintIdentityToken({ audience: AUDIENCE }));
      await Promise.all(tokens.map((token) => verifier.verify(token)));
      expect(fresh.controls.callsTo('GET', '/oauth2/v1/certs')).toHaveLength(1);
    } finally {
      await fresh.close();
    }
  });

  it('answers 503 when the certificates cannot be fetched, failing closed', async () => {
    const verifier = createIdTokenVerifier({ audiences: [AUDIENCE], certsUrl: 'http://127.0.0.1:1/certs' });
    const local = express();
    local.get('/', createAuthMiddleware(verifier), (_req, res) => res.send('should not get here'));
    local.use(createErrorMiddleware(logs.logger));
    const res = await request(local).get('/').set('Authorization', `Bearer ${mint()}`);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
  });

  // Issue 15 §5: Cloud Run checks IAM on X-Serverless-Authorization when present and passes Authorization
  // on unchecked, so a request carrying both could get in as one identity and be authorized as another.
  describe('X-Serverless-Authorization', () => {
    const other = () => mint({ email: 'someone-else@p.iam.gserviceaccount.com' });
    const withoutSignature = (token: string) => token.split('.').slice(0, 2).join('.') + '.';

    it('refuses a request whose two headers carry different tokens, naming the problem (400)', async () => {
      const res = await request(app)
        .get('/whoami')
        .set('Authorization', `Bearer ${mint()}`)
        .set('X-Serverless-Authorization', `Bearer ${other()}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(
        /^Authorization and X-Serverless-Authorization carry different identity tokens: Cloud Run checks IAM on one/,
      );
    });

    it('refuses a request whose X-Serverless-Authorization is not a Bearer token', async () => {
      const res = await request(app)
        .get('/whoami')
        .set('Authorization', `Bearer ${mint()}`)
        .set('X-Serverless-Authorization', 'Basic abc');
      expect(res.status).toBe(400);
    });

    it.each([
      ['the same token', (token: string) => token],
      ['the same token without its signature, as Cloud Run may pass it on', withoutSignature],
    ])('accepts %s in both headers', async (_, serverless) => {
      const token = mint({ compute: VM });
      const res = await request(app)
        .get('/whoami')
        .set('Authorization', `Bearer ${token}`)
        .set('X-Serverless-Authorization', `Bearer ${serverless(token)}`);
      expect(res.status).toBe(200);
      expect(res.body.compute.instanceName).toBe(VM.instanceName);
    });

    it('does not verify X-Serverless-Authorization alone: 401 saying to use Authorization', async () => {
      const res = await request(app).get('/whoami').set('X-Serverless-Authorization', `Bearer ${mint()}`);
      expect(res.status).toBe(401);
      expect(res.body.error).toMatch(
        /X-Serverless-Authorization is not verified by this service: send the identity token in Authorization/,
      );
    });

    it('refuses two X-Serverless-Authorization headers', async () => {
      const token = mint();
      const res = await rawRequestWithDuplicateHeaders(app, [
        ['Authorization', `Bearer ${token}`],
        ['X-Serverless-Authorization', `Bearer ${token}`],
        ['X-Serverless-Authorization', `Bearer ${token}`],
      ]);
      expect(res.status).toBe(400);
      expect(res.body).toMatch(/more than one X-Serverless-Authorization header/);
    });

    it("leaves the header to IAM on a route that says so (behind IAP, it is IAP's own token)", async () => {
      const verifier = createIdTokenVerifier({ audiences: [AUDIENCE], certsUrl: issuer.certsUrl });
      const local = express();
      local.get('/', createAuthMiddleware(verifier, { serverlessAuthorization: 'ignore' }), (_req, res) => {
        res.json(callerOf(res));
      });
      local.use(createErrorMiddleware(logs.logger));
      const res = await request(local)
        .get('/')
        .set('Authorization', `Bearer ${mint()}`)
        .set('X-Serverless-Authorization', `Bearer ${other()}`);
      expect(res.status).toBe(200);
      expect(res.body.email).toBe('runner@p.iam.gserviceaccount.com');
    });
  });
});

async function rawRequestWithDuplicateHeaders(
  app: express.Express,
  headers: Array<[string, string]>,
): Promise<{ status: number; body: string }> {
  const http = await import('node:http');
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  try {
    return await new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        path: '/whoami',
        headers: ['Host', `127.0.0.1:${port}`, ...headers.flat()] as never,
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  } finally {
    server.close();
  }
}
