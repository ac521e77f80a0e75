import { HttpError } from '#shared';
import { askGitHub, GitHubCallError } from './github-call-error.js';
import type { GitHubRunnerApi, JitConfig } from './github-runner-api.js';
import type { RunnerGroupResolver } from './runner-group-resolver.js';
import type { RunnerShape } from './authorize-caller.js';
import type { Scope } from './scope.js';

/** What issuing a JIT config needs. */
export interface IssueJitConfigDeps {
  github: GitHubRunnerApi;
  runnerGroups: RunnerGroupResolver;
  deadlineMs: number;
}

/** The runner a JIT config registers: named after the calling VM, shaped by its policy rule. */
export interface JitRunnerRequest {
  scope: Scope;
  scopeName: string;
  runnerName: string;
  shape: RunnerShape;
  workFolder?: string | undefined;
}

/**
 * Generates a just-in-time runner config, removing first a stale offline runner of the same name (VM
 * names are reused). 400 for an unknown runner group, 409 while a runner of that name is online.
 * `onStaleRunnerRemoved` lets the route log the removal.
 * https://docs.github.com/rest/actions/self-hosted-runners#create-configuration-for-a-just-in-time-runner-for-an-organization
 */
export function issueJitConfig(
  deps: IssueJitConfigDeps,
  request: JitRunnerRequest,
  onStaleRunnerRemoved: (runnerId: number) => void,
): Promise<JitConfig> {
  const { scope, scopeName, runnerName, shape } = request;
  return askGitHub(deps.deadlineMs, `creating a JIT config for ${runnerName} in ${scopeName}`, async () => {
    const groupId = await deps.runnerGroups.resolve(scope, shape.group);
    if (groupId === undefined) {
      throw new HttpError(400, `runner group ${JSON.stringify(shape.group)} does not exist in ${scopeName}`);
    }
    const jitRequest = {
      name: runnerName,
      runnerGroupId: groupId,
      labels: shape.labels,
      ...(request.workFolder !== undefined ? { workFolder: request.workFolder } : {}),
    };
    try {
      return await deps.github.generateJitConfig(scope, jitRequest);
    } catch (error) {
      if (!(error instanceof GitHubCallError && error.failure === 'conflict')) throw error;
    }
    // The name is taken. Instance names are reused, so a runner left offline by a VM that is gone is
    // stale: remove it and try once more. An online one is a live runner we must not touch.
    const existing = await deps.github.findRunner(scope, runnerName);
    if (existing && existing.status !== 'offline') {
      throw new HttpError(
        409,
        `a runner named ${JSON.stringify(runnerName)} is already online in ${scopeName}`,
      );
    }
    if (existing) {
      await deps.github.deleteRunner(scope, existing.id);
      onStaleRunnerRemoved(existing.id);
    }
    return deps.github.generateJitConfig(scope, jitRequest);
  });
}
