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
import { createCallerLimit } from './caller-limit.js';
import { checkScaleDown } from './check-scale-down.js';
import type { ScaleDownDecision } from './check-scale-down.js';
import type { ComputeClient } from './compute-client.js';
import { deleteOwnInstance, deleteOwnInstanceIfScaleDown } from './delete-own-instance.js';
import type { ConditionalDeletion, ConditionalDeletionReason } from './delete-own-instance.js';
import { createKeyedMutex } from './keyed-mutex.js';
import { createMigReads, createSharedMigReads } from './mig-reads.js';
import { resolveCallerMig } from './resolve-caller-mig.js';
import { formatMigRef } from './resource-ref.js';

/** Everything the deleter talks to, injected so tests can pass the real clients pointed at fakes. */
export interface InstanceDeleterDeps {
  verifier: IdTokenVerifier;
  compute: ComputeClient;
  /** Anchored: the whole MIG name must match. */
  migPattern: RegExp;
  logger: Logger;
  /** How long a request may take, every Compute call and credential look-up included; 504 past it. */
  requestTimeoutMs: number;
  /** How long `GET /` reuses a read of a MIG or an autoscaler, in ms (default {@link SHARED_READ_MAX_AGE_MS}). */
  sharedReadMaxAgeMs?: number;
  /** The clock of the shared reads' ages; `Date.now` by default. */
  now?: () => number;
  /** For trace links in logs. */
  projectId?: string;
}

/** `GET /` answers from reads at most this old (ms), shared by every VM of the MIG asking meanwhile. */
export const SHARED_READ_MAX_AGE_MS = 1000;

/** What a VM sent a second request while its first was in flight is told to wait, in seconds. */
const BUSY_CALLER_RETRY_AFTER_SECONDS = 5;

/** What a request decided: the answer (a text line, or JSON for a conditional delete) and its log fields. */
type Outcome = {
  outcome: 'deleting' | 'already-deleting' | 'kept' | 'scale-down' | 'no-scale-down';
  summary: string;
  log?: Partial<ScaleDownDecision> | { reason: ConditionalDeletionReason } | undefined;
} & ({ text: string } | { json: ConditionalDeletion });

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
 * `true` or `false`), or both at once (`DELETE /?if=scale-down`, answering JSON). The caller is the VM
 * named in its identity token (resolve-caller-mig.ts), never anything else, and it has at most one
 * request in flight (a second one is 429).
 *
 * Nothing here waits for a MIG to change: every answer comes from the MIG as it is now. Decisions to
 * delete are made one at a time per MIG inside this process, on reads made afresh, and followed at once
 * by the deletion; `GET /` shares its reads among the VMs of a MIG. Several processes do not share the
 * per-MIG lock, which is why the service is deployed as a single instance (deploy/instance-deleter.sh).
 */
export function createApp(deps: InstanceDeleterDeps): Express {
  const { compute, logger } = deps;
  const migLock = createKeyedMutex();
  const callers = createCallerLimit();
  const freshReads = createMigReads(compute);
  const sharedReads = createSharedMigReads(compute, {
    maxAgeMs: deps.sharedReadMaxAgeMs ?? SHARED_READ_MAX_AGE_MS,
    now: deps.now ?? Date.now,
  });

  /** One handler for both methods, so every request leaves exactly one decision line in the log. */
  async function answer(req: Request, res: Response): Promise<void> {
    const log = requestLog(res, logger);
    const caller = callerOf(res);
    const fields: Record<string, unknown> = { caller: describeCaller(caller), method: req.method };
    let leave: (() => void) | undefined;
    try {
      const vm = requireComputeEngineClaims(caller);
      fields.instance = vm.instanceName;
      const condition = conditionOf(req);
      leave = callers.tryEnter(`${vm.projectId}/${vm.zone}/${vm.instanceId}`);
      if (!leave) {
        throw new HttpError(
          429,
          `instance ${vm.instanceName} already has a request in progress at the instance deleter; ask again once it is answered`,
          { 'Retry-After': String(BUSY_CALLER_RETRY_AFTER_SECONDS) },
        );
      }
      // Every Compute call and credential look-up has a deadline of its own (compute-client.ts,
      // compute-auth-client.ts); the request as a whole gets one too. Past it the caller hears 504, and a
      // deletion not yet sent is dropped instead of happening after the caller was told it did not.
      const result = await withDeadline<Outcome>(
        deps.requestTimeoutMs,
        () => new HttpError(504, 'Compute Engine did not answer in time; ask again later'),
        async (deadline): Promise<Outcome> => {
          const mig = await resolveCallerMig(deps, vm);
          fields.mig = formatMigRef(mig);
          const operation = { compute, freshReads, migLock };
          if (req.method === 'GET') {
            const decision = await checkScaleDown({ sharedReads, freshReads }, vm, mig);
            const text = String(decision.scaleDown);
            const outcome = decision.scaleDown ? 'scale-down' : 'no-scale-down';
            return { outcome, text, summary: `scale-down check: ${text}`, log: decision };
          }
          if (condition === 'scale-down') {
            const { answer: json, decision } = await deleteOwnInstanceIfScaleDown(
              operation,
              vm,
              mig,
              deadline,
            );
            const outcome = !json.deleted
              ? 'kept'
              : json.reason === 'already-deleting'
                ? json.reason
                : 'deleting';
            return { outcome, json, summary: json.message, log: { ...decision, reason: json.reason } };
          }
          const deletion = await deleteOwnInstance(operation, vm, mig, deadline);
          return { outcome: deletion.outcome, text: deletion.body, summary: deletion.body.trim() };
        },
      );
      log.info({ ...fields, outcome: result.outcome, ...result.log }, result.summary);
      if ('json' in result) res.json(result.json);
      else res.type('text/plain').send(result.text);
    } catch (error) {
      if (error instanceof HttpError && error.status < 500) {
        log.warn({ ...fields, outcome: 'refused', status: error.status }, error.message);
      } else if (error instanceof HttpError) {
        log.error({ ...fields, outcome: 'failed', status: error.status }, error.message);
      } else {
        log.error({ ...fields, outcome: 'failed' }, 'request failed');
      }
      throw error;
    } finally {
      leave?.();
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
