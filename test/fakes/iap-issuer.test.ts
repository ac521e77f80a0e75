import crypto from 'node:crypto';
import { startFakeIapIssuer } from '#fakes/iap-issuer';
import type { FakeIapIssuer } from '#fakes/iap-issuer';

const AUDIENCE = '/projects/123456789012/locations/us-central1/services/fleet-status';

/** Checks a JWS ES256 signature with node's crypto alone: what any IAP client library does. */
function verifiesWith(token: string, pem: string): boolean {
  const [header, payload, signature] = token.split('.');
  return crypto.verify(
    'sha256',
    Buffer.from(`${header}.${payload}`),
    { key: crypto.createPublicKey(pem), dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature ?? '', 'base64url'),
  );
}

const decode = (part: string | undefined): Record<string, unknown> =>
  JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

describe('fake IAP issuer', () => {
  let iap: FakeIapIssuer;
  beforeAll(async () => {
    iap = await startFakeIapIssuer();
  });
  afterAll(() => iap.close());

  it('publishes a PEM map and a JWK set that verify its ES256 assertions', async () => {
    const token = iap.mintAssertion({ audience: AUDIENCE, email: 'alice@example.com', hd: 'example.com' });
    const [header, payload] = token.split('.');
    expect(decode(header)).toEqual({ alg: 'ES256', typ: 'JWT', kid: iap.kid });
    const claims = decode(payload);
    expect(claims).toMatchObject({
      iss: 'https://cloud.google.com/iap',
      aud: AUDIENCE,
      email: 'alice@example.com',
      hd: 'example.com',
    });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(600);

    const pems = (await (await fetch(iap.publicKeysUrl)).json()) as Record<string, string>;
    expect(verifiesWith(token, pems[iap.kid]!)).toBe(true);
    const jwks = (await (await fetch(iap.jwksUrl)).json()) as { keys: Array<Record<string, string>> };
    expect(jwks.keys).toEqual([
      expect.objectContaining({ kty: 'EC', crv: 'P-256', kid: iap.kid, alg: 'ES256' }),
    ]);
  });

  it('leaves hd out for a consumer account, and signs with an unpublished key when asked', async () => {
    const token = iap.mintAssertion({ audience: AUDIENCE, email: 'bob@gmail.example' });
    expect(decode(token.split('.')[1])).not.toHaveProperty('hd');
    const pems = (await (await fetch(iap.publicKeysUrl)).json()) as Record<string, string>;
    const forged = iap.mintAssertion(
      { audience: AUDIENCE, email: 'bob@gmail.example' },
      { signing: 'es256-other-key' },
    );
    expect(verifiesWith(forged, pems[iap.kid]!)).toBe(false);
  });

  it('keeps old keys published after a rotation', async () => {
    const first = iap.kid;
    const second = iap.rotateKey();
    const pems = (await (await fetch(iap.publicKeysUrl)).json()) as Record<string, string>;
    expect(Object.keys(pems).sort()).toEqual([first, second].sort());
    const token = iap.mintAssertion({ audience: AUDIENCE, email: 'alice@example.com' });
    expect(decode(token.split('.')[0]).kid).toBe(second);
    expect(verifiesWith(token, pems[second]!)).toBe(true);
  });
});
