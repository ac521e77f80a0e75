import type { RequestHandler } from 'express';
import { HttpError, callerOf } from '#shared';

/**
 * After the auth middleware: lets through only callers whose verified service-account email is in
 * `emails` (lower-cased); anyone else gets 403. An empty list lets no one in.
 */
export function requireCaller(emails: readonly string[], endpoint: string): RequestHandler {
  const allowed = new Set(emails);
  return (_req, res, next) => {
    const email = callerOf(res).email?.toLowerCase();
    if (email === undefined || !allowed.has(email)) {
      next(new HttpError(403, `this caller may not use ${endpoint}`));
      return;
    }
    next();
  };
}
