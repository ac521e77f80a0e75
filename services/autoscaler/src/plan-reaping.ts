import type { FleetRow } from './join-fleet.js';
import type { Pool } from './pool-config.js';

/** Why a row is reaped: the rows of the reaper's table. */
export type ReapKind = 'lost' | 'unregistered' | 'idle' | 'runner-left';

/** What is deleted, in this order: the runner at GitHub first, the VM only once that succeeded. */
export type ReapAction = 'delete-vm' | 'delete-runner-then-vm' | 'delete-runner';

export interface PlannedReaping {
  row: FleetRow;
  kind: ReapKind;
  action: ReapAction;
  /** A sentence a person can read in the log. */
  reason: string;
}

/** A row that would have been reaped but is not, this run. */
export interface HeldReaping {
  row: FleetRow;
  kind: ReapKind;
  reason: string;
  /** `kept`: labelled to be left alone; `share`: this run's share of the pool is used; `keep-unknown`: the keep labels could not be read. */
  held: 'kept' | 'share' | 'keep-unknown';
}

export interface ReapingPlan {
  actions: PlannedReaping[];
  held: HeldReaping[];
}

export interface PlanReapingOptions {
  pool: Pool;
  rows: readonly FleetRow[];
  now: number;
  /** Jobs still queued for the pool: while any waits, no idle runner is removed. */
  queued: number;
  /** Idle runners the pool keeps now (its warm pool). */
  minIdle: number;
  /** At most this share (percent) of the pool's VMs is deleted per run; at least one always may be. */
  maxDeletePercent: number;
}

const seconds = (ms: number): number => Math.round(ms / 1000);

/**
 * Decides, from one join of the pool, what the reaper deletes this run (a pure function; the calls are
 * `reap-pool.ts`'s):
 *
 * | row                                                   | action                                    |
 * | ----------------------------------------------------- | ----------------------------------------- |
 * | `lost`: runner offline after busy, on two runs        | delete the VM (the job died with it)      |
 * | `unregistered`: no connected runner past boot timeout | delete its runner if any, then the VM (1) |
 * | `idle` past the idle timeout, nothing queued          | re-read the runner, delete it, then the VM |
 * | `runner-left`: offline runner of a vanished VM        | delete the runner                         |
 *
 * (1) With no runner in the list, the runners of its name are read once more first (reap-pool.ts): one
 * that registered since the list may be about to take a job.
 *
 * VMs labelled `github-runner-keep=true` are never touched, and while their labels are unknown no VM is.
 * Idle runners within `minIdle` (kept ones count) stay; the longest idle go first. VM deletions are
 * capped per run at `maxDeletePercent` of the pool's VMs (rounded down, at least one), lost VMs first,
 * then unregistered ones, then idle ones; what the cap holds back waits for the next run.
 */
export function planReaping(options: PlanReapingOptions): ReapingPlan {
  const { pool, rows, now } = options;
  const plan: ReapingPlan = { actions: [], held: [] };
  const vms = rows.filter(
    (row) => row.migIndex !== null && row.instanceId !== null && row.state !== 'deleting',
  );
  let vmDeletionsLeft = Math.max(1, Math.floor((vms.length * options.maxDeletePercent) / 100));

  const candidates: PlannedReaping[] = [];
  for (const row of rows.filter((r) => r.state === 'lost' && r.offlineRuns >= 2)) {
    candidates.push({
      row,
      kind: 'lost',
      action: 'delete-vm',
      reason: `runner ${row.runner!.name} offline on ${row.offlineRuns} runs in a row after it was busy: the VM died or hung mid-job`,
    });
  }
  const unregistered = rows
    .filter((r) => r.state === 'unregistered')
    .sort((a, b) => (a.noRunnerSince ?? 0) - (b.noRunnerSince ?? 0));
  for (const row of unregistered) {
    const since = `for ${seconds(now - row.noRunnerSince!)} s (bootTimeoutSeconds ${seconds(pool.bootTimeoutMs)}), on ${row.noRunnerRuns} runs in a row`;
    candidates.push({
      row,
      kind: 'unregistered',
      action: row.runner ? 'delete-runner-then-vm' : 'delete-vm',
      reason: row.runner ? `runner ${row.runner.name} not online ${since}` : `no runner registered ${since}`,
    });
  }
  if (options.queued === 0) {
    const idle = rows.filter((r) => r.state === 'idle');
    let surplus = idle.length - options.minIdle;
    const due = idle
      .filter((r) => now - r.idleSince! >= pool.idleTimeoutMs)
      .sort((a, b) => a.idleSince! - b.idleSince!);
    for (const row of due) {
      if (row.keep !== true && surplus <= 0) break;
      if (row.keep !== true) surplus -= 1;
      candidates.push({
        row,
        kind: 'idle',
        action: 'delete-runner-then-vm',
        reason: `runner ${row.runner!.name} idle for ${seconds(now - row.idleSince!)} s (idleTimeoutSeconds ${seconds(pool.idleTimeoutMs)}), no job queued for the pool, ${idle.length} idle with minIdle ${options.minIdle}`,
      });
    }
  }

  for (const candidate of candidates) {
    const { row } = candidate;
    if (row.keep === true) {
      plan.held.push({ ...candidate, held: 'kept' });
    } else if (row.keep === null) {
      plan.held.push({ ...candidate, held: 'keep-unknown' });
    } else if (vmDeletionsLeft <= 0) {
      plan.held.push({ ...candidate, held: 'share' });
    } else {
      vmDeletionsLeft -= 1;
      plan.actions.push(candidate);
    }
  }

  for (const row of rows.filter((r) => r.state === 'runner-left')) {
    plan.actions.push({
      row,
      kind: 'runner-left',
      action: 'delete-runner',
      reason: `runner ${row.runner!.name} is offline and its VM ${row.instance ?? ''} (${row.instanceId}) is no longer in the pool's MIGs`,
    });
  }
  return plan;
}
