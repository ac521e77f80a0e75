import { HttpError } from '#shared';
import { instanceIdLabel, isBoundToInstance } from './derived-labels.js';
import { askGitHub, GitHubCallError } from './github-call-error.js';
import type { GitHubCallContext, GitHubRunnerApi, RunnerInfo } from './github-runner-api.js';
import type { Scope } from './scope.js';

/** What removing a runner needs. */
export interface RemoveOwnRunnerDeps {
  github: GitHubRunnerApi;
  deadlineMs: number;
}

/** The calling VM's runner: its name, and the instance id its instance-id label must carry. */
export interface OwnRunner {
  runnerName: string;
  instanceId: string;
}

/**
 * Removes the calling VM's runner from `scope`: the runner named after it and carrying its instance-id
 * label. Returns the runner removed, or `undefined` when none of that name is registered (or it went away
 * meanwhile). 409 when the runner of that name belongs to another instance (instance names are unique only
 * per zone; runner names per scope), and 409 while it runs a job, which GitHub answers with 422.
 * https://docs.github.com/rest/actions/self-hosted-runners#delete-a-self-hosted-runner-from-an-organization
 */
export function removeOwnRunner(
  deps: RemoveOwnRunnerDeps,
  scope: Scope,
  scopeName: string,
  own: OwnRunner,
  context: GitHubCallContext,
): Promise<RunnerInfo | undefined> {
  const { runnerName, instanceId } = own;
  return askGitHub(deps.deadlineMs, `removing runner ${runnerName} from ${scopeName}`, async () => {
    const runner = await deps.github.findRunner(scope, runnerName);
    if (!runner) return undefined;
    if (!isBoundToInstance(runner.labels, instanceId)) {
      throw new HttpError(
        409,
        `runner ${JSON.stringify(runnerName)} in ${scopeName} belongs to another instance: it does not carry ${instanceIdLabel(instanceId)}`,
      );
    }
    try {
      await deps.github.deleteRunner(scope, runner.id, context);
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
