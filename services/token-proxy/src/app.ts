import type { Express, Request, Response } from 'express';
import {
  callerOf,
  createAuthMiddleware,
  createServiceApp,
  describeCaller,
  requestLog,
  requireComputeEngineClaims,
} from '#shared';
import type { IdTokenVerifier, Logger } from '#shared';
import {
  assertMayHaveToken,
  assertMayUseScope,
  authorizeScope,
  resolveRunnerShape,
} from './authorize-caller.js';
import type { ScopeLists } from './authorize-caller.js';
import type { GitHubRunnerApi } from './github-runner-api.js';
import { issueJitConfig } from './issue-jit-config.js';
import { issueRunnerToken } from './issue-runner-token.js';
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
  projectId?: string;
}

/**
 * The token proxy's routes: `POST /register` and `POST /remove` (the upstream proxy's API), `POST /jitconfig`
 * and `DELETE /runner` (bound to the calling VM), and `GET /healthz`. Each route reads the request, has the
 * caller authorized (authorize-caller.ts), runs its operation (one file each) and answers; errors become
 * HTTP answers in the shared error middleware.
 */
export function createApp(deps: TokenProxyDeps): Express {
  const { logger } = deps;
  const authenticate = createAuthMiddleware(deps.verifier);
  const readBody = readBodyAsText();

  const audit = (res: Response, fields: Record<string, unknown>, message: string) =>
    requestLog(res, logger).info({ caller: describeCaller(callerOf(res)), ...fields }, message);

  const runnerToken = (kind: 'registration' | 'remove') => async (req: Request, res: Response) => {
    const { scope: input } = parseBody(req.body, scopeBody);
    const { scope, name } = authorizeScope(deps, input);
    assertMayHaveToken(deps.policy, callerOf(res), name, kind);
    const token = await issueRunnerToken(deps, scope, name, kind);
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
    const config = await issueJitConfig(
      deps,
      { scope, scopeName: name, runnerName: instance.instanceName, shape, workFolder: body.work_folder },
      (runnerId) => audit(res, { scope: name, runnerId }, 'removed stale offline runner of the same name'),
    );
    audit(
      res,
      { scope: name, runnerId: config.runner.id, group: shape.group, labels: shape.labels },
      'issued JIT config',
    );
    res.json({ encoded_jit_config: config.encodedJitConfig, runner: config.runner });
  };

  const removeRunner = async (req: Request, res: Response) => {
    const { scope: input } = parseBody(req.body, scopeBody);
    const { scope, name } = authorizeScope(deps, input);
    const caller = callerOf(res);
    const runnerName = requireComputeEngineClaims(caller).instanceName;
    assertMayUseScope(deps.policy, caller, name);
    const removed = await removeOwnRunner(deps, scope, name, runnerName);
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
      '/runner': { delete: [authenticate, readBody, removeRunner] },
    },
  });
}
