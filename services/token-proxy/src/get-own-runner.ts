import { isBoundToInstance } from './derived-labels.js';
import { askGitHub } from './github-call-error.js';
import type { GitHubRunnerApi } from './github-runner-api.js';
import type { OwnRunner } from './remove-own-runner.js';
import type { Scope } from './scope.js';

/** What reading a runner needs. */
export interface GetOwnRunnerDeps {
  github: GitHubRunnerApi;
  deadlineMs: number;
}

/** `GET /runner`'s answer: what GitHub says of the calling VM's runner. */
export interface OwnRunnerStatus {
  id: number;
  name: string;
  /** GitHub's `status`; anything but `online` is reported as `offline`. */
  status: 'online' | 'offline';
  busy: boolean;
}

/**
 * The calling VM's runner (named after it and carrying its instance-id label) in the first of `scopes`
 * that has it, with the scope's name; `undefined` when none does. One list call per scope, in order, and
 * nothing cached: the VM's idle check deletes the VM on this answer, so it must be GitHub's current one.
 * https://docs.github.com/rest/actions/self-hosted-runners#list-self-hosted-runners-for-an-organization
 */
export function getOwnRunner(
  deps: GetOwnRunnerDeps,
  scopes: ReadonlyArray<{ scope: Scope; name: string }>,
  own: OwnRunner,
): Promise<{ runner: OwnRunnerStatus; scopeName: string } | undefined> {
  const where = scopes.map((s) => s.name).join(', ');
  return askGitHub(deps.deadlineMs, `looking up runner ${own.runnerName} in ${where}`, async () => {
    for (const { scope, name } of scopes) {
      const runner = await deps.github.findRunner(scope, own.runnerName);
      if (runner && isBoundToInstance(runner.labels, own.instanceId)) {
        return {
          runner: {
            id: runner.id,
            name: runner.name,
            status: runner.status === 'online' ? 'online' : 'offline',
            busy: runner.busy,
          },
          scopeName: name,
        };
      }
    }
    return undefined;
  });
}
