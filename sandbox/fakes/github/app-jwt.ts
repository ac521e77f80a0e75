import crypto from 'node:crypto';
import { GitHubError } from './github-error.js';

/** What the fake knows about its App when it checks a JWT. */
export interface AppIdentity {
  id: number;
  clientId: string;
  publicKey: crypto.KeyObject;
}

/** How {@link signAppJwt} signs: everything a test of a JWT verifier (or of a misconfigured client) needs. */
export type AppJwtSigning = 'rs256' | 'rs256-other-key' | 'none' | 'hs256-public-key';

/** JWTs may live at most ten minutes (reference §1.4). */
const MAX_LIFETIME_SECONDS = 600;
/** Tolerance for a client clock slightly ahead of the fake's. */
const SKEW_SECONDS = 60;

// GitHub's own messages. auth-app recognises the `exp` and `iat` ones and retries once with the clock
// difference it reads from the response's Date header (reference §1.4).
const UNDECODABLE = 'A JSON web token could not be decoded';
const EXP_TOO_FAR = "'Expiration time' claim ('exp') is too far in the future";
const EXP_INVALID =
  "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
const IAT_INVALID =
  "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
const ISS_MISSING = "Missing 'issuer' claim ('iss') in assertion";

function decodeJson(part: string | undefined): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** True when a credential has the three-part shape of a JWT (as opposed to a `ghs_`/`ghp_` token). */
export function looksLikeJwt(credential: string): boolean {
  return credential.split('.').length === 3;
}

/**
 * Checks an App JWT the way GitHub does, throwing a 401 {@link GitHubError} with GitHub's message. The order
 * mirrors GitHub's: it finds the App named by `iss` (numeric id or client ID), then checks the signature
 * with that App's key, then the times. Only RS256 is accepted, which rules out `alg: none` and the
 * HS256-keyed-with-the-public-key confusion.
 */
export function verifyAppJwt(jwt: string, app: AppIdentity, nowSeconds: number): void {
  const [headerPart, payloadPart, signaturePart] = jwt.split('.');
  const header = decodeJson(headerPart);
  const claims = decodeJson(payloadPart);
  if (!header || !claims || header.alg !== 'RS256') throw new GitHubError(401, UNDECODABLE);

  const { iss, iat, exp } = claims;
  if (iss === undefined) throw new GitHubError(401, ISS_MISSING);
  if (String(iss) !== String(app.id) && iss !== app.clientId) {
    throw new GitHubError(404, 'Integration not found');
  }
  const signed = Buffer.from(`${headerPart}.${payloadPart}`);
  const signature = Buffer.from(signaturePart ?? '', 'base64url');
  if (!crypto.verify('RSA-SHA256', signed, app.publicKey, signature)) throw new GitHubError(401, UNDECODABLE);

  if (typeof exp !== 'number' || exp <= nowSeconds) throw new GitHubError(401, EXP_INVALID);
  if (typeof iat !== 'number' || !Number.isInteger(iat)) throw new GitHubError(401, IAT_INVALID);
  // GitHub's docs build `iat = now - 60, exp = now + 600`: a 660 s lifetime, hence the skew allowance on both
  // checks. A client clock ahead of GitHub's shows up first as an `exp` too far ahead.
  const maxLifetime = MAX_LIFETIME_SECONDS + SKEW_SECONDS;
  if (exp - iat > maxLifetime || exp > nowSeconds + maxLifetime) {
    throw new GitHubError(401, EXP_TOO_FAR);
  }
  if (iat > nowSeconds + SKEW_SECONDS) throw new GitHubError(401, IAT_INVALID);
}

/** Signs an App JWT with the given claims; `signing` picks a correct or a deliberately broken signature. */
export function signAppJwt(
  claims: Record<string, unknown>,
  keys: { privateKey: crypto.KeyObject; publicKeyPem: string },
  signing: AppJwtSigning = 'rs256',
): string {
  const alg = signing === 'none' ? 'none' : signing === 'hs256-public-key' ? 'HS256' : 'RS256';
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({ alg, typ: 'JWT' })}.${encode(claims)}`;
  let signature = '';
  if (signing === 'rs256') {
    signature = crypto.sign('RSA-SHA256', Buffer.from(input), keys.privateKey).toString('base64url');
  } else if (signing === 'rs256-other-key') {
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    signature = crypto.sign('RSA-SHA256', Buffer.from(input), other).toString('base64url');
  } else if (signing === 'hs256-public-key') {
    signature = crypto.createHmac('sha256', keys.publicKeyPem).update(input).digest('base64url');
  }
  return `${input}.${signature}`;
}
