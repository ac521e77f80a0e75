import crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { CallerIdentity, ComputeEngineClaims } from './caller-identity.js';
import { createSigningKeyCache, SigningKeysUnavailableError } from './signing-key-cache.js';

/** Google's PEM certificate endpoint, the one google-auth-library uses on Node. */
export const GOOGLE_PEM_CERTS_URL = 'https://www.googleapis.com/oauth2/v1/certs';
/** Issuers of Google-signed identity tokens. */
export const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];
/** Google issues identity tokens that live one hour; anything longer was not minted by a metadata server. */
export const MAX_TOKEN_LIFETIME_SECONDS = 3600;

/** Why a token was refused. Each reason has a fixed message that is safe to show the caller. */
export type AuthFailureReason =
  | 'missing'
  | 'not-bearer'
  | 'multiple'
  | 'malformed'
  | 'algorithm'
  | 'unknown-key'
  | 'signature'
  | 'expired'
  | 'not-yet-valid'
  | 'lifetime'
  | 'issuer'
  | 'audience'
  | 'claims';

const MESSAGES: Readonly<Record<AuthFailureReason, string>> = {
  missing: "missing Authorization header: send 'Authorization: Bearer <Google identity token>'",
  'not-bearer': 'Authorization header is not a Bearer token',
  multiple: 'more than one Authorization header',
  malformed: 'identity token is malformed: expected a JWT of three base64url parts',
  algorithm: 'identity token must be signed with RS256',
  'unknown-key': "identity token is signed with a key that is not among the issuer's current signing keys",
  signature: 'identity token signature is invalid',
  expired: 'identity token has expired',
  'not-yet-valid': 'identity token is not valid yet: issued in the future',
  lifetime: `identity token lifetime exceeds ${MAX_TOKEN_LIFETIME_SECONDS} seconds`,
  issuer: 'identity token was not issued by Google',
  audience: 'identity token audience is not accepted by this service',
  claims: 'identity token claims are missing or malformed',
};

/**
 * A token was refused. The message is fixed per reason and never includes token text; the caller sees it
 * in a 401.
 */
export class AuthError extends Error {
  override readonly name = 'AuthError';

  constructor(
    readonly reason: AuthFailureReason,
    detail?: string,
  ) {
    super(detail === undefined ? MESSAGES[reason] : `${MESSAGES[reason]}: ${detail}`);
  }
}

/** Tokens could not be checked at all (Google's certificates unreachable): not the caller's fault. */
export class AuthUnavailableError extends Error {
  override readonly name = 'AuthUnavailableError';
}

/** Checks a Google-signed identity token and says who it names. */
export interface IdTokenVerifier {
  verify(token: string): Promise<CallerIdentity>;
}

export interface IdTokenVerifierOptions {
  /** Accepted audiences, normally the service's own URL. At least one. */
  audiences: readonly string[];
  /** PEM certificate map URL; Google's by default, a loopback issuer in tests and the sandbox. */
  certsUrl?: string;
  /** Accepted issuers; Google's by default. */
  issuers?: readonly string[];
  /** Deadline of one certificate fetch, in milliseconds. Default 5000. */
  certsFetchTimeoutMs?: number;
  /** Least time between two fetches caused by an unknown key id, in milliseconds. Default 60000. */
  unknownKeyRefreshIntervalMs?: number;
  /** Milliseconds since the epoch, for the certificate cache's clock; injected in tests. */
  now?: () => number;
}

/** Strips one trailing slash, so `https://x.run.app` and `https://x.run.app/` name the same audience. */
export function normalizeAudience(audience: string): string {
  return audience.endsWith('/') ? audience.slice(0, -1) : audience;
}

const nonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The Compute Engine claims of a `format=full` token, or undefined when they are malformed. Checked by hand
 * rather than with a schema: this runs on every request, and copying the claims was a visible share of it.
 */
function computeEngineClaimsOf(value: Record<string, unknown>): ComputeEngineClaims | undefined {
  const { project_id, project_number, zone, instance_id, instance_name } = value;
  const projectNumberOk =
    (typeof project_number === 'number' && Number.isInteger(project_number) && project_number >= 0) ||
    (typeof project_number === 'string' && /^\d+$/.test(project_number));
  if (
    !nonEmptyString(project_id) ||
    !projectNumberOk ||
    !nonEmptyString(zone) ||
    // A string in real tokens. A JSON number could already have lost digits, so it is refused.
    typeof instance_id !== 'string' ||
    !/^\d{1,20}$/.test(instance_id) ||
    !nonEmptyString(instance_name)
  ) {
    return undefined;
  }
  return {
    projectId: project_id,
    projectNumber: String(project_number),
    zone,
    instanceId: instance_id,
    instanceName: instance_name,
  };
}

/**
 * Who the verified claims name: `sub` (non-empty), `email` when Google marked it verified, and the
 * Compute Engine claims when present. Throws the `claims` refusal when any of them, or `iat`/`exp`, has
 * the wrong type.
 */
