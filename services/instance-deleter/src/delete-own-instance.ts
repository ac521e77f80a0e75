import { HttpError } from '#shared';
import type { ComputeEngineClaims, Deadline } from '#shared';
import { decideScaleDown } from './check-scale-down.js';
import type { ScaleDownDecision, ScaleDownReason } from './check-scale-down.js';
import type { ComputeClient, ManagedInstanceInfo } from './compute-client.js';
import { withComputeContext } from './compute-error.js';
import type { KeyedMutex } from './keyed-mutex.js';
import { findMember } from './mig-reads.js';
import type { MigReads } from './mig-reads.js';
import { describeResource, formatMigRef } from './resource-ref.js';
import type { ResourceRef } from './resource-ref.js';

/** What deleting the caller needs; `migLock` is shared by every request of one deleter. */
export interface DeleteOwnInstanceDeps {
  compute: ComputeClient;
  /** Reads made afresh: a deletion never decides on a shared or older read. */
  freshReads: MigReads;
  migLock: KeyedMutex;
}

/** What `DELETE /` came to: the outcome for the log and the response line. */
export interface DeletionOutcome {
  outcome: 'deleting' | 'already-deleting';
  body: string;
}

/**
 * Why `DELETE /?if=scale-down` deleted the VM or kept it: a {@link ScaleDownReason}, `already-deleting`,
 * or `mig-busy` (another request is deciding on a VM of the same MIG right now).
 */
export type ConditionalDeletionReason = ScaleDownReason | 'already-deleting' | 'mig-busy';

/** The answer to `DELETE /?if=scale-down`, sent as JSON: did the VM go, and why. */
export interface ConditionalDeletion {
  /** True when the VM is being deleted (by this request or an earlier one). */
  deleted: boolean;
  reason: ConditionalDeletionReason;
  /** One line for people and logs. */
  message: string;
}

/** The VM asking, as a member of its MIG: 403 when it is not (or no longer) one. */
function memberOrRefuse(members: ManagedInstanceInfo[], vm: ComputeEngineClaims, mig: ResourceRef) {
  const member = findMember(members, vm);
  if (!member) {
    throw new HttpError(403, `instance ${vm.instanceName} is not a member of MIG ${describeResource(mig)}`);
  }
  return member;
}

/** Sends `deleteInstances` for the VM, unless the caller was already told the request ran out of time. */
async function deleteThroughMig(
  compute: ComputeClient,
  vm: ComputeEngineClaims,
  mig: ResourceRef,
  deadline: Deadline,
): Promise<void> {
  const instance = `instance ${vm.instanceName}`;
  if (deadline.passed) throw new HttpError(504, `ran out of time before deleting ${instance}`);
  await withComputeContext(`delete ${instance} from MIG ${describeResource(mig)}`, () =>
    compute.deleteInstance(mig, vm.zone, vm.instanceName),
  );
}

/**
 * `DELETE /`: deletes the calling VM through its MIG (`deleteInstances`). Deletions of one MIG are
 * serialised with its conditional deletions (a VM that just finished its job waits its short turn, until
 * its deadline at most), so a conditional decision never overlaps a deletion it did not see. Asking again
 * while the VM is being deleted is no second call.
 * https://cloud.google.com/compute/docs/reference/rest/v1/regionInstanceGroupManagers/deleteInstances
 */
export function deleteOwnInstance(
  deps: DeleteOwnInstanceDeps,
  vm: ComputeEngineClaims,
  mig: ResourceRef,
  deadline: Deadline,
): Promise<DeletionOutcome> {
  const group = `MIG ${describeResource(mig)}`;
  const instance = `instance ${vm.instanceName}`;
  // The lock is held until the deletion is done or this request's deadline passes, whichever is first:
  // a hung Compute call must not hold up every other VM of the MIG.
  return deps.migLock.run(formatMigRef(mig), () => Promise.race([locked(), deadline.expired]));
  async function locked(): Promise<DeletionOutcome> {
    if (deadline.passed) throw new HttpError(504, `timed out waiting for other deletions in ${group}`);
    const member = memberOrRefuse(await deps.freshReads.members(mig), vm, mig);
    if (member.currentAction === 'DELETING') {
      return { outcome: 'already-deleting', body: `${group} is already deleting ${instance}\n` };
    }
    await deleteThroughMig(deps.compute, vm, mig, deadline);
    return { outcome: 'deleting', body: `${group} is deleting ${instance}\n` };
  }
}

