import type { Logger } from '#shared';
import { ComputeError } from './compute-error.js';
import type { ReaperSettings } from './config.js';
import { GitHubError } from './github-error.js';
import type { GitHubAppApi } from './github-app-api.js';
import type { FleetRow } from './join-fleet.js';
import type { HeldReaping, PlannedReaping, ReapAction, ReapingPlan, ReapKind } from './plan-reaping.js';
import type { Pool } from './pool-config.js';
import { instanceIdOfLabels } from './runner-instance-id.js';
import type { PoolScaler } from './pool-scaler.js';

/**
 * What the reaper did about one row, as logged and kept for the fleet view:
 * `deleted` (what the action names is gone), `held` (not acted on: kept, the run's share, unknown keep
 * labels), `skipped` (the world changed since the list: the runner took a job, came online, is gone),
 * `failed` (a call failed; the next run looks again), `dry-run` (`REAPER_MODE=dry-run`).
 */
export interface ReaperDecision {
  at: string;
  pool: string;
  kind: ReapKind;
  action: ReapAction;
  outcome: 'deleted' | 'held' | 'skipped' | 'failed' | 'dry-run';
  instance: string | null;
  instanceId: string | null;
  mig: string | null;
  runnerId: number | null;
  runnerName: string | null;
  reason: string;
  /** What held it back, when `outcome` is `held`. */
  held?: HeldReaping['held'];
  /** Why it was held, skipped or failed. */
  detail?: string;
}

export interface ReapPoolDeps {
  pool: Pool;
  scaler: PoolScaler;
  github: GitHubAppApi;
  logger: Logger;
  now: () => number;
  mode: ReaperSettings['mode'];
}

const HELD: Record<HeldReaping['held'], string> = {
  kept: 'labelled github-runner-keep=true: never touched',
  share: "this run's share of the pool's VMs to delete is used (REAPER_MAX_DELETE_PERCENT): next run",
  'keep-unknown': 'the VMs’ keep labels could not be read this run: no VM is touched',
};

const describe = (error: unknown): string =>
  error instanceof GitHubError
    ? `GitHub: ${error.githubMessage || error.failure}`
    : error instanceof ComputeError
      ? `Compute Engine: ${error.computeMessage || error.failure}`
      : 'internal error';

/**
 * Carries out one pool's {@link ReapingPlan}, and returns (and logs, one line each) a decision per row.
 * A runner is read again before anything is deleted for it; a VM whose runner could still take a job (idle,
 * or not yet online) is deleted only once its runner was deleted at GitHub, which GitHub refuses (422) while
 * the runner runs a job, so a job handed to the runner after the list keeps both. A lost VM's runner is
 * offline: the VM goes first and the runner, left behind, on a later run. VM deletions go to each MIG in one
 * `deleteInstances` call.
 */
