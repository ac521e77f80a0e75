import crypto from 'node:crypto';
import { createFakeApp, listenOnLoopback } from './fake-server.js';
import type { FakeControls, RunningFake } from './fake-server.js';

/** The Compute Engine part of a VM's identity, as the metadata server puts it into a `format=full` token. */
export interface ComputeEngineIdentity {
  projectId: string;
  projectNumber: number;
  zone: string;
  /** A 19-digit decimal string: beyond a JS number's exact range. */
  instanceId: string;
  instanceName: string;
  instanceCreationTimestamp?: number;
}

/** What a caller of {@link FakeGoogleIssuer.mintIdentityToken} says about the token it wants. */
export interface IdentityTokenRequest {
  audience: string;
  email?: string;
  /** Numeric unique id of the service account (`sub` and `azp`). */
  sub?: string;
  compute?: ComputeEngineIdentity;
  /** Seconds since the epoch; default now. */
  iat?: number;
  /** Default `iat + 3600`, as Google issues. */
  exp?: number;
  issuer?: string;
}

/** Options for forging a token: everything a test of the verifier needs to break. */
export interface SignOptions {
  /** Header fields to merge over `{alg: 'RS256', typ: 'JWT', kid}`. */
  header?: Record<string, unknown>;
  /**
   * How to sign: `rs256` with the issuer's key (default), `rs256-other-key` with a key the issuer does not
   * publish (same kid), `none` (empty signature), `hs256-public-key` (HMAC keyed with the public key PEM:
   * the classic algorithm-confusion attack).
   */
  signing?: 'rs256' | 'rs256-other-key' | 'none' | 'hs256-public-key';
}

export interface FakeGoogleIssuer extends RunningFake {
  /** URL of the PEM certificate map, as `https://www.googleapis.com/oauth2/v1/certs` serves it. */
  readonly certsUrl: string;
  /** URL of the JWK set, as `https://www.googleapis.com/oauth2/v3/certs` serves it. */
  readonly jwksUrl: string;
  /** The key id new tokens are signed with. */
  readonly kid: string;
  readonly controls: FakeControls;
  /**
   * Publishes a new signing key beside the old ones and signs every later token with it, as Google does at
   * a rotation. Returns the new key id.
   */
  rotateKey(): string;
  /** Builds a Google-shaped identity token payload and signs it. */
  mintIdentityToken(request: IdentityTokenRequest, options?: SignOptions): string;
  /** Signs an arbitrary payload (for malformed-claim tests). */
  sign(payload: Record<string, unknown>, options?: SignOptions): string;
}

export const GOOGLE_ISSUER = 'https://accounts.google.com';

function base64url(input: string | Buffer): string {
  return Buffer.from(input).toString('base64url');
}

/**
 * Builds the payload Google's metadata server issues for a VM.
 * https://cloud.google.com/compute/docs/instances/verifying-instance-identity#payload
 */
export function identityTokenPayload(request: IdentityTokenRequest): Record<string, unknown> {
  const iat = request.iat ?? Math.floor(Date.now() / 1000);
  const sub = request.sub ?? '109422233875895820585';
  const payload: Record<string, unknown> = {
    iss: request.issuer ?? GOOGLE_ISSUER,
    aud: request.audience,
    azp: sub,
    sub,
    iat,
    exp: request.exp ?? iat + 3600,
  };
  if (request.email !== undefined) {
    payload.email = request.email;
    payload.email_verified = true;
  }
  if (request.compute) {
    const c = request.compute;
    payload.google = {
      compute_engine: {
        project_id: c.projectId,
        project_number: c.projectNumber,
        zone: c.zone,
        instance_id: c.instanceId,
        instance_name: c.instanceName,
        instance_creation_timestamp: c.instanceCreationTimestamp ?? iat - 60,
      },
    };
  }
  return payload;
}

/** Starts a loopback stand-in for Google's token issuer: a fresh RSA key and its certificate endpoints. */
export async function startFakeGoogleIssuer(options: { port?: number } = {}): Promise<FakeGoogleIssuer> {
  const newKey = () => {
    const pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { ...pair, kid: crypto.randomBytes(20).toString('hex') };
  };
  const published = [newKey()];
  const current = () => published[published.length - 1]!;
  const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pemOf = (key: crypto.KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();

  const { app, controls } = createFakeApp();
  app.get('/oauth2/v1/certs', (_req, res) => {
    res
      .set('Cache-Control', 'public, max-age=24442, must-revalidate, no-transform')
      .json(Object.fromEntries(published.map((key) => [key.kid, pemOf(key.publicKey)])));
  });
  app.get('/oauth2/v3/certs', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=24442, must-revalidate, no-transform').json({
      keys: published.map((key) => ({
        ...key.publicKey.export({ format: 'jwk' }),
        kid: key.kid,
        alg: 'RS256',
        use: 'sig',
      })),
    });
  });
  const running = await listenOnLoopback(app, options.port);

  const sign = (payload: Record<string, unknown>, signOptions: SignOptions = {}): string => {
    const signing = signOptions.signing ?? 'rs256';
    const alg = signing === 'none' ? 'none' : signing === 'hs256-public-key' ? 'HS256' : 'RS256';
    const { kid, privateKey, publicKey } = current();
    const header = { alg, typ: 'JWT', kid, ...signOptions.header };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
    let signature = '';
    if (signing === 'rs256' || signing === 'rs256-other-key') {
      const key = signing === 'rs256' ? privateKey : other.privateKey;
      signature = crypto.sign('RSA-SHA256', Buffer.from(signingInput), key).toString('base64url');
    } else if (signing === 'hs256-public-key') {
      signature = crypto.createHmac('sha256', pemOf(publicKey)).update(signingInput).digest('base64url');
    }
    return `${signingInput}.${signature}`;
  };

  return {
    ...running,
    certsUrl: `${running.url}/oauth2/v1/certs`,
    jwksUrl: `${running.url}/oauth2/v3/certs`,
    get kid() {
      return current().kid;
    },
    controls,
    rotateKey: () => {
      published.push(newKey());
      return current().kid;
    },
    sign,
    mintIdentityToken: (request, signOptions) => sign(identityTokenPayload(request), signOptions),
  };
}
