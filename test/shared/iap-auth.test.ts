import express from 'express';
import request from 'supertest';
import {
  createErrorMiddleware,
  createIapMiddleware,
  createIapVerifier,
  createRequestLogger,
  IapAssertionError,
  IapViewersError,
  isIapViewer,
  parseIapViewers,
  viewerOf,
} from '#shared';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { startFakeIapIssuer } from '#fakes/iap-issuer';
import type { FakeIapIssuer, IapAssertionRequest } from '#fakes/iap-issuer';
import { captureLogs } from '#test-support/log-capture';

const AUDIENCE = '/projects/123456789012/locations/us-central1/services/fleet-status';
const VIEWERS = 'bob@partner.example, domain:example.com';
const HEADER = 'x-goog-iap-jwt-assertion';

describe('IAP signed-header verification and viewers', () => {
  let iap: FakeIapIssuer;
  let google: FakeGoogleIssuer;
  const logs = captureLogs();
  let app: express.Express;

  const mint = (overrides: Partial<IapAssertionRequest> = {}) =>
    iap.mintAssertion({ audience: AUDIENCE, email: 'alice@example.com', hd: 'example.com', ...overrides });

  beforeAll(async () => {
    [iap, google] = await Promise.all([startFakeIapIssuer(), startFakeGoogleIssuer()]);
    const verifier = createIapVerifier({ audience: AUDIENCE, keysUrl: iap.publicKeysUrl });
    app = express();
    app.use(createRequestLogger(logs.logger));
    app.get('/status', createIapMiddleware(verifier, parseIapViewers(VIEWERS)), (_req, res) => {
      res.json(viewerOf(res));
    });
    app.use(createErrorMiddleware(logs.logger));
  });
  afterAll(async () => {
    await Promise.all([iap.close(), google.close()]);
  });

  it('lets in a member of a listed Workspace domain, by its hd claim', async () => {
    const res = await request(app).get('/status').set(HEADER, mint());
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      email: 'alice@example.com',
      sub: 'accounts.google.com:104412345678901234567',
      hd: 'example.com',
    });
  });

  it('lets in a listed email whatever its case, without a domain', async () => {
    const res = await request(app)
      .get('/status')
      .set(HEADER, mint({ email: 'Bob@Partner.Example', hd: undefined }));
    expect(res.status).toBe(200);
    expect(res.body.email).toBe('bob@partner.example');
  });

  it('answers 401 without the header, naming IAP', async () => {
    const res = await request(app).get('/status');
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/no x-goog-iap-jwt-assertion header/);
  });

  it('answers 401 to two assertion headers', async () => {
    const res = await request(app)
      .get('/status')
      .set(HEADER, [mint(), mint({ email: 'bob@partner.example' })] as unknown as string); // two header lines
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/more than one/);
  });

  it.each([
    [
      'another audience',
      { audience: '/projects/123456789012/locations/us-central1/services/other' },
      /audience/,
    ],
    ['another issuer', { issuer: 'https://accounts.google.com' }, /not issued by/],
    [
      'an expired assertion',
      { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 },
      /expired/,
    ],
    [
      'a lifetime over an hour',
      { iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 7200 },
      /lifetime/,
    ],
  ])('refuses %s with 401', async (_name, overrides, message) => {
    const res = await request(app).get('/status').set(HEADER, mint(overrides));
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(message);
  });

  it('refuses a signature by a key IAP does not publish, and an unsigned assertion', async () => {
    const forged = await request(app)
      .get('/status')
      .set(
        HEADER,
        iap.mintAssertion(
          { audience: AUDIENCE, email: 'alice@example.com', hd: 'example.com' },
          { signing: 'es256-other-key' },
        ),
      );
    expect(forged.status).toBe(401);
    expect(forged.body.error).toMatch(/signature is invalid/);
    const unsigned = await request(app)
      .get('/status')
      .set(
        HEADER,
        iap.mintAssertion({ audience: AUDIENCE, email: 'alice@example.com' }, { signing: 'none' }),
      );
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.error).toMatch(/ES256/);
  });

  it("refuses a runner VM's Google identity token (RS256), in the IAP header or in Authorization", async () => {
    const vmToken = google.mintIdentityToken({
      audience: AUDIENCE,
      email: 'alice@example.com',
      compute: {
        projectId: 'runners-prod',
        projectNumber: 123456789012,
        zone: 'us-central1-a',
        instanceId: '9223372036854775809',
        instanceName: 'gh-cpu-77',
      },
    });
    const inHeader = await request(app).get('/status').set(HEADER, vmToken);
    expect(inHeader.status).toBe(401);
    expect(inHeader.body.error).toMatch(/must be signed with ES256/);
    const inAuthorization = await request(app)
      .get('/status')
      .set('Authorization', `Bearer ${vmToken}`)
      .set('X-Serverless-Authorization', `Bearer ${vmToken}`);
    expect(inAuthorization.status).toBe(401);
    expect(inAuthorization.body.error).toMatch(/no x-goog-iap-jwt-assertion/);
  });

  it('refuses an ES256 token signed by a key with the right kid but issued as Google (forged issuer)', async () => {
    const res = await request(app)
      .get('/status')
      .set(
        HEADER,
        iap.sign({
          iss: 'https://accounts.google.com',
          aud: AUDIENCE,
          sub: 'x',
          email: 'alice@example.com',
          hd: 'example.com',
          iat: Math.floor(Date.now() / 1000),
          exp: Math.floor(Date.now() / 1000) + 600,
        }),
      );
    expect(res.status).toBe(401);
  });

  it('refuses the email-suffix trick: alice@evil.example.com, or alice@example.com without hd, is not the domain', async () => {
    for (const overrides of [
      { email: 'alice@evil.example.com', hd: undefined },
      { email: 'alice@example.com', hd: undefined },
      { email: 'mallory@example.com.evil.test', hd: 'evil.test' },
    ]) {
      const res = await request(app).get('/status').set(HEADER, mint(overrides));
      expect(res.status).toBe(403);
      expect(res.body.error).toMatch(/may not view/);
    }
  });

  it('refuses an assertion without an email', async () => {
    const iat = Math.floor(Date.now() / 1000);
    const res = await request(app)
      .get('/status')
      .set(
        HEADER,
        iap.sign({ iss: 'https://cloud.google.com/iap', aud: AUDIENCE, sub: 'x', iat, exp: iat + 600 }),
      );
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/claims/);
  });

  it('accepts assertions signed with a rotated key', async () => {
    iap.rotateKey();
    const verifier = createIapVerifier({
      audience: AUDIENCE,
      keysUrl: iap.publicKeysUrl,
      unknownKeyRefreshIntervalMs: 0,
    });
    await expect(verifier.verify(mint())).resolves.toMatchObject({ email: 'alice@example.com' });
  });

  it('answers 503 when the keys cannot be fetched and none are cached; the fetch has a deadline', async () => {
    iap.controls.addFault({ path: '/iap/verify/public_key', delayMs: 500, times: 1 });
    const verifier = createIapVerifier({
      audience: AUDIENCE,
      keysUrl: iap.publicKeysUrl,
      keysFetchTimeoutMs: 100,
    });
    const local = express();
    local.get('/status', createIapMiddleware(verifier, parseIapViewers(VIEWERS)), (_req, res) => {
      res.send('in');
    });
    local.use(createErrorMiddleware(logs.logger));
    const res = await request(local).get('/status').set(HEADER, mint());
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
  });

  it('logs nothing of an assertion', async () => {
    const assertion = mint({ email: 'nobody@other.example', hd: undefined });
    await request(app).get('/status').set(HEADER, assertion);
    expect(logs.text()).not.toContain(assertion.split('.')[2]);
  });
});

