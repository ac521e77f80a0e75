import { OAuth2Client } from 'google-auth-library';
import { z } from 'zod';
import type { CallerIdentity } from './caller-identity.js';
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

const computeEngineClaims = z.object({
  project_id: z.string().min(1),
  project_number: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]),
  zone: z.string().min(1),
  // A string in real tokens. A JSON number could already have lost digits, so it is refused.
  instance_id: z.string().regex(/^\d{1,20}$/),
  instance_name: z.string().min(1),
});

const identityClaims = z.object({
  sub: z.string().min(1),
  email: z.string().optional(),
  email_verified: z.union([z.boolean(), z.string()]).optional(),
  iat: z.number(),
  exp: z.number(),
  google: z.object({ compute_engine: computeEngineClaims.optional() }).loose().optional(),
});

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

/**
 * Maps google-auth-library's verification errors to reasons by their fixed prefixes. The messages
 * themselves are dropped: most of them contain the whole token.
 */
function reasonOf(message: string): AuthFailureReason | undefined {
  const prefixes: Array<[string, AuthFailureReason]> = [
    ['Wrong number of segments', 'malformed'],
    ["Can't parse token", 'malformed'],
    ['No pem found', 'unknown-key'],
    ['Invalid token signature', 'signature'],
    ['No issue time', 'claims'],
    ['No expiration time', 'claims'],
    ['iat field using invalid format', 'claims'],
    ['exp field using invalid format', 'claims'],
    ['Expiration time too far in future', 'lifetime'],
    ['Token used too early', 'not-yet-valid'],
    ['Token used too late', 'expired'],
    ['Invalid issuer', 'issuer'],
    ['Wrong recipient', 'audience'],
  ];
  return prefixes.find(([prefix]) => message.startsWith(prefix))?.[1];
}

/**
 * Builds a verifier on google-auth-library's `OAuth2Client`, which checks the RS256 signature, the issuer
 * and the token's times with a 5-minute clock skew. On top of it this checks the algorithm, the audience
 * (one trailing slash ignored), a one-hour maximum lifetime and the shape of the claims. The certificates
 * come from {@link createSigningKeyCache}: fetched with a deadline, parsed once, kept while a refresh fails,
 * and fetched again when a token names a key id not yet seen (a key rotation).
 */
export function createIdTokenVerifier(options: IdTokenVerifierOptions): IdTokenVerifier {
  if (options.audiences.length === 0) throw new Error('at least one audience is required');
  const audiences = new Set(options.audiences.map(normalizeAudience));
  const client = new OAuth2Client();
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
      // google-auth-library does not look at `alg`; refusing anything else up front closes `none` and
      // HS256-with-the-public-key confusion before any signature code runs.
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
      // google-auth-library hands the certificate to crypto's verify as given; a KeyObject (which verify
      // accepts too) saves parsing a PEM string on every call. Should a future version stop accepting it,
      // valid tokens would fail verification (closed), and the tests would say so.
      const certs = { [header.kid]: key as unknown as string };

      let payload: unknown;
      try {
        // No audience here: it is compared below, after normalising trailing slashes.
        const ticket = await client.verifySignedJwtWithCertsAsync(
          token,
          certs,
          undefined,
          issuers,
          // The library's own limit is relative to now; the lifetime is checked below, after the times.
          86_400,
        );
        payload = ticket.getPayload();
      } catch (error) {
        const reason = reasonOf(String((error as Error | undefined)?.message ?? ''));
        throw new AuthError(reason ?? 'malformed');
      }

      const parsed = identityClaims.safeParse(payload);
      if (!parsed.success) throw new AuthError('claims');
      const claims = parsed.data;
      if (claims.exp <= claims.iat) throw new AuthError('claims', 'it expires before it was issued');
      if (claims.exp - claims.iat > MAX_TOKEN_LIFETIME_SECONDS) throw new AuthError('lifetime');
      const aud = (payload as { aud?: unknown }).aud;
      if (typeof aud !== 'string' || !audiences.has(normalizeAudience(aud))) throw new AuthError('audience');

      const identity: CallerIdentity = { sub: claims.sub };
      const verified = claims.email_verified === true || claims.email_verified === 'true';
      if (claims.email !== undefined && verified) identity.email = claims.email;
      const compute = claims.google?.compute_engine;
      if (compute) {
        identity.compute = {
          projectId: compute.project_id,
          projectNumber: String(compute.project_number),
          zone: compute.zone,
          instanceId: compute.instance_id,
          instanceName: compute.instance_name,
        };
      }
      return identity;
    },
  };
}
