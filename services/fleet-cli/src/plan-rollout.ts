import type { protos } from '@google-cloud/compute';
import { regionOf, templateName } from '#fleet-status';
import type { MigRollout, MigVersion } from '#fleet-status';

type InstanceGroupManager = protos.google.cloud.compute.v1.IInstanceGroupManager;
type UpdatePolicy = protos.google.cloud.compute.v1.IInstanceGroupManagerUpdatePolicy;

/** How running VMs are treated: left alone until they go (`OPPORTUNISTIC`), or replaced now (`PROACTIVE`). */
export type UpdateType = 'OPPORTUNISTIC' | 'PROACTIVE';

/** One MIG to change: the patch, and a line saying what it does. */
export interface MigChange {
  mig: MigRollout;
  patch: InstanceGroupManager;
  summary: string;
}

/** What a rollout command will do, MIG by MIG. */
export interface RolloutPlan {
  changes: MigChange[];
  /** MIGs matched but left alone, and why. */
  skipped: Array<{ mig: MigRollout; reason: string }>;
}

/** The MIGs a command acts on: the whole region matches `regions`, and the whole name `group` (when given). */
export function selectMigs(
  migs: readonly MigRollout[],
  filter: { regions: RegExp; group?: RegExp | undefined },
): MigRollout[] {
  return migs.filter(
    (m) => filter.regions.test(regionOf(m.ref)) && (!filter.group || filter.group.test(m.ref.name)),
  );
}

const isCanary = (v: MigVersion) => v.fixed !== null || v.percent !== null;

/** The version with a target size (the canary), if any. */
export function canaryOf(mig: MigRollout): MigVersion | undefined {
  return mig.versions.find(isCanary);
}

/** The template of the version that takes the rest (the stable one), or the MIG's template. */
export function stableTemplateOf(mig: MigRollout): string | null {
  return (
    mig.versions.find((v) => !isCanary(v) && v.instanceTemplate !== '')?.instanceTemplate ??
    mig.instanceTemplate
  );
}

const sameTemplate = (a: string | null | undefined, b: string) =>
  a != null && templateName(a) === templateName(b);
const where = (mig: MigRollout) => `${mig.ref.scope}/${mig.ref.location}/${mig.ref.name}`;

/**
 * The update policy every rollout sets. `RECREATE` keeps each VM's name, which a MIG requires when members
 * have per-instance configs (the autoscaler names each VM after its job with `createInstances`), and it
 * requires `maxSurge` 0; a regional MIG's fixed `maxUnavailable` must be 0 or at least its number of zones.
 * https://cloud.google.com/compute/docs/instance-groups/updating-migs
 */
export function updatePolicyFor(mig: MigRollout, type: UpdateType): UpdatePolicy {
  return {
    type,
    minimalAction: 'REPLACE',
    replacementMethod: 'RECREATE',
    maxSurge: { fixed: 0 },
    maxUnavailable: { fixed: mig.ref.scope === 'regions' ? Math.max(1, mig.zones.length) : 1 },
  };
}

/** `rollout canary`: `size` VMs per MIG on `template` (a fixed target size), the rest on the stable template. */
export function planCanary(
  migs: readonly MigRollout[],
  template: string,
  size: number,
  type: UpdateType,
): RolloutPlan {
  const plan: RolloutPlan = { changes: [], skipped: [] };
  for (const mig of migs) {
    const stable = stableTemplateOf(mig);
    const canary = canaryOf(mig);
    if (stable === null) {
      plan.skipped.push({ mig, reason: 'has no instance template' });
    } else if (sameTemplate(stable, template)) {
      plan.skipped.push({ mig, reason: `already runs ${templateName(template)} as its stable template` });
    } else if (canary && sameTemplate(canary.instanceTemplate, template) && canary.fixed === size) {
      plan.skipped.push({ mig, reason: `already has a canary of ${size} on ${templateName(template)}` });
    } else {
      plan.changes.push({
        mig,
        patch: {
          versions: [
            { name: 'canary', instanceTemplate: template, targetSize: { fixed: size } },
            { name: 'stable', instanceTemplate: stable },
          ],
          updatePolicy: updatePolicyFor(mig, type),
        },
        summary: `${where(mig)}: canary of ${size} VM${size === 1 ? '' : 's'} on ${templateName(template)}, the rest on ${templateName(stable)}${canary ? ` (replaces the canary on ${templateName(canary.instanceTemplate)})` : ''}, ${type.toLowerCase()}`,
      });
    }
  }
  return plan;
}

/** `rollout promote`: each MIG's canary template becomes its only (stable) template. */
export function planPromote(migs: readonly MigRollout[], type: UpdateType): RolloutPlan {
  const plan: RolloutPlan = { changes: [], skipped: [] };
  for (const mig of migs) {
    const canary = canaryOf(mig);
    if (!canary) {
      plan.skipped.push({ mig, reason: 'has no canary' });
      continue;
    }
    plan.changes.push({
      mig,
      patch: {
        versions: [{ name: 'stable', instanceTemplate: canary.instanceTemplate }],
        updatePolicy: updatePolicyFor(mig, type),
      },
      summary: `${where(mig)}: ${templateName(canary.instanceTemplate)} becomes the template of every VM (was ${templateName(stableTemplateOf(mig) ?? '?')}), ${type.toLowerCase()}`,
    });
  }
  return plan;
}

/** `rollout direct-update`: `template` for every VM at once, without a canary. */
export function planDirectUpdate(
  migs: readonly MigRollout[],
  template: string,
  type: UpdateType,
): RolloutPlan {
  const plan: RolloutPlan = { changes: [], skipped: [] };
  for (const mig of migs) {
    const stable = stableTemplateOf(mig);
    if (sameTemplate(stable, template) && !canaryOf(mig)) {
      plan.skipped.push({ mig, reason: `already runs ${templateName(template)}` });
      continue;
    }
    plan.changes.push({
      mig,
      patch: {
        versions: [{ name: 'stable', instanceTemplate: template }],
        updatePolicy: updatePolicyFor(mig, type),
      },
      summary: `${where(mig)}: ${templateName(template)} for every VM (was ${templateName(stable ?? '?')}${canaryOf(mig) ? ' with a canary' : ''}), ${type.toLowerCase()}`,
    });
  }
  return plan;
}
