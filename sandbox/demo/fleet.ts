import { setTimeout as sleep } from 'node:timers/promises';
import type { RunnerKind, Sandbox } from '../sandbox.js';
import { SANDBOX_PROJECT } from '../sandbox.js';
import { attackDuringJob, isRefused, replayStolenToken } from './attacks.js';
import type { AttackAttempt } from './attacks.js';
import type { HttpRecorder } from './http-recorder.js';
import { runVm } from './vm-lifecycle.js';
import type { Job, PlannedVm, VmOutcome } from './vm-lifecycle.js';

/** How big a fleet, and how it behaves. */
export interface FleetOptions {
  vms: number;
  concurrency: number;
  attackers: number;
  jobMs: number;
}

/** Counters the progress line reads while the fleet runs. */
export interface FleetProgress {
  total: number;
  running: number;
  done: number;
  failed: number;
  deleted: number;
  attacks: number;
  refused: number;
}

/** Everything that happened, for the summary. */
export interface FleetResult {
  vms: VmOutcome[];
  attacks: AttackAttempt[];
  /** Instances Compute finished deleting, by MIG name. */
  deletedByMig: Record<string, number>;
  /** The autoscaler recommendation set half-way through, by MIG name. */
  recommendedSizes: Record<string, number>;
  durationMs: number;
}

/** Creates counters for {@link runFleet} to update. */
export const createFleetProgress = (total: number): FleetProgress => ({
  total,
  running: 0,
  done: 0,
  failed: 0,
  deleted: 0,
  attacks: 0,
  refused: 0,
});

/** The part one VM plays, before it exists. */
export interface FleetRole extends Omit<PlannedVm, 'vm'> {
  kind: RunnerKind;
}

/**
 * Which VM does what. Kinds alternate, so both MIGs drain together; attackers are spread evenly over the
 * presubmit VMs; every third other VM starts idle; every other postsubmit VM uses a registration token.
 */
export function planFleet(options: Pick<FleetOptions, 'vms' | 'attackers'>): FleetRole[] {
  const presubmit = Math.ceil(options.vms / 2);
  const attackerOrdinals = new Set(
    Array.from({ length: options.attackers }, (_, k) =>
      Math.floor(((k + 0.5) * presubmit) / options.attackers),
    ),
  );
  return Array.from({ length: options.vms }, (_, index) => {
    const kind: RunnerKind = index % 2 === 0 ? 'presubmit' : 'postsubmit';
    const ordinal = Math.floor(index / 2);
    const attacker = kind === 'presubmit' && attackerOrdinals.has(ordinal);
    return {
      kind,
      attacker,
      idle: !attacker && index % 3 === 2,
      mode: kind === 'postsubmit' && ordinal % 2 === 1 ? 'token' : 'jit',
    };
  });
}

/** Waits until Compute has finished deleting a VM (the deleter answers once the deletion has started). */
async function deletionFinished(sandbox: Sandbox, zone: string, name: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (sandbox.compute.getInstance(SANDBOX_PROJECT.projectId, zone, name)) {
    if (Date.now() > deadline) throw new Error(`instance ${name} was not deleted within 10 s`);
    await sleep(20);
  }
}

/**
 * Boots the fleet into the sandbox's two MIGs and lives every VM's life, `concurrency` at a time.
 * Half-way through, the autoscalers start recommending fewer VMs than the MIGs hold, so idle VMs hear
 * "no" from the scale-down check before that and "yes" after it (until their MIG is small enough).
 */
export async function runFleet(
  sandbox: Sandbox,
  http: HttpRecorder,
  options: FleetOptions,
  progress: FleetProgress,
): Promise<FleetResult> {
  const start = performance.now();
  const plans: PlannedVm[] = [];
  for (const { kind, ...role } of planFleet(options)) {
    const vm = await sandbox.addVm(kind, { 'github-runner-mode': role.mode });
    plans.push({ vm, ...role });
  }

  const deletedByMig: Record<string, number> = {};
  const unsubscribe = sandbox.compute.onInstanceDeleted((instance) => {
    const mig = instance.mig?.name ?? '(no MIG)';
    deletedByMig[mig] = (deletedByMig[mig] ?? 0) + 1;
    progress.deleted += 1;
  });

  const ctx = { http, githubUrl: sandbox.github.baseUrl, jobMs: options.jobMs, random: Math.random };
  const vms: VmOutcome[] = [];
  const attacks: AttackAttempt[] = [];
  const recommendedSizes: Record<string, number> = {};
  const record = (attempts: AttackAttempt[]) => {
    attacks.push(...attempts);
    progress.attacks += attempts.length;
    progress.refused += attempts.filter(isRefused).length;
  };

  const live = async (plan: PlannedVm, index: number) => {
    if (index === Math.floor(plans.length / 2)) {
      for (const mig of Object.values(sandbox.migs)) {
        recommendedSizes[mig.name] = Math.ceil(mig.targetSize / 3);
        sandbox.compute.setRecommendedSize(mig, recommendedSizes[mig.name]!);
      }
    }
    let stolen: string | undefined;
    const job: Job = plan.attacker
      ? async (session) => {
          const { attempts, stolenDeleterToken } = await attackDuringJob(sandbox.issuer, session);
          record(attempts);
          stolen = stolenDeleterToken;
        }
      : async () => {};
    const outcome = await runVm(ctx, plan, job);
    if (stolen !== undefined && outcome.deletedBy !== undefined) {
      await deletionFinished(sandbox, plan.vm.zone, plan.vm.name);
      record([await replayStolenToken(plan.vm.name, sandbox.deleterUrl, stolen)]);
    }
    return outcome;
  };

  let next = 0;
  const worker = async () => {
    for (let index = next++; index < plans.length; index = next++) {
      const plan = plans[index]!;
      progress.running += 1;
      // runVm reports its own failures; this catches the replay's wait for Compute, which could time out.
      vms[index] = await live(plan, index).catch((error: unknown) => ({
        name: plan.vm.name,
        kind: plan.vm.kind,
        mode: plan.mode,
        attacker: plan.attacker,
        registered: false,
        error: String(error),
      }));
      progress.running -= 1;
      progress.done += 1;
      if (vms[index]!.error !== undefined) progress.failed += 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, plans.length) }, worker));
    // The last deletions finish on Compute's side just after the deleter answered.
    await Promise.all(
      plans
        .filter((_, index) => vms[index]?.deletedBy !== undefined)
        .map((plan) => deletionFinished(sandbox, plan.vm.zone, plan.vm.name)),
    );
  } finally {
    unsubscribe();
  }
  return { vms, attacks, deletedByMig, recommendedSizes, durationMs: performance.now() - start };
}
