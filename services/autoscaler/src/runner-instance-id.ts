/**
 * The label the token proxy puts on every JIT runner it configures, carrying the verified Compute Engine
 * instance id of the VM that asked: `gce-instance-id-<id>`. The autoscaler joins runners to VMs on it,
 * never on names alone (names repeat across zones and projects, and a name prefix also matches other
 * fleets' runners). GitHub compares labels case-insensitively.
 *
 * The token proxy owns the format (`derived-labels.ts`, `instanceIdLabel`); a test checks that what this
 * reads is what the proxy writes.
 */
export const INSTANCE_ID_LABEL_PREFIX = 'gce-instance-id-';

/** Reads a runner's labels for the instance id it is bound to. */
export type InstanceIdOfLabels = (labels: readonly string[]) => string | undefined;

/**
 * The instance id a runner's labels bind it to: the digits (a uint64, kept as a string) of its one
 * instance-id label; `undefined` when it has none (a runner registered some other way) or, against the
 * proxy's rules, several different ones.
 */
export function instanceIdOfLabels(labels: readonly string[]): string | undefined {
  const ids = new Set<string>();
  for (const label of labels) {
    const lower = label.toLowerCase();
    if (!lower.startsWith(INSTANCE_ID_LABEL_PREFIX)) continue;
    const id = lower.slice(INSTANCE_ID_LABEL_PREFIX.length);
    if (/^\d{1,20}$/.test(id)) ids.add(id);
  }
  return ids.size === 1 ? [...ids][0] : undefined;
}
