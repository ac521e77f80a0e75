import express from 'express';
import type { Express, Request, Response } from 'express';
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
import type { CallerIdentity, IdTokenVerifier, Logger } from '#shared';
import { assertMayHaveToken, assertMayUseScope, assertScopeListed, resolveRunnerShape } from './access.js';
import type { ScopeLists } from './access.js';
import { GitHubError } from './github-error.js';
import type { GitHubRunnerApi, JitConfig } from './github-runner-api.js';
import type { Policy } from './policy.js';
import { jitConfigBody, parseBody, readBodyAsText, scopeBody } from './request-body.js';
import type { RunnerGroupResolver } from './runner-group-resolver.js';
import { formatScope, parseScope, ScopeError, scopeKey } from './scope.js';
import type { Scope } from './scope.js';
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
  projectId?: string;
}

/** What a GitHub failure means to the caller, with the action named for context. */
function githubFailure(error: unknown, action: string): unknown {
  if (!(error instanceof GitHubError)) return error;
  switch (error.failure) {
    case 'rate-limited':
      return new HttpError(503, `GitHub rate limit reached while ${action}; retry later`, {
        'Retry-After': String(Math.max(1, Math.ceil(error.retryAfterSeconds ?? 60))),
      });
    case 'timeout':
      return new HttpError(504, `GitHub did not answer in time while ${action}`);
    case 'not-found':
      return new HttpError(
        502,
        `GitHub could not find what was needed while ${action}: ${error.githubMessage}`,
      );
    default:
      return new HttpError(502, `GitHub failed while ${action}: ${error.githubMessage}`);
  }
}

/** Waits for `work` at most `ms`; the work itself goes on (and fills caches) if the caller gives up. */
async function withDeadline<T>(work: Promise<T>, ms: number, action: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new HttpError(504, `GitHub did not answer within ${Math.round(ms / 1000)} s while ${action}`)),
      ms,
    );
  });
  try {
    return await Promise.race([work, deadline]);
  } catch (error) {
    throw githubFailure(error, action);
  } finally {
    clearTimeout(timer);
  }
}

/** Parses and checks a requested scope against the deployment's limits and the allow/deny lists. */
function checkedScope(deps: TokenProxyDeps, input: string): { scope: Scope; name: string } {
  let scope: Scope;
  try {
    scope = parseScope(input);
  } catch (error) {
    if (error instanceof ScopeError) throw new HttpError(400, error.message);
    throw error;
  }
  const name = formatScope(scope);
  if (scope.kind === 'enterprise' && deps.credentialsKind === 'app') {
    throw new HttpError(
      400,
      `scope ${JSON.stringify(name)}: enterprise runners need a proxy configured with a PAT; GitHub App tokens cannot manage them`,
    );
  }
  assertScopeListed(deps.scopes, name);
  return { scope, name };
}

function requireInstance(caller: CallerIdentity, endpoint: string): NonNullable<CallerIdentity['compute']> {
  if (!caller.compute) {
    throw new HttpError(
      403,
      `${endpoint} needs a Compute Engine identity: request the identity token with format=full`,
    );
  }
  return caller.compute;
}

/**
 * Builds the token proxy: `POST /register` and `POST /remove` (the upstream proxy's API), `POST /jitconfig`
 * and `DELETE /runner` (bound to the calling VM), and `GET /healthz`.
 */
