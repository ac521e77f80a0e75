import type { ComputeEngineClaims } from '#shared';

/**
 * Runner labels the token proxy derives from the caller's verified identity token, never from a request.
 *
 * Format: `gce-<key>-<value>`, lower case, letters, digits, `.` and `-` only, for example
 * `gce-instance-id-1234567890123456789`, `gce-zone-us-central1-a`, `gce-region-us-central1`,
 * `gce-project-my-project`, `gce-instance-name-gh-runner-abc`. GitHub documents no character set for runner
 * labels (only that they are case-insensitive); its own labels (`ubuntu-24.04`, `self-hosted`) use exactly
 * these characters, which `config.sh --labels` (comma-separated) and a workflow's `runs-on` both take
 * as they are. `:` and `=` appear in some deployments' labels but are not documented, so they are not used.
 * The key ends where the value begins because the keys are a fixed list: read a label with
 * {@link parseDerivedLabel}, never by splitting on `-`.
 * https://docs.github.com/actions/hosting-your-own-runners/managing-self-hosted-runners/using-labels-with-self-hosted-runners
 */
export const DERIVED_LABEL_PREFIX = 'gce-';

/** Keys a policy rule may ask for in `derivedLabels`; `instance-id` is always added, so it is not among them. */
export const OPTIONAL_DERIVED_LABEL_KEYS = ['zone', 'region', 'project', 'instance-name'] as const;

/** A key of a derived label. */
export type DerivedLabelKey = 'instance-id' | (typeof OPTIONAL_DERIVED_LABEL_KEYS)[number];

/** Every reserved key, longest first so that a prefix test finds the right one. */
const ALL_KEYS: readonly DerivedLabelKey[] = ['instance-name', 'instance-id', 'project', 'region', 'zone'];

/** Compute Engine ids, names, zones and (with `:` read as `.`) project ids fit this; anything else is refused. */
const VALUE = /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/;

/** The label every JIT runner the proxy configures carries: it binds the runner to the VM that asked for it. */
export function instanceIdLabel(instanceId: string): string {
  if (!/^\d{1,20}$/.test(instanceId)) throw new Error('a Compute Engine instance id is a decimal uint64');
  return `${DERIVED_LABEL_PREFIX}instance-id-${instanceId}`;
}

/**
 * The region of a zone: the zone without its last `-x` (`us-central1-a` → `us-central1`).
 * https://cloud.google.com/compute/docs/regions-zones
 */
export function regionOfZone(zone: string): string {
  const at = zone.lastIndexOf('-');
  return at > 0 ? zone.slice(0, at) : zone;
}

function valueOf(key: DerivedLabelKey, instance: ComputeEngineClaims): string {
  switch (key) {
    case 'instance-id':
      return instance.instanceId;
    case 'instance-name':
      return instance.instanceName;
    case 'zone':
      return instance.zone;
    case 'region':
      return regionOfZone(instance.zone);
    case 'project':
      // Legacy domain-scoped projects are `example.com:my-project`.
      // https://cloud.google.com/resource-manager/docs/creating-managing-projects#identifying_projects
      return instance.projectId.replace(/:/g, '.');
  }
}

/** Thrown when a claim cannot become a label (a value no Compute Engine name has). */
export class DerivedLabelError extends Error {
  override readonly name = 'DerivedLabelError';
}

/**
 * The labels the proxy adds to a JIT config for `instance`: the instance-id label first, then `keys` in
 * the order given, each once. Values come from the verified Compute Engine claims only.
 */
export function derivedLabels(
  instance: ComputeEngineClaims,
  keys: readonly DerivedLabelKey[] = [],
): string[] {
  const labels = [instanceIdLabel(instance.instanceId)];
  for (const key of new Set(keys)) {
    if (key === 'instance-id') continue;
    const value = valueOf(key, instance).toLowerCase();
    if (!VALUE.test(value)) {
      throw new DerivedLabelError(
        `the identity token's ${key} ${JSON.stringify(value.slice(0, 80))} cannot be a runner label`,
      );
    }
    labels.push(`${DERIVED_LABEL_PREFIX}${key}-${value}`);
  }
  return labels;
}

/** A derived label read back: its key and value; `undefined` for any other label. */
export function parseDerivedLabel(label: string): { key: DerivedLabelKey; value: string } | undefined {
  const lower = label.toLowerCase();
  for (const key of ALL_KEYS) {
    const prefix = `${DERIVED_LABEL_PREFIX}${key}-`;
    if (lower.startsWith(prefix) && lower.length > prefix.length) {
      return { key, value: lower.slice(prefix.length) };
    }
  }
  return undefined;
}

/**
 * True for a label only the proxy may set: one that starts with a reserved `gce-<key>-` prefix, in any
 * case (GitHub compares labels case-insensitively).
 */
export function isReservedLabel(label: string): boolean {
  const lower = label.toLowerCase();
  return ALL_KEYS.some((key) => lower.startsWith(`${DERIVED_LABEL_PREFIX}${key}-`));
}

/**
 * The instance id a runner's labels bind it to, or `undefined` when it carries no instance-id label (a
 * runner registered another way) or, against the rules, more than one. The autoscaler and reaper join
 * runners to VMs with this.
 */
export function instanceIdOfLabels(labels: readonly string[]): string | undefined {
  const ids = new Set(
    labels.flatMap((label) => {
      const parsed = parseDerivedLabel(label);
      return parsed?.key === 'instance-id' && /^\d{1,20}$/.test(parsed.value) ? [parsed.value] : [];
    }),
  );
  return ids.size === 1 ? [...ids][0] : undefined;
}

/** True when `labels` bind the runner to `instanceId` (and to no other instance). */
export function isBoundToInstance(labels: readonly string[], instanceId: string): boolean {
  return instanceIdOfLabels(labels) === instanceId;
}
