import type { Express, RequestHandler } from 'express';
import { createIapMiddleware, createServiceApp, viewerOf } from '#shared';
import type { IapVerifier, IapViewers, Logger } from '#shared';
import { renderStatusPage, STATUS_PAGE_CSP } from './render-status-page.js';
import type { StatusSnapshots } from './status-snapshots.js';

/** What the routes need. */
export interface FleetStatusDeps {
  iapVerifier: IapVerifier;
  viewers: IapViewers;
  status: StatusSnapshots;
  logger: Logger;
  projectId?: string;
}

/**
 * Headers of every answer: the page's CSP (its own inline style by hash, no script, no framing), no MIME
 * sniffing, no referrer, and no caching (the page is per viewer and changes every few seconds).
 */
const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set({
    'Content-Security-Policy': STATUS_PAGE_CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  });
  next();
};

/**
 * The fleet status service's routes: `GET /status` (the page), `GET /status.json` (the same data), `GET /`
 * (to the page), each for people Identity-Aware Proxy vouches for and `STATUS_VIEWERS` lists; `GET /healthz`.
 */
export function createApp(deps: FleetStatusDeps): Express {
  const viewer = createIapMiddleware(deps.iapVerifier, deps.viewers);
  const page: RequestHandler = async (_req, res) => {
    const view = await deps.status.current();
    res.type('html').send(renderStatusPage(view, viewerOf(res)));
  };
  const json: RequestHandler = async (_req, res) => {
    res.json(await deps.status.current());
  };
  return createServiceApp({
    logger: deps.logger,
    projectId: deps.projectId,
    routes: {
      '/status': { get: [securityHeaders, viewer, page] },
      '/status.json': { get: [securityHeaders, viewer, json] },
      '/': {
        get: [
          securityHeaders,
          viewer,
          (_req, res) => {
            res.redirect(303, 'status');
          },
        ],
      },
      '/healthz': {
        get: [
          (_req, res) => {
            res.type('text/plain').send('ok');
          },
        ],
      },
    },
  });
}
