import crypto from 'node:crypto';
import { createFakeApp, listenOnLoopback } from './fake-server.js';
import type { FakeControls, RunningFake } from './fake-server.js';

/** The issuer of IAP's signed headers (https://cloud.google.com/iap/docs/signed-headers-howto). */
export const IAP_ISSUER = 'https://cloud.google.com/iap';

/** What a test says about the person IAP lets through. */
export interface IapAssertionRequest {
  /** The value IAP documents for the protected resource, e.g. `/projects/123/locations/r/services/s`. */
  audience: string;
  email: string;
  /** Default `accounts.google.com:<digits>`. */
  sub?: string;
  /** The Google Workspace domain of the account; consumer accounts have none (`undefined`). */
  hd?: string | undefined;
  /** Seconds since the epoch; default now. */
  iat?: number;
  /** Default `iat + 600`: IAP's assertions live ten minutes. */
  exp?: number;
  issuer?: string;
}

export interface IapSignOptions {
  /** Header fields merged over `{alg: 'ES256', typ: 'JWT', kid}`. */
  header?: Record<string, unknown>;
  /**
   * `es256` with the published key (default); `es256-other-key`, a P-256 key IAP does not publish (same kid);
   * `none`, an empty signature.
   */
  signing?: 'es256' | 'es256-other-key' | 'none';
}

export interface FakeIapIssuer extends RunningFake {
  /** The PEM key map, as `https://www.gstatic.com/iap/verify/public_key` serves it. */
  readonly publicKeysUrl: string;
  /** The JWK set, as `https://www.gstatic.com/iap/verify/public_key-jwk` serves it. */
  readonly jwksUrl: string;
  readonly kid: string;
  readonly controls: FakeControls;
  /** Publishes a new key beside the old ones and signs later assertions with it; returns its key id. */
  rotateKey(): string;
  /** Builds an IAP assertion payload and signs it. */
  mintAssertion(request: IapAssertionRequest, options?: IapSignOptions): string;
  /** Signs an arbitrary payload. */
  sign(payload: Record<string, unknown>, options?: IapSignOptions): string;
}

/** The payload IAP signs for a person (https://cloud.google.com/iap/docs/signed-headers-howto#verifying_the_jwt_payload). */
export function iapAssertionPayload(request: IapAssertionRequest): Record<string, unknown> {
  const iat = request.iat ?? Math.floor(Date.now() / 1000);
  return {
    iss: request.issuer ?? IAP_ISSUER,
    aud: request.audience,
    sub: request.sub ?? 'accounts.google.com:104412345678901234567',
    email: request.email,
    ...(request.hd !== undefined && { hd: request.hd }),
    iat,
    exp: request.exp ?? iat + 600,
  };
}

/** Starts a loopback stand-in for IAP's signer: a fresh P-256 key and its key endpoints. */
export async function startFakeIapIssuer(options: { port?: number } = {}): Promise<FakeIapIssuer> {
  const newKey = () => ({
    ...crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }),
    kid: crypto.randomBytes(4).toString('hex'),
  });
  const published = [newKey()];
  const current = () => published[published.length - 1]!;
  const other = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

  const { app, controls } = createFakeApp();
  app.get('/iap/verify/public_key', (_req, res) => {
    res
      .set('Cache-Control', 'public, max-age=3600')
      .json(
        Object.fromEntries(
          published.map((key) => [key.kid, key.publicKey.export({ type: 'spki', format: 'pem' }).toString()]),
        ),
      );
  });
  app.get('/iap/verify/public_key-jwk', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=3600').json({
      keys: published.map((key) => ({
        ...key.publicKey.export({ format: 'jwk' }),
        kid: key.kid,
        alg: 'ES256',
        use: 'sig',
      })),
    });
  });
  const running = await listenOnLoopback(app, options.port);

  const sign = (payload: Record<string, unknown>, signOptions: IapSignOptions = {}): string => {
    const signing = signOptions.signing ?? 'es256';
    const { kid, privateKey } = current();
    const header = { alg: signing === 'none' ? 'none' : 'ES256', typ: 'JWT', kid, ...signOptions.header };
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    if (signing === 'none') return `${input}.`;
    const key = signing === 'es256' ? privateKey : other.privateKey;
    // JWS ES256 signatures are the raw r||s pair (RFC 7518 §3.4), not DER.
    const signature = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  };

  return {
    ...running,
    publicKeysUrl: `${running.url}/iap/verify/public_key`,
    jwksUrl: `${running.url}/iap/verify/public_key-jwk`,
    get kid() {
      return current().kid;
    },
    controls,
    rotateKey: () => {
      published.push(newKey());
      return current().kid;
    },
    sign,
    mintAssertion: (request, signOptions) => sign(iapAssertionPayload(request), signOptions),
  };
}
