import express from 'express';
import type { Express, RequestHandler } from 'express';
import { createAuthMiddleware, createServiceApp } from '#shared';
import type { IdTokenVerifier, Logger } from '#shared';
import { requireCaller } from './require-caller.js';

/** A webhook body larger than this is refused with 413 (GitHub caps payloads at 25 MB; ours are small). */
export const MAX_WEBHOOK_BYTES = 1024 * 1024;

/** The operations the routes lead to, and who may call what. */
export interface AutoscalerRoutes {
  verifier: IdTokenVerifier;
  logger: Logger;
  /** `POST /webhook`, behind the raw body parser. */
  webhook: RequestHandler;
  /** `POST /reconcile`, behind identity-token auth and `reconcileCallers`. */
  reconcile: RequestHandler;
  /** `GET /fleet`, behind identity-token auth and `fleetViewers`. */
  fleet: RequestHandler;
  reconcileCallers: readonly string[];
  fleetViewers: readonly string[];
  projectId?: string;
}

/**
 * The autoscaler's route table: `POST /webhook` (GitHub, signed), `POST /reconcile` (Cloud Scheduler,
 * Google identity token), `GET /fleet` (status readers, Google identity token), `GET /healthz`.
 */
export function createApp(routes: AutoscalerRoutes): Express {
  const authenticate = createAuthMiddleware(routes.verifier);
  return createServiceApp({
    logger: routes.logger,
    projectId: routes.projectId,
    routes: {
      '/healthz': {
        get: [
          (_req, res) => {
            res.type('text/plain').send('ok');
          },
        ],
      },
      // The raw bytes, whatever the Content-Type: the signature is over exactly what GitHub sent.
      '/webhook': { post: [express.raw({ type: () => true, limit: MAX_WEBHOOK_BYTES }), routes.webhook] },
      '/reconcile': {
        post: [authenticate, requireCaller(routes.reconcileCallers, 'POST /reconcile'), routes.reconcile],
      },
      '/fleet': { get: [authenticate, requireCaller(routes.fleetViewers, 'GET /fleet'), routes.fleet] },
    },
  });
}