describe('parseIapViewers and isIapViewer', () => {
  it('reads emails (also as user:EMAIL) and domain:NAME entries, lower-cased', () => {
    const viewers = parseIapViewers(' Alice@Example.com , user:bob@x.example, domain:Example.COM ,');
    expect([...viewers.emails]).toEqual(['alice@example.com', 'bob@x.example']);
    expect([...viewers.domains]).toEqual(['example.com']);
  });

  it.each([['example.com'], ['domain:'], ['domain:*.example.com'], ['alice@'], ['group:eng@example.com']])(
    'refuses %j, naming it',
    (entry) => {
      expect(() => parseIapViewers(`alice@example.com,${entry}`)).toThrow(IapViewersError);
      expect(() => parseIapViewers(entry)).toThrow(JSON.stringify(entry));
    },
  );

  it('matches a domain on hd only', () => {
    const viewers = parseIapViewers('domain:example.com');
    expect(isIapViewer(viewers, { email: 'a@example.com', sub: 's', hd: 'example.com' })).toBe(true);
    expect(isIapViewer(viewers, { email: 'a@example.com', sub: 's' })).toBe(false);
    expect(isIapViewer(viewers, { email: 'a@sub.example.com', sub: 's', hd: 'sub.example.com' })).toBe(false);
  });

  it('an empty list lets no one in', () => {
    const viewers = parseIapViewers('');
    expect(isIapViewer(viewers, { email: 'a@example.com', sub: 's', hd: 'example.com' })).toBe(false);
  });

  it('IapAssertionError messages never carry token text', () => {
    expect(new IapAssertionError('signature').message).toBe('IAP assertion signature is invalid');
  });
});
