import { OAuth2Client } from 'google-auth-library';
import { z } from 'zod';
import { AuthUnavailableError } from './id-token-verifier.js';
import { createSigningKeyCache, SigningKeysUnavailableError } from './signing-key-cache.js';

/**
 * Where IAP publishes the public keys of its signed headers, as a map of key id to PEM (the URL
 * google-auth-library's `getIapPublicKeys` reads). https://cloud.google.com/iap/docs/signed-headers-howto
 */
export const IAP_PUBLIC_KEYS_URL = 'https://www.gstatic.com/iap/verify/public_key';
/** The `iss` of every assertion IAP signs. */
export const IAP_ISSUER = 'https://cloud.google.com/iap';
/** The header IAP adds to every request it lets through, holding the user's signed identity. */
export const IAP_ASSERTION_HEADER = 'x-goog-iap-jwt-assertion';
/** IAP's assertions live 10 minutes; one that claims longer was not signed by IAP. */
export const MAX_IAP_ASSERTION_LIFETIME_SECONDS = 3600;

/** Why an assertion was refused. Each reason has a fixed message that is safe to show the caller. */
export type IapFailureReason =
  | 'missing'
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

const MESSAGES: Readonly<Record<IapFailureReason, string>> = {
  missing: `no ${IAP_ASSERTION_HEADER} header: this service is reached through Identity-Aware Proxy only`,
  multiple: `more than one ${IAP_ASSERTION_HEADER} header`,
  malformed: 'IAP assertion is malformed: expected a JWT of three base64url parts',
  algorithm: 'IAP assertion must be signed with ES256 (a Google identity token is not an IAP assertion)',
  'unknown-key': "IAP assertion is signed with a key that is not among IAP's published keys",
  signature: 'IAP assertion signature is invalid',
  expired: 'IAP assertion has expired',
  'not-yet-valid': 'IAP assertion is not valid yet: issued in the future',
  lifetime: `IAP assertion lifetime exceeds ${MAX_IAP_ASSERTION_LIFETIME_SECONDS} seconds`,
  issuer: `IAP assertion was not issued by ${IAP_ISSUER}`,
  audience: 'IAP assertion audience is not this service',
  claims: 'IAP assertion claims are missing or malformed',
};

/** An IAP assertion was refused; the message is fixed per reason and never quotes the assertion. */
export class IapAssertionError extends Error {
  override readonly name = 'IapAssertionError';

  constructor(readonly reason: IapFailureReason) {
    super(MESSAGES[reason]);
  }
}

/** The person IAP let through, from a verified assertion. */
export interface IapIdentity {
  /** The user's email, lower-cased. */
  email: string;
  /** IAP's stable user id, e.g. `accounts.google.com:1234567890`. */
  sub: string;
  /** The user's Google Workspace (hosted) domain, lower-cased; absent for consumer accounts. */
  hd?: string;
}

/** Checks `x-goog-iap-jwt-assertion` values. */
export interface IapVerifier {
  /**
   * @throws IapAssertionError when the assertion is not valid for this service (a 401).
   * @throws AuthUnavailableError when IAP's keys could not be fetched and none are cached (a 503).
   */
  verify(assertion: string): Promise<IapIdentity>;
}

export interface IapVerifierOptions {
  /**
   * The audience IAP puts in assertions for this service: `/projects/PROJECT_NUMBER/locations/REGION/services/
   * SERVICE` for IAP enabled on a Cloud Run service, `/projects/PROJECT_NUMBER/global/backendServices/ID` behind
   * a load balancer (https://cloud.google.com/iap/docs/signed-headers-howto#verifying_the_jwt_payload).
   */
  audience: string;
  /** The PEM key map; IAP's by default, a loopback issuer in tests and the sandbox. */
  keysUrl?: string;
  /** Deadline of one key fetch, in milliseconds. Default 5000. */
  keysFetchTimeoutMs?: number;
  /** Least time between two fetches caused by an unknown key id, in milliseconds. Default 60000. */
  unknownKeyRefreshIntervalMs?: number;
  /** Milliseconds since the epoch, for the key cache's clock; injected in tests. */
  now?: () => number;
}

