import { LRUCache } from 'lru-cache';
import type { MigMember } from './compute-mig-api.js';
import type { RunnerInfo } from './github-app-api.js';
import { formatMigRef } from './mig-ref.js';
import type { Pool } from './pool-config.js';
import { instanceIdOfLabels } from './runner-instance-id.js';
import type { InstanceIdOfLabels } from './runner-instance-id.js';

/**
 * What a row of the fleet is, in one word:
 * - `creating`: a MIG member whose VM does not exist yet;
 * - `deleting`: a member the MIG is deleting or abandoning;
 * - `booting`: a VM without a connected runner (none yet, or one that is offline and was never busy),
 *   for less than the pool's boot timeout or on fewer than two runs;
 * - `unregistered`: the same, for longer than the boot timeout and on two runs in a row;
 * - `idle`: its runner is online and not busy;
 * - `busy`: its runner is running a job;
 * - `lost`: its runner went offline after it was last seen busy (the VM died or hung mid-job);
 * - `runner-left`: a runner bound to a VM this pool had, which is gone, and the runner is offline;
 * - `runner-without-vm`: the same, but the runner is online (not ours to touch: listed only).
 */
export type RowState =
  | 'creating'
  | 'deleting'
  | 'booting'
  | 'unregistered'
  | 'idle'
  | 'busy'
  | 'lost'
  | 'runner-left'
  | 'runner-without-vm';

/** A runner as a row shows it. */
export interface RunnerView {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: string[];
  /** The actions/runner version it reported when it connected; null before it has. */
  version: string | null;
}

/** One VM of a pool's MIGs with its runner, or one runner of the pool whose VM is gone. Times in ms. */
export interface FleetRow {
  state: RowState;
  /** The MIG (`projects/…/instanceGroupManagers/…`) of the VM (for a runner whose VM is gone, where it was). */
  mig: string | null;
  /** The MIG's index in the pool's `migs`; null for a runner whose VM is gone. */
  migIndex: number | null;
  instance: string | null;
  /** The VM's instance id (a uint64 as a string): what runners are joined on. */
  instanceId: string | null;
  zone: string | null;
  /** The member's `currentAction` and the VM's status, as listManagedInstances reported them. */
  currentAction: string | null;
  instanceStatus: string | null;
  /** Labelled `github-runner-keep=true`: never touched. `null` when the labels could not be read this run. */
  keep: boolean | null;
  runner: RunnerView | null;
  /** Further runners bound to the same VM (a VM that registered twice): listed, never acted on. */
  extraRunners: RunnerView[];
  /** When this process first saw the VM. */
  firstSeenAt: number;
  /** Since when the VM has had no connected runner; null while it has one. */
  noRunnerSince: number | null;
  /** Runs in a row on which the VM had no connected runner. */
  noRunnerRuns: number;
  /** Since when its runner has been online and idle; null otherwise. */
  idleSince: number | null;
  /** Its runner was busy the last time it was seen online. */
  busyWhenLastOnline: boolean;
  /** Runs in a row on which its runner was offline after it was busy. */
  offlineRuns: number;
  /** For a runner whose VM is gone: when the reconciler first saw it so. */
  vmGoneSince: number | null;
}

/** What the join remembers of one VM between runs (its clocks). */
interface RememberedVm {
  instance: string;
  mig: string;
  firstSeenAt: number;
  noRunnerSince: number | null;
  noRunnerRuns: number;
  idleSince: number | null;
  busyWhenLastOnline: boolean;
  offlineRuns: number;
  /** Set once the VM is no longer a member. */
  goneSince: number | null;
}

/**
 * The join's memory of one pool: the clocks of each VM by instance id, and which ids were the pool's (to
 * recognise a runner left behind by a vanished VM). Bounded: 50,000 VMs, each forgotten a day after it was
 * last listed (GitHub removes an offline ephemeral runner after a day by itself). After a restart it is
 * empty: every clock starts anew, which only delays a reaping.
 */
export interface FleetMemory {
  readonly vms: LRUCache<string, RememberedVm>;
}

export const FLEET_MEMORY_MS = 24 * 60 * 60 * 1000;

export function createFleetMemory(): FleetMemory {
  return { vms: new LRUCache<string, RememberedVm>({ max: 50_000, ttl: FLEET_MEMORY_MS }) };
}

export interface JoinInput {
  pool: Pool;
  /** This run's listing of each of the pool's MIGs, in the pool's order. */
  members: ReadonlyArray<readonly MigMember[]>;
  /** This run's runners of the pool's `runnerScope` (all of them: the join picks the pool's). */
  runners: readonly RunnerInfo[];
  /** Instance ids of VMs labelled `github-runner-keep=true`; `undefined` when they could not be read. */
  keptIds: ReadonlySet<string> | undefined;
  memory: FleetMemory;
  now: number;
  /** How a runner's labels name its VM; default {@link instanceIdOfLabels}. */
  instanceIdOf?: InstanceIdOfLabels;
  /**
   * True for a VM name this process had the pool's MIGs create and that is no member now (listed or
   * accepted since): a runner of that name, bound to an id never listed, was left by a VM that vanished
   * between two listings. Names are unique to this fleet (job ids, random warm suffixes), unlike a prefix.
   */
  isVanishedVm?: (name: string) => boolean;
}

const view = (runner: RunnerInfo): RunnerView => ({
  id: runner.id,
  name: runner.name,
  status: runner.status,
  busy: runner.busy,
  labels: [...runner.labels],
  version: runner.version,
});

