import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { CallerIdentity } from './caller-identity.js';
import { HttpError } from './http-error.js';
import { AuthError, AuthUnavailableError } from './id-token-verifier.js';
import type { IdTokenVerifier } from './id-token-verifier.js';

const BEARER = /^Bearer +([^ ]+) *$/i;

/** How many times a request carries header `lowerCaseName` (Node's `req.headers` keeps only one). */
function countHeader(req: Request, lowerCaseName: string): number {
  const raw = req.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerCaseName.length && name.toLowerCase() === lowerCaseName) count += 1;
  }
  return count;
}

/** Reads the one `Authorization: Bearer <token>` a request carries, or says what is wrong with it. */
export function bearerToken(req: Request): string {
  // Node keeps only the first of repeated Authorization headers; a second one is refused, not ignored.
  if (countHeader(req, 'authorization') > 1) throw new AuthError('multiple');
  const header = req.headers.authorization;
  if (header === undefined || header.trim() === '') throw new AuthError('missing');
  if (/^bearer$/i.test(header.trim())) throw new AuthError('missing', 'the Bearer token is empty');
  const match = BEARER.exec(header.trim());
  if (!match) throw new AuthError('not-bearer');
  return match[1]!;
}

/** The header Cloud Run checks IAM on instead of `Authorization` when a request carries it. */
export const SERVERLESS_AUTHORIZATION = 'x-serverless-authorization';

export interface AuthMiddlewareOptions {
  /**
   * What a route does with `X-Serverless-Authorization`. Cloud Run checks IAM on that header when it is
   * present and passes `Authorization` to the container untouched
   * (https://cloud.google.com/run/docs/authenticating/service-to-service), so a request carrying both can
   * get past IAM as one identity and be authorized here as another.
   *
   * - `'same-token'` (default): a request with `X-Serverless-Authorization` must carry the same token in
   *   `Authorization` (compared without the signature, which Cloud Run may remove from the header it checked),
   *   else 400; one with only `X-Serverless-Authorization` is 401, since only `Authorization` is verified here.
   * - `'ignore'`: the header is IAM's business alone, as on a route behind Identity-Aware Proxy, where it
   *   carries IAP's own token and the user's identity comes in `x-goog-iap-jwt-assertion`.
   */
  serverlessAuthorization?: 'same-token' | 'ignore';
}

/** The signed part of a JWT (header and payload), or the whole value when it is not JWT-shaped. */
function signedPart(token: string): string {
  const parts = token.split('.');
  return parts.length === 3 ? `${parts[0]}.${parts[1]}` : token;
}

/**
 * Refuses a request whose `X-Serverless-Authorization` names another identity than its `Authorization`,
 * or that carries only the former. Nothing of either token is echoed.
 */
function assertOneIdentity(req: Request, token: string | undefined): void {
  const count = countHeader(req, SERVERLESS_AUTHORIZATION);
  if (count === 0) return;
  if (count > 1) {
    throw new HttpError(400, 'more than one X-Serverless-Authorization header');
  }
  if (token === undefined) {
    throw new HttpError(
      401,
      'X-Serverless-Authorization is not verified by this service: send the identity token in Authorization (it may be in both)',
      { 'WWW-Authenticate': 'Bearer' },
    );
  }
  const match = BEARER.exec(String(req.headers[SERVERLESS_AUTHORIZATION]).trim());
  if (!match || signedPart(match[1]!) !== signedPart(token)) {
    throw new HttpError(
      400,
      'Authorization and X-Serverless-Authorization carry different identity tokens: Cloud Run checks IAM on one and this service would authorize the other; send one token, in Authorization, or the same token in both',
    );
  }
}

/**
 * Verifies the caller's Google identity token, from `Authorization` only, and stores who it is in
 * `res.locals.caller`. A refusal is a 401 naming the reason; `WWW-Authenticate` follows RFC 6750. A request
 * that names a second identity in `X-Serverless-Authorization` is refused as
 * {@link AuthMiddlewareOptions.serverlessAuthorization} says. Nothing of the token is echoed or logged.
 */
export function createAuthMiddleware(
  verifier: IdTokenVerifier,
  options: AuthMiddlewareOptions = {},
): RequestHandler {
  const checkServerless = (options.serverlessAuthorization ?? 'same-token') === 'same-token';
  return (req: Request, res: Response, next: NextFunction) => {
    let token: string;
    try {
      if (checkServerless && req.headers.authorization === undefined) assertOneIdentity(req, undefined);
      token = bearerToken(req);
      if (checkServerless) assertOneIdentity(req, token);
    } catch (error) {
      next(toHttpError(error));
      return;
    }
    verifier.verify(token).then(
      (caller) => {
        res.locals.caller = caller;
        next();
      },
      (error: unknown) => next(toHttpError(error)),
    );
  };
}

function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof AuthError) {
    return new HttpError(401, error.message, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
  }
  if (error instanceof AuthUnavailableError) {
    return new HttpError(503, 'cannot verify identity tokens right now; try again shortly', {
      'Retry-After': '5',
    });
  }
  // Anything else is a bug in the verifier. Fail closed without passing its text on.
  return new HttpError(401, 'identity token could not be verified');
}

/** The verified caller of a request that passed {@link createAuthMiddleware}. */
export function callerOf(res: Response): CallerIdentity {
  const caller = res.locals.caller as CallerIdentity | undefined;
  if (!caller) throw new Error('callerOf used on a route without the auth middleware');
  return caller;
}
