import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { abbreviate } from './abbreviate.js';
import { HttpError } from './http-error.js';
import type { Logger } from './logger.js';
import { requestLog } from './request-logger.js';

/**
 * Errors from Express's body parsers carry a `type`. Their messages may quote the request body, so each
 * gets a fixed message here instead. https://github.com/expressjs/body-parser#errors
 */
const BODY_PARSER_ERRORS: Readonly<Record<string, [number, string]>> = {
  'entity.too.large': [413, 'request body is too large'],
  'entity.parse.failed': [400, 'request body is not valid JSON'],
  'entity.verify.failed': [400, 'request body failed verification'],
  'encoding.unsupported': [415, 'unsupported content encoding'],
  'charset.unsupported': [415, 'unsupported charset'],
  'request.aborted': [400, 'request aborted'],
  'request.size.invalid': [400, 'request size did not match Content-Length'],
  'stream.encoding.set': [500, 'internal error'],
};

function toHttpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  const { type, status, expose } = (error ?? {}) as { type?: unknown; status?: unknown; expose?: unknown };
  if (typeof type === 'string' && type in BODY_PARSER_ERRORS) {
    const [fixedStatus, message] = BODY_PARSER_ERRORS[type]!;
    return fixedStatus < 500 ? new HttpError(fixedStatus, message) : undefined;
  }
  // Other client errors from http-errors (a gzip body that does not inflate, say): keep the status, not the
  // text, which may quote the body.
  if (expose === true && typeof status === 'number' && status >= 400 && status < 500) {
    return new HttpError(status, 'request body could not be read');
  }
  return undefined;
}

/**
 * The one place an error becomes a response: an {@link HttpError} (or a body parser's client error)
 * becomes `{"error": message}` with its status; anything else is a bare 500 whose detail goes only to the
 * log, since library errors can contain tokens and internals.
 */
export function createErrorMiddleware(logger: Logger): ErrorRequestHandler {
  return (error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const httpError = toHttpError(error);
    if (httpError) {
      res.status(httpError.status).set(httpError.headers).json({ error: httpError.message });
      return;
    }
    const err = error as { name?: unknown; stack?: unknown } | null;
    // Only the error's name and stack frames: a message may carry a token (google-auth-library's do).
    const stack = typeof err?.stack === 'string' ? err.stack.split('\n').slice(1, 8).join('\n') : undefined;
    requestLog(res, logger).error({ errorName: err?.name, stack }, 'unhandled error');
    res.status(500).json({ error: 'internal error' });
  };
}

/** Answers 404 for any path no route claimed, echoing the path only as far as {@link abbreviate} does. */
export function notFound(): RequestHandler {
  return (req, _res, next) =>
    next(new HttpError(404, `no such endpoint: ${req.method} ${abbreviate(req.path)}`));
}

/** Answers 405 with `Allow` for a path whose methods are `allowed`. */
export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  return (req, _res, next) =>
    next(
      new HttpError(405, `method ${req.method} is not allowed here; use ${allowed.join(' or ')}`, {
        Allow: allowed.join(', '),
      }),
    );
}
