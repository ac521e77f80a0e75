import { HttpError } from '#shared';
import type { ComputeClient } from './compute-client.js';
import { withComputeContext } from './compute-error.js';
import { describeResource } from './resource-ref.js';
import type { ResourceRef } from './resource-ref.js';

/** Why the check answered as it did; logged with every decision. */
export type ScaleDownReason =
  'above-recommendation' | 'not-above-recommendation' | 'no-autoscaler' | 'no-recommendation';

export interface ScaleDownDecision {
  /** True when the MIG should lose a VM: the autoscaler recommends fewer than `targetSize`. */
  scaleDown: boolean;
  reason: ScaleDownReason;
  targetSize: number;
  recommendedSize?: number;
}

/** The clock of the stability wait, injected so tests run it without waiting. */
export interface StabilizeClock {
  /** Milliseconds, like `Date.now`. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** In [0, 1), like `Math.random`. */
  random(): number;
}

/** Polls are 1 to 5 s apart; the jitter keeps the VMs of one MIG from polling in step. */
const MIN_POLL_MS = 1000;
const POLL_JITTER_MS = 4000;

/**
 * Waits (until `deadline`) for the MIG to be stable, then compares its autoscaler's `recommendedSize` with
 * its `targetSize`. An unstable MIG is still creating or deleting VMs, so its numbers are about to change;
 * past the deadline the answer is a 504. No autoscaler, or no recommendation yet, means no scale-down.
 */
export async function checkScaleDown(
  compute: ComputeClient,
  mig: ResourceRef,
  deadline: number,
  clock: StabilizeClock,
): Promise<ScaleDownDecision> {
  const readMig = () => withComputeContext(`read MIG ${describeResource(mig)}`, () => compute.getMig(mig));
  let state = await readMig();
  while (!state.isStable) {
    const left = deadline - clock.now();
    if (left <= 0) {
      throw new HttpError(504, `MIG ${describeResource(mig)} did not become stable in time; ask again later`);
    }
    await clock.sleep(Math.min(left, MIN_POLL_MS + clock.random() * POLL_JITTER_MS));
    state = await readMig();
  }
  const { targetSize, autoscaler } = state;
  if (!autoscaler) return { scaleDown: false, reason: 'no-autoscaler', targetSize };
  const recommendedSize = await withComputeContext(
    `read autoscaler ${describeResource(autoscaler)} of MIG ${mig.name}`,
    () => compute.getRecommendedSize(autoscaler),
  );
  if (recommendedSize === undefined) return { scaleDown: false, reason: 'no-recommendation', targetSize };
  // deleteInstances lowers targetSize at once, so a deletion already under way is counted here.
  const scaleDown = recommendedSize < targetSize;
  return {
    scaleDown,
    reason: scaleDown ? 'above-recommendation' : 'not-above-recommendation',
    targetSize,
    recommendedSize,
  };
}
