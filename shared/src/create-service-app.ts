import express from 'express';
import type { Express, RequestHandler } from 'express';
import { createErrorMiddleware, methodNotAllowed, notFound } from './error-middleware.js';
import type { Logger } from './logger.js';
import { createRequestLogger } from './request-logger.js';

/** The HTTP methods a route table may name, in Express's lower-case spelling. */
export type RouteMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * One path's handlers by method. A path with methods answers any other method with 405 and `Allow`.
 * `all` takes every method (the handlers then answer 405 themselves, as the deleter does after
 * authenticating, so an anonymous caller learns nothing).
 */
export type RouteMethods =
  { readonly [M in RouteMethod]?: readonly RequestHandler[] } | { readonly all: readonly RequestHandler[] };

export interface ServiceAppOptions {
  logger: Logger;
  /** Google Cloud project id, for trace links in request logs. */
  projectId?: string | undefined;
  /** The route table: path → method → handlers, in the order Express should try them. */
  routes: Readonly<Record<string, RouteMethods>>;
}

/**
 * The Express app every service builds its routes into: no `X-Powered-By` or ETag, a request logger
 * first, 405 for a known path with another method, 404 for an unknown path, and the error middleware
 * last, the one place an error becomes a response.
 */
export function createServiceApp({ logger, projectId, routes }: ServiceAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(createRequestLogger(logger, projectId === undefined ? {} : { projectId }));
  for (const [path, methods] of Object.entries(routes)) {
    if ('all' in methods) {
      app.all(path, ...methods.all);
      continue;
    }
    const allowed: string[] = [];
    for (const [method, handlers] of Object.entries(methods) as [RouteMethod, RequestHandler[]][]) {
      app[method](path, ...handlers);
      allowed.push(method.toUpperCase());
    }
    app.all(path, methodNotAllowed(allowed));
  }
  app.use(notFound());
  app.use(createErrorMiddleware(logger));
  return app;
}
