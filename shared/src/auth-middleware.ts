import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { CallerIdentity } from './caller-identity.js';
import { HttpError } from './http-error.js';
import { AuthError, AuthUnavailableError } from './id-token-verifier.js';
import type { IdTokenVerifier } from './id-token-verifier.js';

const BEARER = /^Bearer +([^ ]+) *$/i;

/** Reads the one `Authorization: Bearer <token>` a request carries, or says what is wrong with it. */
export function bearerToken(req: Request): string {
  // Node keeps only the first of repeated Authorization headers; a second one is refused, not ignored.
  const count = req.rawHeaders.filter(
    (name, i) => i % 2 === 0 && name.toLowerCase() === 'authorization',
  ).length;
  if (count > 1) throw new AuthError('multiple');
  const header = req.headers.authorization;
  if (header === undefined || header.trim() === '') throw new AuthError('missing');
  if (/^bearer$/i.test(header.trim())) throw new AuthError('missing', 'the Bearer token is empty');
  const match = BEARER.exec(header.trim());
  if (!match) throw new AuthError('not-bearer');
  return match[1]!;
}

/**
 * Verifies the caller's Google identity token and stores who it is in `res.locals.caller`. A refusal is
 * a 401 naming the reason; `WWW-Authenticate` follows RFC 6750. Nothing of the token is echoed or logged.
 */
export function createAuthMiddleware(verifier: IdTokenVerifier): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    let token: string;
    try {
      token = bearerToken(req);
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