function identityOf(claims: Record<string, unknown>): CallerIdentity {
  const { sub, email, email_verified: emailVerified, iat, exp, google } = claims;
  if (
    !nonEmptyString(sub) ||
    (email !== undefined && typeof email !== 'string') ||
    (emailVerified !== undefined &&
      typeof emailVerified !== 'boolean' &&
      typeof emailVerified !== 'string') ||
    typeof iat !== 'number' ||
    typeof exp !== 'number' ||
    (google !== undefined && !isObject(google))
  ) {
    throw new AuthError('claims');
  }
  const identity: CallerIdentity = { sub };
  if (email !== undefined && (emailVerified === true || emailVerified === 'true')) identity.email = email;
  const computeEngine = google?.compute_engine;
  if (computeEngine !== undefined) {
    const compute = isObject(computeEngine) ? computeEngineClaimsOf(computeEngine) : undefined;
    if (!compute) throw new AuthError('claims');
    identity.compute = compute;
  }
  return identity;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function decodeHeader(token: string): Record<string, unknown> {
  if (!JWT_SHAPE.test(token)) throw new AuthError('malformed');
  try {
    const header: unknown = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8'));
    if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new Error();
    return header as Record<string, unknown>;
  } catch {
    throw new AuthError('malformed');
  }
}

/** Google's allowance for clock skew when checking `iat` and `exp`, as google-auth-library applies it. */
export const CLOCK_SKEW_SECONDS = 300;
/** A token whose `exp` is further than this from now is refused outright (google-auth-library's default). */
const MAX_EXPIRY_SECONDS = 86_400;

/**
 * The token's payload once its RS256 signature holds for `key` and its issuer and times are acceptable,
 * with the checks and their order of google-auth-library's `OAuth2Client.verifySignedJwtWithCertsAsync`
 * (https://github.com/googleapis/google-auth-library-nodejs/blob/main/src/auth/oauth2client.ts), on
 * node:crypto's one-shot `verify` with a parsed KeyObject: no PEM parsing, no second decoding of the
 * header, no streaming Verify object per token.
 */
function verifySignedJwt(
  token: string,
  key: KeyObject,
  issuers: readonly string[],
  nowSeconds: number,
): Record<string, unknown> {
  const firstDot = token.indexOf('.');
  const secondDot = token.indexOf('.', firstDot + 1);
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(token.slice(firstDot + 1, secondDot), 'base64url').toString('utf8'));
  } catch {
    throw new AuthError('malformed');
  }
  if (!payload) throw new AuthError('malformed');
  const signed = Buffer.from(token.slice(0, secondDot));
  const signature = Buffer.from(token.slice(secondDot + 1), 'base64url');
  if (!crypto.verify('sha256', signed, key, signature)) throw new AuthError('signature');
  const claims = payload as Record<string, unknown>;
  if (!claims.iat || !claims.exp) throw new AuthError('claims');
  const iat = Number(claims.iat);
  const exp = Number(claims.exp);
  if (Number.isNaN(iat) || Number.isNaN(exp)) throw new AuthError('claims');
  if (exp >= nowSeconds + MAX_EXPIRY_SECONDS) throw new AuthError('lifetime');
  if (nowSeconds < iat - CLOCK_SKEW_SECONDS) throw new AuthError('not-yet-valid');
  if (nowSeconds > exp + CLOCK_SKEW_SECONDS) throw new AuthError('expired');
  if (!issuers.includes(claims.iss as string)) throw new AuthError('issuer');
  return claims;
}

/**
 * Builds a verifier that checks the RS256 signature against the issuer's key for the token's `kid`, the
 * issuer and the token's times with a 5-minute clock skew (as google-auth-library's `OAuth2Client` does,
 * on node:crypto directly), the algorithm, the audience (one trailing slash ignored), a one-hour maximum
 * lifetime and the shape of the claims. The certificates come from {@link createSigningKeyCache}: fetched
 * with a deadline, parsed once into KeyObjects, kept while a refresh fails, and fetched again when a token
 * names a key id not yet seen (a key rotation).
 */
export function createIdTokenVerifier(options: IdTokenVerifierOptions): IdTokenVerifier {
  if (options.audiences.length === 0) throw new Error('at least one audience is required');
  const audiences = new Set(options.audiences.map(normalizeAudience));
  const issuers = [...(options.issuers ?? GOOGLE_ISSUERS)];
  const signingKeys = createSigningKeyCache({
    url: options.certsUrl ?? GOOGLE_PEM_CERTS_URL,
    ...(options.certsFetchTimeoutMs !== undefined && { fetchTimeoutMs: options.certsFetchTimeoutMs }),
    ...(options.unknownKeyRefreshIntervalMs !== undefined && {
      unknownKeyRefreshIntervalMs: options.unknownKeyRefreshIntervalMs,
    }),
    ...(options.now !== undefined && { now: options.now }),
  });

  return {
    async verify(token) {
      const header = decodeHeader(token);
      // Refusing any other `alg` up front closes `none` and HS256-with-the-public-key confusion before
      // any signature code runs.
      if (header.alg !== 'RS256') throw new AuthError('algorithm');
      if (typeof header.kid !== 'string') throw new AuthError('unknown-key');

      let key;
      try {
        key = (await signingKeys.keysFor(header.kid)).get(header.kid);
      } catch (error) {
        if (error instanceof SigningKeysUnavailableError) throw new AuthUnavailableError(error.message);
        throw error;
      }
      if (!key) throw new AuthError('unknown-key');
      const payload = verifySignedJwt(token, key, issuers, Date.now() / 1000);

      const identity = identityOf(payload);
      const { iat, exp } = payload as { iat: number; exp: number };
      if (exp <= iat) throw new AuthError('claims', 'it expires before it was issued');
      if (exp - iat > MAX_TOKEN_LIFETIME_SECONDS) throw new AuthError('lifetime');
      const aud = payload.aud;
      if (typeof aud !== 'string' || !audiences.has(normalizeAudience(aud))) throw new AuthError('audience');
      return identity;
    },
  };
}
