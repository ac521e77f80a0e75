import { badRequest } from './compute-error.js';
import { locationUrl } from './compute-state.js';
import type { FakeManagedInstance, FakeMig } from './compute-state.js';

/**
 * One entry of a MIG's `versions` (https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers):
 * a template and how many members should run it. The one version without `targetSize` takes the rest.
 */
export interface FakeMigVersion {
  name: string;
  /** Full URL of the instance template. */
  instanceTemplate: string;
  targetSize?: { fixed?: number; percent?: number };
}

/** Members that count towards a version: not on their way out. */
const live = (mig: FakeMig): FakeManagedInstance[] =>
  [...mig.members.values()].filter((m) => m.currentAction !== 'DELETING' && m.currentAction !== 'ABANDONING');

/**
 * Each version's `targetSize.calculated`: a fixed number capped at the MIG's targetSize, a percent of it rounded
 * up ("If there is a remainder, the number is rounded up", InstanceGroupManagerVersion in the v1 reference), and
 * the rest for the version without a target.
 */
export function calculatedTargets(mig: FakeMig): Map<FakeMigVersion, number> {
  const targets = new Map<FakeMigVersion, number>();
  const versions = mig.versions ?? [];
  let left = mig.targetSize;
  for (const version of versions) {
    if (!version.targetSize) continue;
    const wanted =
      version.targetSize.fixed !== undefined
        ? version.targetSize.fixed
        : Math.ceil(((version.targetSize.percent ?? 0) * mig.targetSize) / 100);
    const calculated = Math.min(wanted, left);
    targets.set(version, calculated);
    left -= calculated;
  }
  for (const version of versions) if (!version.targetSize) targets.set(version, Math.max(0, left));
  return targets;
}

function countsByTemplate(members: readonly FakeManagedInstance[]): Map<string | undefined, number> {
  const counts = new Map<string | undefined, number>();
  for (const member of members)
    counts.set(member.instanceTemplate, (counts.get(member.instanceTemplate) ?? 0) + 1);
  return counts;
}

/**
 * The template a new member gets: the first version (in the MIG's order) below its target, else the version
 * that takes the rest; without versions, the MIG's `instanceTemplate`. Call it once the member is in
 * `mig.members` and counted in `targetSize`. This is how an opportunistic update reaches ephemeral runners: the
 * MIG "uses this template to create new instances ... until the targetSize for this version is reached".
 */
export function templateForNewMember(mig: FakeMig): string | undefined {
  const versions = mig.versions;
  if (!versions || versions.length === 0) return mig.instanceTemplate;
  const counts = countsByTemplate(live(mig));
  const targets = calculatedTargets(mig);
  const below = versions.find((v) => v.targetSize && (counts.get(v.instanceTemplate) ?? 0) < targets.get(v)!);
  return (below ?? versions.find((v) => !v.targetSize) ?? versions[versions.length - 1]!).instanceTemplate;
}

/** `status.versionTarget.isReached`: every version runs on exactly its calculated number of members. */
export function versionTargetReached(mig: FakeMig): boolean {
  const members = live(mig);
  if (!mig.versions || mig.versions.length === 0) {
    return members.every(
      (m) => mig.instanceTemplate === undefined || m.instanceTemplate === mig.instanceTemplate,
    );
  }
  const counts = countsByTemplate(members);
  const targets = calculatedTargets(mig);
  const named = new Set(mig.versions.map((v) => v.instanceTemplate));
  return (
    mig.versions.every((v) => (counts.get(v.instanceTemplate) ?? 0) === targets.get(v)) &&
    members.every((m) => m.instanceTemplate !== undefined && named.has(m.instanceTemplate))
  );
}

/**
 * A proactive update: moves members off templates no version names, and off versions above their target, onto
 * versions below theirs, at once (a real MIG recreates them a few at a time within `maxUnavailable`, and a job on
 * such a VM dies). Returns the names of the members it moved.
 */
