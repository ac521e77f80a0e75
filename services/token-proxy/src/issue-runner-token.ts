import type { GitHubCallContext, GitHubRunnerApi, RunnerToken } from './github-runner-api.js';
import { askGitHub } from './github-call-error.js';
import { scopeCacheKey } from './scope.js';
import type { Scope } from './scope.js';
import type { TokenCache } from './token-cache.js';

/** What issuing a registration or remove token needs. */
export interface IssueRunnerTokenDeps {
  github: GitHubRunnerApi;
  tokens: TokenCache;
  deadlineMs: number;
}

/**
 * A registration or remove token for `scope`, from the cache while it has enough life left, else newly
 * created by GitHub. The caller is already authorized. `context` names the caller to the mutation scheduler;
 * it carries no signal, since a token fetch is shared by every caller waiting for that scope's token and
 * must not be dropped when the first of them leaves.
 * https://docs.github.com/rest/actions/self-hosted-runners#create-a-registration-token-for-an-organization
 */
export function issueRunnerToken(
  deps: IssueRunnerTokenDeps,
  scope: Scope,
  scopeName: string,
  kind: 'registration' | 'remove',
  context: Pick<GitHubCallContext, 'caller'>,
): Promise<RunnerToken> {
  const key = `${kind}:${scopeCacheKey(scope)}`;
  // A token in the cache needs no deadline: nothing waits for GitHub. This is the boot storm's hot path.
  const cached = deps.tokens.fresh(key);
  if (cached) return Promise.resolve(cached);
  return askGitHub(deps.deadlineMs, `creating a ${kind} token for ${scopeName}`, () =>
    deps.tokens.get(key, () => deps.github.createToken(scope, kind, { caller: context.caller })),
  );
}
