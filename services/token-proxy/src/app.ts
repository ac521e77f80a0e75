import type { Express, Request, Response } from 'express';
import {
  callerOf,
  createAuthMiddleware,
  createServiceApp,
  describeCaller,
  HttpError,
  requestLog,
  requireComputeEngineClaims,
} from '#shared';
import type { IdTokenVerifier, Logger } from '#shared';
import {
  assertMayHaveToken,
  assertMayUseScope,
  authorizeScope,
  jitRunnerLabels,
  resolveRunnerShape,
  scopesToSearch,
} from './authorize-caller.js';
import type { ScopeLists } from './authorize-caller.js';
import { callerSignal } from './caller-signal.js';
import type { InstanceExistenceCheck } from './compute-instance-check.js';
import { getOwnRunner } from './get-own-runner.js';
import type { GitHubCallContext, GitHubRunnerApi } from './github-runner-api.js';
import type { InstanceLimits } from './instance-limits.js';
import { issueJitConfig } from './issue-jit-config.js';
import { issueRunnerToken } from './issue-runner-token.js';
import { mutationCallerOf } from './mutation-scheduler.js';
import type { Policy } from './policy.js';
import { removeOwnRunner } from './remove-own-runner.js';
import { jitConfigBody, parseBody, readBodyAsText, scopeBody } from './request-body.js';
import type { RunnerGroupResolver } from './runner-group-resolver.js';
import type { TokenCache } from './token-cache.js';

/** Everything the token proxy talks to, injected so tests can pass fakes or real clients on loopback. */
export interface TokenProxyDeps {
  verifier: IdTokenVerifier;
  github: GitHubRunnerApi;
  tokens: TokenCache;
  runnerGroups: RunnerGroupResolver;
  scopes: ScopeLists;
  policy: Policy;
  /** 'app' credentials cannot manage enterprise runners. */
  credentialsKind: 'pat' | 'app';
  logger: Logger;
  /** How long a caller waits for GitHub before a 504. */
  deadlineMs: number;
  /** Per-instance limits: one runner change in flight, JIT configs per hour, status reads per minute. */
  limits: InstanceLimits;
  /** Checks that the calling VM still exists (VERIFY_INSTANCE_EXISTS); absent when off. */
  instanceCheck?: InstanceExistenceCheck | undefined;
  projectId?: string;
}

/**
 * The token proxy's routes: `POST /register` and `POST /remove` (the upstream proxy's API), `POST /jitconfig`,
 * `GET /runner` and `DELETE /runner` (bound to the calling VM by its instance id), and `GET /healthz`. Each
 * route reads the request, has the caller authorized (authorize-caller.ts), runs its operation (one file
 * each) and answers; errors become HTTP answers in the shared error middleware.
 */
