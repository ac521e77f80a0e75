import { HttpError } from '#shared';
import { instanceIdLabel, instanceIdOfLabels } from './derived-labels.js';
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
 * that has it, with the scope's name; `undefined` when none does (a runner of that name bound to another
 * instance is not this VM's). 409 when the only runner of that name carries no instance-id label (one a
 * VM registered with a registration token and no label): whose it is cannot be told, and "none" would let
 * the VM's idle check delete a VM whose runner may be running a job. One list call per scope, in order,
 * nothing cached: the idle check acts on this answer, so it must be GitHub's current one.
 * https://docs.github.com/rest/actions/self-hosted-runners#list-self-hosted-runners-for-an-organization
 */
export function getOwnRunner(
  deps: GetOwnRunnerDeps,
  scopes: ReadonlyArray<{ scope: Scope; name: string }>,
  own: OwnRunner,
): Promise<{ runner: OwnRunnerStatus; scopeName: string } | undefined> {
  const where = scopes.map((s) => s.name).join(', ');
  return askGitHub(deps.deadlineMs, `looking up runner ${own.runnerName} in ${where}`, async () => {
    let unbound: string | undefined;
    for (const { scope, name } of scopes) {
      const runner = await deps.github.findRunner(scope, own.runnerName);
      const boundTo = runner && instanceIdOfLabels(runner.labels);
      if (runner && boundTo === undefined) unbound ??= name;
      if (runner && boundTo === own.instanceId) {
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
    if (unbound !== undefined) {
      throw new HttpError(
        409,
        `runner ${JSON.stringify(own.runnerName)} in ${unbound} carries no instance-id label, so whose it is cannot be told; register it with label ${instanceIdLabel(own.instanceId)}`,
      );
    }
    return undefined;
  });
}