export function applyProactiveUpdate(mig: FakeMig): string[] {
  const versions = mig.versions && mig.versions.length > 0 ? mig.versions : undefined;
  const members = live(mig);
  if (!versions) {
    const moved = members.filter(
      (m) => mig.instanceTemplate !== undefined && m.instanceTemplate !== mig.instanceTemplate,
    );
    for (const member of moved) member.instanceTemplate = mig.instanceTemplate;
    return moved.map((m) => m.name);
  }
  const targets = calculatedTargets(mig);
  const kept = new Map<FakeMigVersion, number>(versions.map((v) => [v, 0]));
  const toMove: FakeManagedInstance[] = [];
  for (const member of members) {
    const version = versions.find((v) => v.instanceTemplate === member.instanceTemplate);
    if (version && kept.get(version)! < targets.get(version)!) kept.set(version, kept.get(version)! + 1);
    else toMove.push(member);
  }
  for (const member of toMove) {
    const version = versions.find((v) => kept.get(v)! < targets.get(v)!) ?? versions[versions.length - 1]!;
    kept.set(version, kept.get(version)! + 1);
    member.instanceTemplate = version.instanceTemplate;
  }
  return toMove.map((m) => m.name);
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const UPDATE_TYPES = ['OPPORTUNISTIC', 'PROACTIVE'];
const REPLACEMENT_METHODS = ['SUBSTITUTE', 'RECREATE'];
const MINIMAL_ACTIONS = ['NONE', 'REFRESH', 'RESTART', 'REPLACE'];

/**
 * Validates a patch's `versions`, as Compute does: each names a template (resolved by `resolveTemplate`, which
 * throws 404 for a template that does not exist), names are unique, targets are whole numbers (percent up to
 * 100), and exactly one version has no target.
 */
export function parseVersions(
  value: unknown,
  resolveTemplate: (reference: string) => string,
): FakeMigVersion[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw badRequest("Invalid value for field 'resource.versions': at least one version is required.");
  }
  const versions = value.map((entry, i): FakeMigVersion => {
    const where = `resource.versions[${i}]`;
    if (!isRecord(entry) || typeof entry.instanceTemplate !== 'string') {
      throw badRequest(`Invalid value for field '${where}.instanceTemplate': required.`);
    }
    const version: FakeMigVersion = {
      name: typeof entry.name === 'string' ? entry.name : '',
      instanceTemplate: resolveTemplate(entry.instanceTemplate),
    };
    const target = entry.targetSize;
    const fixed = isRecord(target) ? target.fixed : undefined;
    const percent = isRecord(target) ? target.percent : undefined;
    // `calculated` is output only: a target that carries nothing else (a MIG read and sent back) is no target.
    if (
      target !== undefined &&
      target !== null &&
      (fixed !== undefined || percent !== undefined || !isRecord(target))
    ) {
      if (fixed !== undefined && Number.isInteger(fixed) && (fixed as number) >= 0 && percent === undefined) {
        version.targetSize = { fixed: fixed as number };
      } else if (
        percent !== undefined &&
        Number.isInteger(percent) &&
        (percent as number) >= 0 &&
        (percent as number) <= 100 &&
        fixed === undefined
      ) {
        version.targetSize = { percent: percent as number };
      } else {
        throw badRequest(
          `Invalid value for field '${where}.targetSize': set fixed or percent (0-100), not both.`,
        );
      }
    }
    return version;
  });
  const names = versions.map((v) => v.name);
  if (new Set(names).size !== names.length) {
    throw badRequest("Invalid value for field 'resource.versions': version names must be unique.");
  }
  if (versions.filter((v) => !v.targetSize).length !== 1) {
    throw badRequest(
      "Invalid value for field 'resource.versions': exactly one version must have no targetSize (it takes the remaining instances).",
    );
  }
  return versions;
}

/** Merges a patch's `updatePolicy` over the MIG's, checking the enum fields. */
export function mergeUpdatePolicy(
  current: Record<string, unknown> | undefined,
  patch: unknown,
): Record<string, unknown> {
  if (!isRecord(patch)) throw badRequest("Invalid value for field 'resource.updatePolicy'.");
  const merged = { ...current, ...patch };
  const checks: Array<[string, string[]]> = [
    ['type', UPDATE_TYPES],
    ['replacementMethod', REPLACEMENT_METHODS],
    ['minimalAction', MINIMAL_ACTIONS],
  ];
  for (const [field, allowed] of checks) {
    if (merged[field] !== undefined && !allowed.includes(String(merged[field]))) {
      throw badRequest(
        `Invalid value for field 'resource.updatePolicy.${field}': '${String(merged[field])}'.`,
      );
    }
  }
  return merged;
}

/** The fields `instanceGroupManagers.get` adds for templates and rollouts. */
export function renderMigVersionFields(mig: FakeMig): Record<string, unknown> {
  const targets = calculatedTargets(mig);
  const versions =
    mig.versions && mig.versions.length > 0
      ? mig.versions.map((v) => ({
          name: v.name,
          instanceTemplate: v.instanceTemplate,
          targetSize: { ...v.targetSize, calculated: targets.get(v) },
        }))
      : mig.instanceTemplate !== undefined
        ? [{ instanceTemplate: mig.instanceTemplate, targetSize: { calculated: mig.targetSize } }]
        : [];
  return {
    ...(mig.instanceTemplate !== undefined && { instanceTemplate: mig.instanceTemplate }),
    versions,
    updatePolicy: {
      type: 'OPPORTUNISTIC',
      minimalAction: 'REPLACE',
      replacementMethod: 'SUBSTITUTE',
      ...mig.updatePolicy,
    },
    ...(mig.scope === 'regions' && {
      distributionPolicy: {
        targetShape: 'EVEN',
        zones: mig.zones.map((zone) => ({ zone: locationUrl(mig.project, 'zones', zone) })),
      },
    }),
  };
}

/** A member's `version`, as listManagedInstances reports it. */
export function renderMemberVersion(mig: FakeMig, member: FakeManagedInstance): Record<string, unknown> {
  if (member.instanceTemplate === undefined) return {};
  const name = mig.versions?.find((v) => v.instanceTemplate === member.instanceTemplate)?.name;
  return { version: { instanceTemplate: member.instanceTemplate, ...(name ? { name } : {}) } };
}
