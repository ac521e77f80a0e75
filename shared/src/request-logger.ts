import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { abbreviate } from './abbreviate.js';
import type { Logger } from './logger.js';
import { parseTraceContext, traceLogFields } from './trace-context.js';

export interface RequestLoggerOptions {
  /** Google Cloud project id, to write traces in the `projects/P/traces/T` form Cloud Logging links. */
  projectId?: string;
}

/**
 * Keeps a URL's path and query parameter names but not their values: a confused client may put a token in
 * the query string, and nothing this service reads from a query is worth that risk.
 */
export function maskQuery(url: string): string {
  const at = url.indexOf('?');
  if (at === -1) return url;
  const names = url
    .slice(at + 1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => `${pair.split('=')[0]!.slice(0, 64)}=…`);
  return `${url.slice(0, at)}?${names.join('&')}`;
}

/** Where a request's logger is made ({@link requestLog} reads it): a function, so it is made when first used. */
const REQUEST_LOGGER = 'requestLogger';

/**
 * Gives each request a child logger ({@link requestLog}) carrying its trace, and writes one line per
 * request when the response ends, with an `httpRequest` Cloud Logging understands. Headers are never
 * logged: the `Authorization` header holds the caller's identity token. The URL, path and User-Agent, which
 * the caller chooses, are cut to {@link abbreviate}'s length.
 */
export function createRequestLogger(logger: Logger, options: RequestLoggerOptions = {}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    // The child logger is made when something logs, not for every request: most requests log nothing
    // but their one line, and none at all when that line's level is off.
    let log: Logger | undefined;
    const requestLogger = (): Logger => {
      if (log === undefined) {
        const trace = parseTraceContext(req.get('x-cloud-trace-context'));
        log = trace ? logger.child(traceLogFields(trace, options.projectId)) : logger;
      }
      return log;
    };
    res.locals[REQUEST_LOGGER] = requestLogger;
    res.on('finish', () => {
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      const userAgent = req.get('user-agent');
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const line = {
        httpRequest: {
          requestMethod: req.method,
          requestUrl: abbreviate(maskQuery(req.originalUrl)),
          status,
          responseSize: res.get('content-length'),
          userAgent: userAgent === undefined ? undefined : abbreviate(userAgent),
          remoteIp: req.ip,
          latency: `${seconds.toFixed(6)}s`,
          protocol: `HTTP/${req.httpVersion}`,
        },
      };
      requestLogger()[level](line, `${req.method} ${abbreviate(req.path)} ${status}`);
    });
    next();
  };
}

/** The request's logger, or the given fallback outside a logged request. */
export function requestLog(res: Response, fallback: Logger): Logger {
  return (res.locals[REQUEST_LOGGER] as (() => Logger) | undefined)?.() ?? fallback;
}