export function createApp(deps: TokenProxyDeps): Express {
  const { logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(createRequestLogger(logger, deps.projectId === undefined ? {} : { projectId: deps.projectId }));

  const authenticate = createAuthMiddleware(deps.verifier);
  const readBody = readBodyAsText();

  const audit = (res: Response, fields: Record<string, unknown>, message: string) =>
    requestLog(res, logger).info({ caller: describeCaller(callerOf(res)), ...fields }, message);

  const tokenHandler = (kind: 'registration' | 'remove') => async (req: Request, res: Response) => {
    const { scope: input } = parseBody(req.body, scopeBody);
    const { scope, name } = checkedScope(deps, input);
    const caller = callerOf(res);
    assertMayHaveToken(deps.policy, caller, name, kind);
    const action = `creating a ${kind} token for ${name}`;
    const token = await withDeadline(
      deps.tokens.get(`${kind}:${scopeKey(scope)}`, () => deps.github.createToken(scope, kind)),
      deps.deadlineMs,
      action,
    );
    audit(res, { scope: name, kind }, `issued ${kind} token`);
    res.json({ token: token.token, expires_at: token.expiresAt });
  };

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });

  app.post('/register', authenticate, readBody, tokenHandler('registration'));
  app.post('/remove', authenticate, readBody, tokenHandler('remove'));

  app.post('/jitconfig', authenticate, readBody, async (req, res) => {
    const body = parseBody(req.body, jitConfigBody);
    const { scope, name } = checkedScope(deps, body.scope);
    const caller = callerOf(res);
    const instance = requireInstance(caller, '/jitconfig');
    const rules = assertMayUseScope(deps.policy, caller, name);
    const shape = resolveRunnerShape(rules, { group: body.runner_group, labels: body.labels });

    const runnerName = instance.instanceName;
    const action = `creating a JIT config for ${runnerName} in ${name}`;
    const config = await withDeadline(
      (async (): Promise<JitConfig> => {
        const groupId = await deps.runnerGroups.resolve(scope, shape.group);
        if (groupId === undefined) {
          throw new HttpError(400, `runner group ${JSON.stringify(shape.group)} does not exist in ${name}`);
        }
        const request = {
          name: runnerName,
          runnerGroupId: groupId,
          labels: shape.labels,
          ...(body.work_folder !== undefined ? { workFolder: body.work_folder } : {}),
        };
        try {
          return await deps.github.generateJitConfig(scope, request);
        } catch (error) {
          if (!(error instanceof GitHubError && error.failure === 'conflict')) throw error;
        }
        // The name is taken. Instance names are reused, so a runner left offline by a VM that is gone is
        // stale: remove it and try once more. An online one is a live runner we must not touch.
        const existing = await deps.github.findRunner(scope, runnerName);
        if (existing && existing.status !== 'offline') {
          throw new HttpError(
            409,
            `a runner named ${JSON.stringify(runnerName)} is already online in ${name}`,
          );
        }
        if (existing) {
          await deps.github.deleteRunner(scope, existing.id);
          audit(res, { scope: name, runnerId: existing.id }, 'removed stale offline runner of the same name');
        }
        return deps.github.generateJitConfig(scope, request);
      })(),
      deps.deadlineMs,
      action,
    );
    audit(
      res,
      { scope: name, runnerId: config.runner.id, group: shape.group, labels: shape.labels },
      'issued JIT config',
    );
    res.json({ encoded_jit_config: config.encodedJitConfig, runner: config.runner });
  });

  app.delete('/runner', authenticate, readBody, async (req, res) => {
    const { scope: input } = parseBody(req.body, scopeBody);
    const { scope, name } = checkedScope(deps, input);
    const caller = callerOf(res);
    const instance = requireInstance(caller, 'DELETE /runner');
    assertMayUseScope(deps.policy, caller, name);
    const runnerName = instance.instanceName;
    const action = `removing runner ${runnerName} from ${name}`;
    const outcome = await withDeadline(
      (async () => {
        const runner = await deps.github.findRunner(scope, runnerName);
        if (!runner) return undefined;
        try {
          await deps.github.deleteRunner(scope, runner.id);
        } catch (error) {
          if (error instanceof GitHubError && error.failure === 'invalid') {
            throw new HttpError(
              409,
              `runner ${JSON.stringify(runnerName)} is running a job and cannot be removed yet`,
            );
          }
          if (error instanceof GitHubError && error.failure === 'not-found') return undefined;
          throw error;
        }
        return runner;
      })(),
      deps.deadlineMs,
      action,
    );
    if (!outcome) {
      audit(res, { scope: name }, 'no runner to remove');
      res.json({
        deleted: false,
        message: `no runner named ${JSON.stringify(runnerName)} is registered in ${name}`,
      });
      return;
    }
    audit(res, { scope: name, runnerId: outcome.id }, 'removed runner');
    res.json({ deleted: true, runner: { id: outcome.id, name: outcome.name } });
  });

  app.all('/register', methodNotAllowed(['POST']));
  app.all('/remove', methodNotAllowed(['POST']));
  app.all('/jitconfig', methodNotAllowed(['POST']));
  app.all('/runner', methodNotAllowed(['DELETE']));
  app.all('/healthz', methodNotAllowed(['GET']));
  app.use(notFound());
  app.use(createErrorMiddleware(logger));
  return app;
}
