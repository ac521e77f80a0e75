import { HttpError } from '#shared';
import type { ComputeEngineClaims, Deadline } from '#shared';
import { checkScaleDown } from './check-scale-down.js';
import type { ScaleDownDecision, StabilizeClock } from './check-scale-down.js';
import type { ComputeClient } from './compute-client.js';
import { withComputeContext } from './compute-error.js';
import type { KeyedMutex } from './keyed-mutex.js';
import { describeResource, formatMigRef } from './resource-ref.js';
import type { ResourceRef } from './resource-ref.js';

/** What deleting the caller needs; `migLock` is shared by every request of one deleter. */
export interface DeleteOwnInstanceDeps {
  compute: ComputeClient;
  clock: StabilizeClock;
  migLock: KeyedMutex;
}

/** What a deletion request came to: the outcome for the log, the response line, and the check behind it. */
export interface DeletionOutcome {
  outcome: 'deleting' | 'already-deleting' | 'kept';
  body: string;
  decision?: ScaleDownDecision | undefined;
}

/** Why a MIG keeps its VMs, for response lines. */
function keepReason(decision: ScaleDownDecision): string {
  switch (decision.reason) {
    case 'no-autoscaler':
      return 'has no autoscaler';
    case 'no-recommendation':
      return 'has no recommended size yet';
    default:
      return `is not above its recommended size (target ${decision.targetSize}, recommended ${decision.recommendedSize})`;
  }
}

/**
 * Deletes the calling VM through its MIG (`deleteInstances`), or, when `conditional`, only if the MIG is
 * above its autoscaler's recommendation (checked until `stableBy`, a clock time in ms). Deletions are
 * serialised per MIG and each re-reads `targetSize` under the lock, so of N VMs asking at once only as many
 * leave as the MIG is above its recommendation. Asking again while the VM is being deleted is no second call.
 * https://cloud.google.com/compute/docs/reference/rest/v1/regionInstanceGroupManagers/deleteInstances
 */
export function deleteOwnInstance(
  deps: DeleteOwnInstanceDeps,
  vm: ComputeEngineClaims,
  mig: ResourceRef,
  options: { conditional: boolean; stableBy: number; deadline: Deadline },
): Promise<DeletionOutcome> {
  const { compute } = deps;
  const { deadline } = options;
  const group = `MIG ${describeResource(mig)}`;
  const instance = `instance ${vm.instanceName}`;
  // The lock is held until the deletion is done or this request's deadline passes, whichever is first:
  // a hung Compute call must not hold up every other VM of the MIG.
  return deps.migLock.run(formatMigRef(mig), () => Promise.race([locked(), deadline.expired]));
  async function locked(): Promise<DeletionOutcome> {
    if (deadline.passed) throw new HttpError(504, `timed out waiting for other deletions in ${group}`);
    const members = await withComputeContext(`list the VMs of ${group}`, () =>
      compute.listManagedInstances(mig),
    );
    const member = members.find((m) => m.zone === vm.zone && m.name === vm.instanceName);
    if (!member) throw new HttpError(403, `${instance} is not a member of ${group}`);
    if (member.currentAction === 'DELETING') {
      return { outcome: 'already-deleting', body: `${group} is already deleting ${instance}\n` };
    }
    let decision: ScaleDownDecision | undefined;
    if (options.conditional) {
      decision = await checkScaleDown(compute, mig, options.stableBy, deps.clock);
      if (!decision.scaleDown) {
        return { outcome: 'kept', body: `${group} ${keepReason(decision)}: keeping ${instance}\n`, decision };
      }
    }
    // A request whose caller already heard 504 must not delete after all.
    if (deadline.passed) throw new HttpError(504, `ran out of time before deleting ${instance}`);
    await withComputeContext(`delete ${instance} from ${group}`, () =>
      compute.deleteInstance(mig, vm.zone, vm.instanceName),
    );
    const why = decision
      ? ` is above its recommended size (target ${decision.targetSize}, recommended ${decision.recommendedSize}) and`
      : '';
    return { outcome: 'deleting', body: `${group}${why} is deleting ${instance}\n`, decision };
  }
}