/** Busy before idle, online before offline, then the newest: the runner a VM is running now. */
function rank(runner: RunnerInfo): number {
  return (runner.status === 'online' ? 2 : 0) + (runner.busy ? 1 : 0);
}

/**
 * Joins one pool's MIG members with the runners of its scope on the instance-id label the token proxy
 * sets on every JIT runner, and moves each VM's clocks on by one run. Runners without that label, or bound
 * to VMs this pool never had, are not the pool's and are left out. Returns one row per member, then one
 * per runner whose VM is gone; see {@link RowState} for what each state means.
 */
export function joinFleet(input: JoinInput): FleetRow[] {
  const { pool, members, memory, now } = input;
  const instanceIdOf = input.instanceIdOf ?? instanceIdOfLabels;
  const runnersOf = new Map<string, RunnerInfo[]>();
  for (const runner of input.runners) {
    const id = instanceIdOf(runner.labels);
    if (id !== undefined) runnersOf.set(id, [...(runnersOf.get(id) ?? []), runner]);
  }

  const rows: FleetRow[] = [];
  const listed = new Set<string>();
  members.forEach((list, migIndex) => {
    const mig = formatMigRef(pool.migs[migIndex]!);
    for (const member of list) {
      const bound = (member.id === '' ? [] : (runnersOf.get(member.id) ?? [])).sort(
        (a, b) => rank(b) - rank(a) || b.id - a.id,
      );
      const [runner, ...extra] = bound;
      const row: FleetRow = {
        state: 'creating',
        mig,
        migIndex,
        instance: member.name,
        instanceId: member.id === '' ? null : member.id,
        zone: member.zone,
        currentAction: member.currentAction,
        instanceStatus: member.instanceStatus === '' ? null : member.instanceStatus,
        keep: member.id === '' || input.keptIds === undefined ? null : input.keptIds.has(member.id),
        runner: runner ? view(runner) : null,
        extraRunners: extra.map(view),
        firstSeenAt: now,
        noRunnerSince: null,
        noRunnerRuns: 0,
        idleSince: null,
        busyWhenLastOnline: false,
        offlineRuns: 0,
        vmGoneSince: null,
      };
      rows.push(row);
      if (member.id !== '') listed.add(member.id);
      if (member.currentAction === 'DELETING' || member.currentAction === 'ABANDONING') {
        row.state = 'deleting';
        continue;
      }
      if (member.id === '') continue; // creating: no VM, so no clock yet

      const memo: RememberedVm = memory.vms.get(member.id) ?? {
        instance: member.name,
        mig,
        firstSeenAt: now,
        noRunnerSince: null,
        noRunnerRuns: 0,
        idleSince: null,
        busyWhenLastOnline: false,
        offlineRuns: 0,
        goneSince: null,
      };
      memo.goneSince = null;
      if (runner?.status === 'online') {
        memo.noRunnerSince = null;
        memo.noRunnerRuns = 0;
        memo.offlineRuns = 0;
        memo.busyWhenLastOnline = runner.busy;
        memo.idleSince = runner.busy ? null : (memo.idleSince ?? now);
        row.state = runner.busy ? 'busy' : 'idle';
      } else if (runner && (runner.busy || memo.busyWhenLastOnline)) {
        memo.idleSince = null;
        memo.offlineRuns += 1;
        row.state = 'lost';
      } else {
        // No runner, or one that never came online (a JIT runner exists from the moment its config is
        // made) or went offline while idle: nothing can run a job here.
        memo.idleSince = null;
        memo.offlineRuns = 0;
        memo.noRunnerSince ??= now;
        memo.noRunnerRuns += 1;
        row.state =
          now - memo.noRunnerSince >= pool.bootTimeoutMs && memo.noRunnerRuns >= 2
            ? 'unregistered'
            : 'booting';
      }
      memory.vms.set(member.id, memo);
      Object.assign(row, {
        firstSeenAt: memo.firstSeenAt,
        noRunnerSince: memo.noRunnerSince,
        noRunnerRuns: memo.noRunnerRuns,
        idleSince: memo.idleSince,
        busyWhenLastOnline: memo.busyWhenLastOnline,
        offlineRuns: memo.offlineRuns,
      });
    }
  });

  for (const [id, bound] of runnersOf) {
    if (listed.has(id)) continue;
    // Only a VM this pool had: a runner bound to any other VM belongs to another pool or fleet.
    let memo = memory.vms.peek(id);
    const vanished = bound.find((runner) => input.isVanishedVm?.(runner.name));
    if (!memo && vanished) {
      memo = {
        instance: vanished.name,
        mig: '',
        firstSeenAt: now,
        noRunnerSince: null,
        noRunnerRuns: 0,
        idleSince: null,
        busyWhenLastOnline: false,
        offlineRuns: 0,
        goneSince: now,
      };
      memory.vms.set(id, memo);
    }
    if (!memo) continue;
    memo.goneSince ??= now;
    for (const runner of bound) {
      rows.push({
        state: runner.status === 'online' ? 'runner-without-vm' : 'runner-left',
        mig: memo.mig === '' ? null : memo.mig,
        migIndex: null,
        instance: memo.instance,
        instanceId: id,
        zone: null,
        currentAction: null,
        instanceStatus: null,
        keep: null,
        runner: view(runner),
        extraRunners: [],
        firstSeenAt: memo.firstSeenAt,
        noRunnerSince: null,
        noRunnerRuns: 0,
        idleSince: null,
        busyWhenLastOnline: memo.busyWhenLastOnline,
        offlineRuns: 0,
        vmGoneSince: memo.goneSince,
      });
    }
  }
  return rows;
}
