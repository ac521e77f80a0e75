import { HttpError } from '#shared';
import { askGitHub, GitHubCallError } from './github-call-error.js';
import type { GitHubRunnerApi, RunnerInfo } from './github-runner-api.js';
import type { Scope } from './scope.js';

/** What removing a runner needs. */
export interface RemoveOwnRunnerDeps {
  github: GitHubRunnerApi;
  deadlineMs: number;
}

/**
 * Removes the runner named after the calling VM from `scope`: the runner removed, or `undefined` when
 * none of that name is registered (or it went away meanwhile). 409 while it runs a job, which GitHub
 * answers with 422.
 * https://docs.github.com/rest/actions/self-hosted-runners#delete-a-self-hosted-runner-from-an-organization
 */
export function removeOwnRunner(
  deps: RemoveOwnRunnerDeps,
  scope: Scope,
  scopeName: string,
  runnerName: string,
): Promise<RunnerInfo | undefined> {
  return askGitHub(deps.deadlineMs, `removing runner ${runnerName} from ${scopeName}`, async () => {
    const runner = await deps.github.findRunner(scope, runnerName);
    if (!runner) return undefined;
    try {
      await deps.github.deleteRunner(scope, runner.id);
    } catch (error) {
      if (error instanceof GitHubCallError && error.failure === 'invalid') {
        throw new HttpError(
          409,
          `runner ${JSON.stringify(runnerName)} is running a job and cannot be removed yet`,
        );
      }
      if (error instanceof GitHubCallError && error.failure === 'not-found') return undefined;
      throw error;
    }
    return runner;
  });
}
