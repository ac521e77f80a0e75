import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { HttpError } from './http-error.js';
import { AuthUnavailableError } from './id-token-verifier.js';
import { IAP_ASSERTION_HEADER, IapAssertionError } from './iap-verifier.js';
import type { IapIdentity, IapVerifier } from './iap-verifier.js';
import { isIapViewer } from './iap-viewers.js';
import type { IapViewers } from './iap-viewers.js';

/**
 * Lets through only people Identity-Aware Proxy vouches for and `viewers` lists, and stores who in
 * `res.locals.viewer`. The identity comes from `x-goog-iap-jwt-assertion` alone: `Authorization` and
 * `X-Serverless-Authorization` are never read here. IAP calls Cloud Run with its own identity token in
 * `X-Serverless-Authorization`, which Cloud Run checks against IAM and passes on without its signature
 * (https://cloud.google.com/run/docs/securing/identity-aware-proxy-cloud-run); a VM's Google identity token,
 * in whichever header, names no person and opens nothing.
 *
 * - no assertion, two of them, or one that does not verify: 401 saying why;
 * - IAP's keys unreachable with none cached: 503 with `Retry-After`;
 * - a verified person who is not a viewer: 403.
 */
export function createIapMiddleware(verifier: IapVerifier, viewers: IapViewers): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const count = req.rawHeaders.filter(
      (name, i) => i % 2 === 0 && name.toLowerCase() === IAP_ASSERTION_HEADER,
    ).length;
    const assertion = req.headers[IAP_ASSERTION_HEADER];
    if (count > 1) {
      next(refusal(new IapAssertionError('multiple')));
      return;
    }
    if (typeof assertion !== 'string' || assertion.trim() === '') {
      next(refusal(new IapAssertionError('missing')));
      return;
    }
    verifier.verify(assertion.trim()).then(
      (identity) => {
        if (!isIapViewer(viewers, identity)) {
          next(new HttpError(403, 'this account may not view the fleet status (see STATUS_VIEWERS)'));
          return;
        }
        res.locals.viewer = identity;
        next();
      },
      (error: unknown) => next(refusal(error)),
    );
  };
}

function refusal(error: unknown): HttpError {
  if (error instanceof IapAssertionError) return new HttpError(401, error.message);
  if (error instanceof AuthUnavailableError) {
    return new HttpError(503, "cannot verify IAP's signed header right now; try again shortly", {
      'Retry-After': '5',
    });
  }
  // A bug in the verifier: fail closed without passing its text on.
  return new HttpError(401, 'IAP assertion could not be verified');
}

/** The viewer of a request that passed {@link createIapMiddleware}. */
export function viewerOf(res: Response): IapIdentity {
  const viewer = res.locals.viewer as IapIdentity | undefined;
  if (!viewer) throw new Error('viewerOf used on a route without the IAP middleware');
  return viewer;
}