export async function reapPool(deps: ReapPoolDeps, plan: ReapingPlan): Promise<ReaperDecision[]> {
  const { pool, github, logger } = deps;
  const decisions: ReaperDecision[] = [];
  const decide = (
    planned: { row: FleetRow; kind: ReapKind; reason: string; held?: HeldReaping['held'] },
    action: ReapAction,
    outcome: ReaperDecision['outcome'],
    detail?: string,
  ): void => {
    const { row } = planned;
    const decision: ReaperDecision = {
      at: new Date(deps.now()).toISOString(),
      pool: pool.name,
      kind: planned.kind,
      action,
      outcome,
      instance: row.instance,
      instanceId: row.instanceId,
      mig: row.mig,
      runnerId: row.runner?.id ?? null,
      runnerName: row.runner?.name ?? null,
      reason: planned.reason,
      ...(outcome === 'held' && planned.held !== undefined && { held: planned.held }),
      ...(detail !== undefined && { detail }),
    };
    decisions.push(decision);
    // A kept VM would be logged every run: at debug level.
    const level = outcome === 'failed' ? 'warn' : decision.held === 'kept' ? 'debug' : 'info';
    logger[level](decision, 'reaper decision');
  };

  for (const held of plan.held)
    decide(held, held.row.runner ? 'delete-runner-then-vm' : 'delete-vm', 'held', HELD[held.held]);
  if (deps.mode === 'dry-run') {
    for (const planned of plan.actions) decide(planned, planned.action, 'dry-run');
    return decisions;
  }

  const vmsToDelete: PlannedReaping[] = [];
  for (const planned of plan.actions) {
    const runner = planned.row.runner;
    const scope = pool.runnerScope;
    if (planned.action === 'delete-vm') {
      // A VM with no runner in the list is asked about once more, by its name (the runner name the proxy
      // and register.sh give): a runner that registered since the list may be about to take a job.
      if (!runner && planned.kind === 'unregistered' && planned.row.instance !== null) {
        try {
          const named = await github.findRunnersNamed(scope, planned.row.instance);
          // A runner of that name counts unless its instance-id label names another VM (same name, other zone).
          const ours = (labels: readonly string[]) => {
            const bound = instanceIdOfLabels(labels);
            return bound === undefined || bound === planned.row.instanceId;
          };
          if (named.some((r) => ours(r.labels))) {
            decide(planned, planned.action, 'skipped', 'a runner registered since the list');
            continue;
          }
        } catch (error) {
          decide(planned, planned.action, 'failed', `looking for its runner again: ${describe(error)}`);
          continue;
        }
      }
      // A lost VM's runner is read again: one back online was a blip, not a death.
      if (runner && planned.kind === 'lost') {
        try {
          const now = await github.getRunner(scope, runner.id);
          if (now.status === 'online') {
            decide(planned, planned.action, 'skipped', 'the runner is online again');
            continue;
          }
        } catch (error) {
          if (!(error instanceof GitHubError && error.failure === 'not-found')) {
            decide(planned, planned.action, 'failed', `re-reading the runner: ${describe(error)}`);
            continue;
          }
        }
      }
      vmsToDelete.push(planned);
      continue;
    }

    if (planned.action === 'delete-runner-then-vm') {
      let now;
      try {
        now = await github.getRunner(scope, runner!.id);
      } catch (error) {
        const gone = error instanceof GitHubError && error.failure === 'not-found';
        decide(
          planned,
          planned.action,
          gone ? 'skipped' : 'failed',
          gone
            ? 'the runner is gone since the list: the VM is left for now'
            : `re-reading the runner: ${describe(error)}`,
        );
        continue;
      }
      if (now.busy) {
        decide(planned, planned.action, 'skipped', 'the runner took a job since the list');
        continue;
      }
      if (planned.kind === 'unregistered' && now.status === 'online') {
        decide(planned, planned.action, 'skipped', 'the runner came online since the list');
        continue;
      }
    }

    try {
      await github.deleteRunner(scope, runner!.id);
    } catch (error) {
      const gone = error instanceof GitHubError && error.failure === 'not-found';
      const refused = error instanceof GitHubError && error.status === 422;
      if (planned.action === 'delete-runner' && gone) {
        decide(planned, planned.action, 'skipped', 'the runner is gone already');
      } else if (refused) {
        decide(
          planned,
          planned.action,
          'skipped',
          `GitHub refused: the runner is running a job (${describe(error)})`,
        );
      } else {
        decide(
          planned,
          planned.action,
          gone ? 'skipped' : 'failed',
          gone ? 'the runner is gone since the list' : `deleting the runner: ${describe(error)}`,
        );
      }
      continue;
    }
    if (planned.action === 'delete-runner') decide(planned, planned.action, 'deleted');
    else vmsToDelete.push(planned);
  }

  const byMig = new Map<number, PlannedReaping[]>();
  for (const planned of vmsToDelete) {
    const index = planned.row.migIndex!;
    byMig.set(index, [...(byMig.get(index) ?? []), planned]);
  }
  await Promise.all(
    [...byMig].map(async ([index, list]) => {
      try {
        await deps.scaler.deleteMembers(
          index,
          list.map(({ row }) => ({ zone: row.zone!, name: row.instance! })),
        );
        for (const planned of list) decide(planned, planned.action, 'deleted');
      } catch (error) {
        for (const planned of list)
          decide(planned, planned.action, 'failed', `deleting the VM: ${describe(error)}`);
      }
    }),
  );
  return decisions;
}
