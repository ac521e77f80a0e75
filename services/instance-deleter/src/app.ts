import { setTimeout as delay } from 'node:timers/promises';
import type { Express, NextFunction, Request, Response } from 'express';
import {
  HttpError,
  callerOf,
  createAuthMiddleware,
  createServiceApp,
  describeCaller,
  methodNotAllowed,
  requestLog,
  requireComputeEngineClaims,
  withDeadline,
} from '#shared';
import type { IdTokenVerifier, Logger } from '#shared';
import { checkScaleDown } from './check-scale-down.js';
import type { ScaleDownDecision, StabilizeClock } from './check-scale-down.js';
import type { ComputeClient } from './compute-client.js';
import { deleteOwnInstance } from './delete-own-instance.js';
import { createKeyedMutex } from './keyed-mutex.js';
import { resolveCallerMig } from './resolve-caller-mig.js';
import { formatMigRef } from './resource-ref.js';

/** Everything the deleter talks to, injected so tests can pass the real clients pointed at fakes. */
export interface InstanceDeleterDeps {
  verifier: IdTokenVerifier;
  compute: ComputeClient;
  /** Anchored: the whole MIG name must match. */
  migPattern: RegExp;
  logger: Logger;
  /** How long a request may take, the scale-down check's wait for a stable MIG included; 504 past it. */
  stabilizeTimeoutMs: number;
  /** Clock of the stability wait; `Date.now`, a timer and `Math.random` by default. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** For trace links in logs. */
  projectId?: string;
}

/** What a request decided: the response line, and the fields its log line carries. */
interface Outcome {
  outcome: 'deleting' | 'already-deleting' | 'kept' | 'scale-down' | 'no-scale-down';
  body: string;
  decision?: ScaleDownDecision | undefined;
}

const ALLOWED_METHODS = ['GET', 'DELETE'];

/**
 * The request's condition: `DELETE /?if=scale-down`, or none. Anything else in the query is refused rather
 * than ignored: a mistyped `?If=scale-down` must not turn into an unconditional deletion.
 */
function conditionOf(req: Request): 'scale-down' | undefined {
  const keys = Object.keys(req.query);
  const unknown = keys.filter((key) => key !== 'if');
  if (unknown.length > 0) {
    throw new HttpError(
      400,
      `unknown query parameter ${JSON.stringify(unknown[0])}: the only one is ?if=scale-down`,
    );
  }
  if (keys.length === 0) return undefined;
  if (req.method !== 'DELETE' || req.query.if !== 'scale-down') {
    throw new HttpError(400, 'unknown condition: the only one is DELETE /?if=scale-down');
  }
  return 'scale-down';
}

/**
 * The instance deleter's one route: a VM deletes itself from its managed instance group (`DELETE /`,
 * delete-own-instance.ts), asks whether its MIG should shrink (`GET /`, check-scale-down.ts, answering
 * `true` or `false`), or both at once (`DELETE /?if=scale-down`). The caller is the VM named in its
 * identity token (resolve-caller-mig.ts), never anything else.
 *
 * Conditional deletions are serialised per MIG inside this process. Several instances of the service do
 * not share the lock: between them, the window is one Compute API round trip (read the MIG, then
 * deleteInstances), down from the seconds of a separate `GET` and `DELETE`.
 */
export function createApp(deps: InstanceDeleterDeps): Express {
  const { compute, logger } = deps;
  const clock: StabilizeClock = {
    now: deps.now ?? Date.now,
    sleep: deps.sleep ?? ((ms) => delay(ms)),
    random: deps.random ?? Math.random,
  };
  const migLock = createKeyedMutex();

  /** One handler for both methods, so every request leaves exactly one decision line in the log. */
  async function answer(req: Request, res: Response): Promise<void> {
    const stableBy = clock.now() + deps.stabilizeTimeoutMs;
    const log = requestLog(res, logger);
    const caller = callerOf(res);
    const fields: Record<string, unknown> = { caller: describeCaller(caller), method: req.method };
    try {
      const vm = requireComputeEngineClaims(caller);
      fields.instance = vm.instanceName;
      const condition = conditionOf(req);
      // Compute calls have no deadline of their own worth waiting for (gax retries reads for minutes), so
      // the whole request gets one: past it the caller hears 504, and a deletion still queued behind the
      // MIG's lock is dropped instead of happening after the caller was told it did not.
      const result = await withDeadline<Outcome>(
        deps.stabilizeTimeoutMs,
        () => new HttpError(504, 'Compute Engine did not answer in time; ask again later'),
        async (deadline) => {
          const mig = await resolveCallerMig(deps, vm);
          fields.mig = formatMigRef(mig);
          if (req.method !== 'GET') {
            const conditional = condition === 'scale-down';
            return deleteOwnInstance({ compute, clock, migLock }, vm, mig, {
              conditional,
              stableBy,
              deadline,
            });
          }
          const decision = await checkScaleDown(compute, mig, stableBy, clock);
          return {
            outcome: decision.scaleDown ? 'scale-down' : 'no-scale-down',
            body: String(decision.scaleDown),
            decision,
          };
        },
      );
      const summary = req.method === 'GET' ? `scale-down check: ${result.body}` : result.body.trim();
      log.info({ ...fields, outcome: result.outcome, ...result.decision }, summary);
      res.type('text/plain').send(result.body);
    } catch (error) {
      if (error instanceof HttpError && error.status < 500) {
        log.warn({ ...fields, outcome: 'refused', status: error.status }, error.message);
      } else if (error instanceof HttpError) {
        log.error({ ...fields, outcome: 'failed', status: error.status }, error.message);
      } else {
        log.error({ ...fields, outcome: 'failed' }, 'request failed');
      }
      throw error;
    }
  }

  const notAllowed = methodNotAllowed(ALLOWED_METHODS);
  // Express would also route `//` here; only the root itself is this service.
  const onlyRoot = (req: Request, _res: Response, next: NextFunction) =>
    next(req.path === '/' ? undefined : 'route');
  return createServiceApp({
    logger,
    projectId: deps.projectId,
    routes: {
      // Authentication comes before the method check, so an anonymous caller learns nothing, not even
      // which methods exist.
      '/': {
        all: [
          onlyRoot,
          createAuthMiddleware(deps.verifier),
          (req: Request, res: Response, next: NextFunction) => {
            if (!ALLOWED_METHODS.includes(req.method)) notAllowed(req, res, next);
            else answer(req, res).catch(next);
          },
        ],
      },
    },
  });
}