const claimsSchema = z.object({
  email: z.string().regex(/^[^\s@]+@[^\s@]+$/),
  sub: z.string().min(1),
  hd: z.string().min(1).optional(),
  iat: z.number(),
  exp: z.number(),
});

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function decodeHeader(token: string): Record<string, unknown> {
  if (!JWT_SHAPE.test(token)) throw new IapAssertionError('malformed');
  try {
    const header: unknown = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8'));
    if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new Error();
    return header as Record<string, unknown>;
  } catch {
    throw new IapAssertionError('malformed');
  }
}

/** google-auth-library's verification errors by their fixed prefixes; the rest of each message quotes the token. */
function reasonOf(message: string): IapFailureReason {
  const prefixes: Array<[string, IapFailureReason]> = [
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
  return prefixes.find(([prefix]) => message.startsWith(prefix))?.[1] ?? 'malformed';
}

/**
 * Builds a verifier of IAP's signed header on google-auth-library's `verifySignedJwtWithCertsAsync` (ES256
 * signature, issuer `https://cloud.google.com/iap`, the audience, the token's times with a 5-minute clock
 * skew), as IAP documents (https://cloud.google.com/iap/docs/signed-headers-howto). On top of it this refuses
 * any algorithm but ES256 before a signature is looked at (so a Google identity token, RS256, never gets that
 * far), caps the lifetime at an hour and requires `email` and `sub`. IAP's keys come from the same cache as
 * Google's certificates ({@link createSigningKeyCache}): fetched with a deadline, kept for their `max-age`,
 * kept while a refresh fails, fetched again when an assertion names a key id not yet seen.
 */
export function createIapVerifier(options: IapVerifierOptions): IapVerifier {
  if (options.audience.trim() === '') throw new Error('an IAP audience is required');
  const client = new OAuth2Client();
  const keys = createSigningKeyCache({
    url: options.keysUrl ?? IAP_PUBLIC_KEYS_URL,
    ...(options.keysFetchTimeoutMs !== undefined && { fetchTimeoutMs: options.keysFetchTimeoutMs }),
    ...(options.unknownKeyRefreshIntervalMs !== undefined && {
      unknownKeyRefreshIntervalMs: options.unknownKeyRefreshIntervalMs,
    }),
    ...(options.now !== undefined && { now: options.now }),
  });

  return {
    async verify(assertion) {
      const header = decodeHeader(assertion);
      if (header.alg !== 'ES256') throw new IapAssertionError('algorithm');
      if (typeof header.kid !== 'string') throw new IapAssertionError('unknown-key');
      let key;
      try {
        key = (await keys.keysFor(header.kid)).get(header.kid);
      } catch (error) {
        if (error instanceof SigningKeysUnavailableError) throw new AuthUnavailableError(error.message);
        throw error;
      }
      if (!key || key.asymmetricKeyType !== 'ec') throw new IapAssertionError('unknown-key');
      // A KeyObject where the library expects a PEM string: crypto's verify takes either (as for the
      // identity-token verifier), and parsing once per key set beats parsing once per request.
      const certs = { [header.kid]: key as unknown as string };

      let payload: unknown;
      try {
        const ticket = await client.verifySignedJwtWithCertsAsync(
          assertion,
          certs,
          options.audience,
          [IAP_ISSUER],
          86_400,
        );
        payload = ticket.getPayload();
      } catch (error) {
        throw new IapAssertionError(reasonOf(String((error as Error | undefined)?.message ?? '')));
      }
      const parsed = claimsSchema.safeParse(payload);
      if (!parsed.success) throw new IapAssertionError('claims');
      const claims = parsed.data;
      if (claims.exp <= claims.iat) throw new IapAssertionError('claims');
      if (claims.exp - claims.iat > MAX_IAP_ASSERTION_LIFETIME_SECONDS)
        throw new IapAssertionError('lifetime');
      const identity: IapIdentity = { email: claims.email.toLowerCase(), sub: claims.sub };
      if (claims.hd !== undefined) identity.hd = claims.hd.toLowerCase();
      return identity;
    },
  };
}
