import { HttpError } from '#shared';
import type { ComputeEngineClaims } from '#shared';
import type { MigInfo } from './compute-client.js';
import { findMember } from './mig-reads.js';
import type { MigReads } from './mig-reads.js';
import { describeResource } from './resource-ref.js';
import type { ResourceRef } from './resource-ref.js';

/** Why the check answered as it did; logged with every decision and sent with every conditional delete. */
export type ScaleDownReason =
  | 'above-recommendation'
  | 'not-above-recommendation'
  | 'no-autoscaler'
  | 'no-recommendation'
  | 'mig-unstable';

export interface ScaleDownDecision {
  /** True when the MIG should lose a VM: it is stable and its autoscaler recommends fewer than `targetSize`. */
  scaleDown: boolean;
  reason: ScaleDownReason;
  targetSize: number;
  recommendedSize?: number;
}

/**
 * Decides from a MIG's `state` (read by the caller) and its autoscaler's `recommendedSize` (read here)
 * whether the MIG should lose a VM, without waiting for anything. A MIG that is not stable is still
 * creating or deleting VMs, so its numbers are about to change: "not now" (`mig-unstable`), and the VM
 * asks again on its next idle check, after a fresh busy check of its own. No autoscaler, or no
 * recommendation yet, means no scale-down. `deleteInstances` lowers `targetSize` at once, so a deletion
 * already accepted is counted, and its VM keeps the MIG unstable until it is gone.
 * https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers (status.isStable)
 */
export async function decideScaleDown(
  reads: MigReads,
  mig: ResourceRef,
  state: MigInfo,
): Promise<ScaleDownDecision> {
  const { targetSize, autoscaler } = state;
  if (!state.isStable) return { scaleDown: false, reason: 'mig-unstable', targetSize };
  if (!autoscaler) return { scaleDown: false, reason: 'no-autoscaler', targetSize };
  const recommendedSize = await reads.recommendedSize(autoscaler, mig);
  if (recommendedSize === undefined) return { scaleDown: false, reason: 'no-recommendation', targetSize };
  const scaleDown = recommendedSize < targetSize;
  return {
    scaleDown,
    reason: scaleDown ? 'above-recommendation' : 'not-above-recommendation',
    targetSize,
    recommendedSize,
  };
}

/** What the scale-down check needs: reads shared among callers, and reads made afresh. */
export interface CheckScaleDownDeps {
  sharedReads: MigReads;
  freshReads: MigReads;
}

/**
 * `GET /`: whether the calling VM's MIG should shrink, answered from the MIG as it is now (reads shared
 * with the other callers of the same MIG, at most a moment old), never waiting for it to change. The VM
 * must be a member of the MIG its `created-by` names (403 otherwise), as for a deletion; a VM missing
 * from a shared list is looked for again afresh before it is refused.
 */
export async function checkScaleDown(
  deps: CheckScaleDownDeps,
  vm: ComputeEngineClaims,
  mig: ResourceRef,
): Promise<ScaleDownDecision> {
  const [members, state] = await Promise.all([deps.sharedReads.members(mig), deps.sharedReads.state(mig)]);
  if (!findMember(members, vm) && !findMember(await deps.freshReads.members(mig), vm)) {
    throw new HttpError(403, `instance ${vm.instanceName} is not a member of MIG ${describeResource(mig)}`);
  }
  return decideScaleDown(deps.sharedReads, mig, state);
}