export function createApp(deps: TokenProxyDeps): Express {
  const { logger } = deps;
  const authenticate = createAuthMiddleware(deps.verifier);
  const readBody = readBodyAsText();

  const audit = (res: Response, fields: Record<string, unknown>, message: string) => {
    if (logger.isLevelEnabled('info'))
      requestLog(res, logger).info({ caller: describeCaller(callerOf(res)), ...fields }, message);
  };

  const runnerToken = (kind: 'registration' | 'remove') => async (req: Request, res: Response) => {
    const { scope: input } = parseBody(req.body, scopeBody);
    const { scope, name } = authorizeScope(deps, input);
    const caller = callerOf(res);
    assertMayHaveToken(deps.policy, caller, name, kind);
    if (kind === 'registration' && caller.compute) await deps.instanceCheck?.assertExists(caller.compute);
    const token = await issueRunnerToken(deps, scope, name, kind, { caller: mutationCallerOf(caller) });
    audit(res, { scope: name, kind }, `issued ${kind} token`);
    res.json({ token: token.token, expires_at: token.expiresAt });
  };

  const jitConfig = async (req: Request, res: Response) => {
    const body = parseBody(req.body, jitConfigBody);
    const { scope, name } = authorizeScope(deps, body.scope);
    const caller = callerOf(res);
    const instance = requireComputeEngineClaims(caller);
    const rules = assertMayUseScope(deps.policy, caller, name);
    const shape = resolveRunnerShape(rules, { group: body.runner_group, labels: body.labels });
    const labels = jitRunnerLabels(shape, instance);
    const context: GitHubCallContext = {
      caller: mutationCallerOf(caller),
      signal: callerSignal(req, res, deps.deadlineMs),
    };
    const done = deps.limits.beginRunnerChange(instance.instanceId, 'getting a JIT config');
    try {
      deps.limits.assertMayGetJitConfig(instance.instanceId);
      await deps.instanceCheck?.assertExists(instance);
      const config = await issueJitConfig(
        deps,
        {
          scope,
          scopeName: name,
          runnerName: instance.instanceName,
          instanceId: instance.instanceId,
          group: shape.group,
          labels,
          workFolder: body.work_folder,
          context,
        },
        (runnerId) => audit(res, { scope: name, runnerId }, "removed this instance's stale offline runner"),
      );
      deps.limits.recordJitConfig(instance.instanceId);
      audit(
        res,
        { scope: name, runnerId: config.runner.id, group: shape.group, labels },
        'issued JIT config',
      );
      res.json({ encoded_jit_config: config.encodedJitConfig, runner: config.runner });
    } finally {
      done();
    }
  };

  const ownRunner = async (req: Request, res: Response) => {
    const caller = callerOf(res);
    const instance = requireComputeEngineClaims(caller);
    const unknown = Object.keys(req.query).filter((key) => key !== 'scope');
    if (unknown.length > 0) {
      throw new HttpError(
        400,
        `unknown query parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`,
      );
    }
    const requested = req.query.scope;
    if (requested !== undefined && typeof requested !== 'string') {
      throw new HttpError(400, 'scope must be given once');
    }
    deps.limits.takeRunnerRead(instance.instanceId);
    const searched = scopesToSearch(deps, deps.policy, caller, requested);
    const own = { runnerName: instance.instanceName, instanceId: instance.instanceId };
    const found = searched.scopes.length === 0 ? undefined : await getOwnRunner(deps, searched.scopes, own);
    if (found) {
      res.json(found.runner);
      return;
    }
    if (!searched.complete) {
      throw new HttpError(
        400,
        "no runner of this instance in the scopes this caller's configuration names literally; name the scope: GET /runner?scope=…",
      );
    }
    throw new HttpError(
      404,
      `no runner of this instance is registered in ${searched.scopes.map((s) => s.name).join(', ')}`,
    );
  };

  const removeRunner = async (req: Request, res: Response) => {
    const { scope: input } = parseBody(req.body, scopeBody);
    const { scope, name } = authorizeScope(deps, input);
    const caller = callerOf(res);
    const instance = requireComputeEngineClaims(caller);
    const runnerName = instance.instanceName;
    assertMayUseScope(deps.policy, caller, name);
    const context: GitHubCallContext = {
      caller: mutationCallerOf(caller),
      signal: callerSignal(req, res, deps.deadlineMs),
    };
    const done = deps.limits.beginRunnerChange(instance.instanceId, 'removing its runner');
    let removed;
    try {
      removed = await removeOwnRunner(
        deps,
        scope,
        name,
        { runnerName, instanceId: instance.instanceId },
        context,
      );
    } finally {
      done();
    }
    if (!removed) {
      audit(res, { scope: name }, 'no runner to remove');
      res.json({
        deleted: false,
        message: `no runner named ${JSON.stringify(runnerName)} is registered in ${name}`,
      });
      return;
    }
    audit(res, { scope: name, runnerId: removed.id }, 'removed runner');
    res.json({ deleted: true, runner: { id: removed.id, name: removed.name } });
  };

  return createServiceApp({
    logger,
    projectId: deps.projectId,
    routes: {
      '/healthz': {
        get: [
          (_req, res) => {
            res.type('text/plain').send('ok');
          },
        ],
      },
      '/register': { post: [authenticate, readBody, runnerToken('registration')] },
      '/remove': { post: [authenticate, readBody, runnerToken('remove')] },
      '/jitconfig': { post: [authenticate, readBody, jitConfig] },
      '/runner': { get: [authenticate, ownRunner], delete: [authenticate, readBody, removeRunner] },
    },
  });
}
