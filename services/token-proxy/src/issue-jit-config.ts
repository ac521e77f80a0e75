import { HttpError } from '#shared';
import { instanceIdLabel, isBoundToInstance } from './derived-labels.js';
import { askGitHub, GitHubCallError } from './github-call-error.js';
import type { GitHubCallContext, GitHubRunnerApi, JitConfig } from './github-runner-api.js';
import type { RunnerGroupResolver } from './runner-group-resolver.js';
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
  /** The calling VM's id: the runner carries its instance-id label, and only such a runner is replaced. */
  instanceId: string;
  group: string;
  /** Every label, the proxy's derived ones (instance-id first among them) included. */
  labels: string[];
  workFolder?: string | undefined;
  /** Who the GitHub changes are for (the mutation scheduler's caller and its signal). */
  context: GitHubCallContext;
}

/**
 * Generates a just-in-time runner config. When the name is taken (VM names are reused, and are unique only
 * per zone), the runner of that name is replaced only if it is this instance's own (it carries the
 * caller's instance-id label) and offline; 409 when it is online or another instance's. 400 for an
 * unknown runner group. `onStaleRunnerRemoved` lets the route log the removal.
 * https://docs.github.com/rest/actions/self-hosted-runners#create-configuration-for-a-just-in-time-runner-for-an-organization
 */
export function issueJitConfig(
  deps: IssueJitConfigDeps,
  request: JitRunnerRequest,
  onStaleRunnerRemoved: (runnerId: number) => void,
): Promise<JitConfig> {
  const { scope, scopeName, runnerName, context } = request;
  return askGitHub(deps.deadlineMs, `creating a JIT config for ${runnerName} in ${scopeName}`, async () => {
    const groupId = await deps.runnerGroups.resolve(scope, request.group);
    if (groupId === undefined) {
      throw new HttpError(
        400,
        `runner group ${JSON.stringify(request.group)} does not exist in ${scopeName}`,
      );
    }
    const jitRequest = {
      name: runnerName,
      runnerGroupId: groupId,
      labels: request.labels,
      ...(request.workFolder !== undefined ? { workFolder: request.workFolder } : {}),
    };
    try {
      return await deps.github.generateJitConfig(scope, jitRequest, context);
    } catch (error) {
      if (!(error instanceof GitHubCallError && error.failure === 'conflict')) throw error;
    }
    // The name is taken. A runner this instance registered and left offline (its runner process died) is
    // stale: remove it and try once more. Anything else is not ours to touch.
    const existing = await deps.github.findRunner(scope, runnerName);
    if (existing && !isBoundToInstance(existing.labels, request.instanceId)) {
      throw new HttpError(
        409,
        `a runner named ${JSON.stringify(runnerName)} in ${scopeName} belongs to another instance: it does not carry ${instanceIdLabel(request.instanceId)}`,
      );
    }
    if (existing && existing.status !== 'offline') {
      throw new HttpError(
        409,
        `a runner named ${JSON.stringify(runnerName)} is already online in ${scopeName}`,
      );
    }
    if (existing) {
      try {
        await deps.github.deleteRunner(scope, existing.id, context);
        onStaleRunnerRemoved(existing.id);
      } catch (error) {
        // Gone meanwhile (GitHub drops offline ephemeral runners by itself): the name is free either way.
        if (!(error instanceof GitHubCallError && error.failure === 'not-found')) throw error;
      }
    }
    return deps.github.generateJitConfig(scope, jitRequest, context);
  });
}