/** A conditional deletion's answer, and the scale-down decision behind it (for the log) when there was one. */
export interface ConditionalOutcome {
  answer: ConditionalDeletion;
  decision?: ScaleDownDecision | undefined;
}

/** Why a MIG keeps its VM, for the message line. */
function keepReason(reason: ConditionalDeletionReason, decision?: ScaleDownDecision): string {
  switch (reason) {
    case 'no-autoscaler':
      return 'has no autoscaler';
    case 'no-recommendation':
      return 'has no recommended size yet';
    case 'mig-unstable':
      return 'is not stable (it is creating or deleting VMs)';
    case 'mig-busy':
      return 'is deciding on another of its VMs right now';
    default:
      return `is not above its recommended size (target ${decision?.targetSize}, recommended ${decision?.recommendedSize})`;
  }
}

/**
 * `DELETE /?if=scale-down`: deletes the calling VM only if its MIG is stable and above its autoscaler's
 * recommendation, decided on reads made now and followed at once by `deleteInstances`. Nothing waits
 * between the VM's own busy check and the deletion: no wait for a stable MIG (an unstable one is "not
 * now", `mig-unstable`), and no queue behind other requests (while another request of this deleter
 * decides on a VM of the same MIG, the answer is "not now", `mig-busy`). A VM kept for either reason asks
 * again at its next idle check, after a fresh busy check. Decisions per MIG are one at a time, so of N
 * VMs asking at once only as many leave as the MIG is above its recommendation, and after a deletion the
 * MIG is unstable until the VM is gone.
 * https://cloud.google.com/compute/docs/reference/rest/v1/regionInstanceGroupManagers/deleteInstances
 */
export async function deleteOwnInstanceIfScaleDown(
  deps: DeleteOwnInstanceDeps,
  vm: ComputeEngineClaims,
  mig: ResourceRef,
  deadline: Deadline,
): Promise<ConditionalOutcome> {
  const group = `MIG ${describeResource(mig)}`;
  const instance = `instance ${vm.instanceName}`;
  const kept = (reason: ConditionalDeletionReason, decision?: ScaleDownDecision): ConditionalOutcome => {
    const wait =
      reason === 'mig-unstable' || reason === 'mig-busy' ? '; ask again at the next idle check' : '';
    const message = `${group} ${keepReason(reason, decision)}: keeping ${instance}${wait}`;
    return { answer: { deleted: false, reason, message }, decision };
  };
  const decided = deps.migLock.tryRun(formatMigRef(mig), () => Promise.race([locked(), deadline.expired]));
  return decided ?? kept('mig-busy');

  async function locked(): Promise<ConditionalOutcome> {
    const [members, state] = await Promise.all([deps.freshReads.members(mig), deps.freshReads.state(mig)]);
    const member = memberOrRefuse(members, vm, mig);
    if (member.currentAction === 'DELETING') {
      const message = `${group} is already deleting ${instance}`;
      return { answer: { deleted: true, reason: 'already-deleting', message } };
    }
    const decision = await decideScaleDown(deps.freshReads, mig, state);
    if (!decision.scaleDown) return kept(decision.reason, decision);
    await deleteThroughMig(deps.compute, vm, mig, deadline);
    const message =
      `${group} is above its recommended size (target ${decision.targetSize}, recommended ` +
      `${decision.recommendedSize}) and is deleting ${instance}`;
    return { answer: { deleted: true, reason: decision.reason, message }, decision };
  }
}
