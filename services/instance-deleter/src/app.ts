import { setTimeout as delay } from 'node:timers/promises';
import express from 'express';
import type { Express, NextFunction, Request, Response } from 'express';
import {
  HttpError,
  callerOf,
  createAuthMiddleware,
  createErrorMiddleware,
  createRequestLogger,
  describeCaller,
  methodNotAllowed,
  notFound,
  requestLog,
} from '#shared';
import type { ComputeEngineClaims, IdTokenVerifier, Logger } from '#shared';
import type { ComputeApi } from './compute-api.js';
import { withComputeContext } from './compute-error.js';
import { createKeyedMutex } from './keyed-mutex.js';
import { describeResource, formatMigRef, parseCreatedBy } from './resource-ref.js';
import type { ResourceRef } from './resource-ref.js';
import { checkScaleDown } from './scale-down-check.js';
import type { ScaleDownDecision, StabilizeClock } from './scale-down-check.js';

/** Everything the deleter talks to, injected so tests can pass the real clients pointed at fakes. */
export interface InstanceDeleterDeps {
  verifier: IdTokenVerifier;
  compute: ComputeApi;
  /** Anchored: the whole MIG name must match. */
  migPattern: RegExp;
  logger: Logger;
  /** How long a scale-down check waits for the MIG to become stable, counted from the request's arrival. */
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

/** A request's deadline: whether it has passed, and a promise that rejects (504) when it does. */
interface Expiry {
  passed: boolean;
  expired: Promise<never>;
}

/** Why a MIG keeps its VMs, for response lines. */
function keepReason(decision: ScaleDownDecision): string {
  switch (decision.reason) {
    case 'no-autoscaler':
      return 'has no autoscaler';
    case 'no-recommendation':
      return 'has no recommended size yet';
    default:
      return `is not above its recommended size (target ${decision.targetSize}, recommended ${decision.recommendedSize})`;
  }
}

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

/** The Compute Engine claims a VM's `format=full` token carries; without them the caller is no VM. */
function vmOf(res: Response): ComputeEngineClaims {
  const vm = callerOf(res).compute;
  if (!vm) {
    throw new HttpError(
      401,
      'identity token has no Compute Engine claims: request it from the metadata server with format=full',
      { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    );
  }
  return vm;
}

/**
 * Builds the instance deleter: a VM deletes itself from its managed instance group (`DELETE /`), asks
 * whether its MIG should shrink (`GET /`, answering `true` or `false`), or both at once
 * (`DELETE /?if=scale-down`). The caller is the VM named in its identity token, never anything else.
 *
 * Conditional deletions are serialised per MIG inside this process, and each re-reads `targetSize` after
 * taking the lock, so of N VMs asking at once only as many leave as the MIG is above its recommendation.
 * Several instances of the service do not share the lock: between them, the window is one Compute API
 * round trip (read the MIG, then deleteInstances), down from the seconds of a separate `GET` and `DELETE`.
 */
export function createApp(deps: InstanceDeleterDeps): Express {
  const { compute, logger } = deps;
  const clock: StabilizeClock = {
    now: deps.now ?? Date.now,
    sleep: deps.sleep ?? ((ms) => delay(ms)),
    random: deps.random ?? Math.random,
  };
  const migLock = createKeyedMutex();

  /** The caller's MIG, once the token's VM is proven to be the live instance and its MIG one we serve. */
  async function migOf(vm: ComputeEngineClaims): Promise<ResourceRef> {
    const name = vm.instanceName;
    const instance = await withComputeContext(
      `look up instance ${name} in zone ${vm.zone} of project ${vm.projectId}`,
      () => compute.getInstance(vm.projectId, vm.zone, name),
    );
    // Names are reused and ids are not; ids exceed a JS number's precision, so compare the strings.
    if (instance.id !== vm.instanceId) {
      throw new HttpError(403, `instance ${name} is not the VM this token was issued to: its id differs`);
    }
    if (instance.createdBy === undefined) {
      throw new HttpError(403, `instance ${name} is not in a managed instance group`);
    }
    const mig = parseCreatedBy(instance.createdBy);
    if (!mig) {
      throw new HttpError(
        403,
        `instance ${name} is not in a managed instance group: its created-by metadata names no MIG`,
      );
    }
    if (mig.project !== vm.projectNumber && mig.project !== vm.projectId) {
      throw new HttpError(
        403,
        `instance ${name} was created by MIG ${formatMigRef(mig)}, outside its own project ${vm.projectId}`,
      );
    }
    if (!deps.migPattern.test(mig.name)) {
      throw new HttpError(403, `MIG ${mig.name} is not one this service may delete VMs from`);
    }
    // The token names the project by id; so does every call from here on.
    return { ...mig, project: vm.projectId };
  }

  async function answerGet(mig: ResourceRef, deadline: number): Promise<Outcome> {
    const decision = await checkScaleDown(compute, mig, deadline, clock);
    return {
      outcome: decision.scaleDown ? 'scale-down' : 'no-scale-down',
      body: String(decision.scaleDown),
      decision,
    };
  }

  async function answerDelete(
    vm: ComputeEngineClaims,
    mig: ResourceRef,
    conditional: boolean,
    deadline: number,
    expiry: Expiry,
  ): Promise<Outcome> {
    const group = `MIG ${describeResource(mig)}`;
    const instance = `instance ${vm.instanceName}`;
    // The lock is held until the deletion is done or this request's deadline passes, whichever is first:
    // a hung Compute call must not hold up every other VM of the MIG.
    return migLock.run(formatMigRef(mig), () => Promise.race([locked(), expiry.expired]));
    async function locked(): Promise<Outcome> {
      if (expiry.passed) throw new HttpError(504, `timed out waiting for other deletions in ${group}`);
      const members = await withComputeContext(`list the VMs of ${group}`, () =>
        compute.listManagedInstances(mig),
      );
      const member = members.find((m) => m.zone === vm.zone && m.name === vm.instanceName);
      if (!member) throw new HttpError(403, `${instance} is not a member of ${group}`);
      if (member.currentAction === 'DELETING') {
        return { outcome: 'already-deleting', body: `${group} is already deleting ${instance}\n` };
      }
      let decision: ScaleDownDecision | undefined;
      if (conditional) {
        decision = await checkScaleDown(compute, mig, deadline, clock);
        if (!decision.scaleDown) {
          return {
            outcome: 'kept',
            body: `${group} ${keepReason(decision)}: keeping ${instance}\n`,
            decision,
          };
        }
      }
      // A request whose caller already heard 504 must not delete after all.
      if (expiry.passed) throw new HttpError(504, `ran out of time before deleting ${instance}`);
      await withComputeContext(`delete ${instance} from ${group}`, () =>
        compute.deleteInstance(mig, vm.zone, vm.instanceName),
      );
      const why = decision
        ? ` is above its recommended size (target ${decision.targetSize}, recommended ${decision.recommendedSize}) and`
        : '';
      return { outcome: 'deleting', body: `${group}${why} is deleting ${instance}\n`, decision };
    }
  }

  /** One handler for both methods, so every request leaves exactly one decision line in the log. */
  async function answer(req: Request, res: Response): Promise<void> {
    const deadline = clock.now() + deps.stabilizeTimeoutMs;
    const log = requestLog(res, logger);
    const caller = callerOf(res);
    const fields: Record<string, unknown> = { caller: describeCaller(caller), method: req.method };
    // Compute calls have no deadline of their own worth waiting for (gax retries reads for minutes), so
    // the whole request gets one: past it the caller hears 504, and a deletion still queued behind the
    // MIG's lock is dropped instead of happening after the caller was told it did not.
    let timer: NodeJS.Timeout | undefined;
    const expiry: Expiry = {
      passed: false,
      expired: new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          expiry.passed = true;
          reject(new HttpError(504, 'Compute Engine did not answer in time; ask again later'));
        }, deps.stabilizeTimeoutMs);
      }),
    };
    expiry.expired.catch(() => {}); // observed through the races below
    try {
      const vm = vmOf(res);
      fields.instance = vm.instanceName;
      const condition = conditionOf(req);
      const work = (async () => {
        const mig = await migOf(vm);
        fields.mig = formatMigRef(mig);
        return req.method === 'GET'
          ? answerGet(mig, deadline)
          : answerDelete(vm, mig, condition === 'scale-down', deadline, expiry);
      })();
      work.catch(() => {}); // a late failure after the 504 has no one left to answer
      const result = await Promise.race([work, expiry.expired]);
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
    } finally {
      clearTimeout(timer);
    }
  }

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(createRequestLogger(logger, deps.projectId === undefined ? {} : { projectId: deps.projectId }));

  const notAllowed = methodNotAllowed(ALLOWED_METHODS);
  // Authentication comes first, so an anonymous caller learns nothing, not even which methods exist.
  // Express would also route `//` here; only the root itself is this service.
  const onlyRoot = (req: Request, _res: Response, next: NextFunction) =>
    next(req.path === '/' ? undefined : 'route');
  app.all(
    '/',
    onlyRoot,
    createAuthMiddleware(deps.verifier),
    (req: Request, res: Response, next: NextFunction) => {
      if (!ALLOWED_METHODS.includes(req.method)) notAllowed(req, res, next);
      else answer(req, res).catch(next);
    },
  );
  app.use(notFound());
  app.use(createErrorMiddleware(logger));
  return app;
}
