/** A zonal or regional Compute Engine resource such as a MIG or an autoscaler. */
export interface ResourceRef {
  /** A project id or number, as the URL named it. */
  project: string;
  scope: 'zones' | 'regions';
  /** The zone or region. */
  location: string;
  name: string;
}

/** The metadata key a MIG sets on every VM it creates, holding the MIG's partial URL. */
export const CREATED_BY_KEY = 'created-by';

const NAME = '[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?';

/**
 * Parses a full (`https://…/compute/v1/projects/…`) or partial (`projects/…`) URL of a resource in
 * `collection`, e.g. `projects/P/regions/R/instanceGroupManagers/N`; `undefined` if it is anything else.
 */
export function parseResourceUrl(url: string, collection: string): ResourceRef | undefined {
  const pattern = new RegExp(
    `^(?:https://[^/]+/compute/(?:v1|beta|alpha)/)?projects/([^/\\s]+)/(zones|regions)/(${NAME})/${collection}/(${NAME})$`,
  );
  const match = pattern.exec(url.trim());
  if (!match) return undefined;
  const [, project = '', scope, location = '', name = ''] = match;
  return { project, scope: scope === 'zones' ? 'zones' : 'regions', location, name };
}

/**
 * Parses a VM's `created-by` metadata: `projects/P/zones/Z/instanceGroupManagers/N` for a zonal MIG,
 * `projects/P/regions/R/instanceGroupManagers/N` for a regional one. P is the project number in practice,
 * but the project id is accepted too.
 * https://cloud.google.com/compute/docs/instance-groups/getting-info-about-migs#checking_if_a_vm_instance_is_part_of_a_mig
 */
export function parseCreatedBy(value: string): ResourceRef | undefined {
  return parseResourceUrl(value, 'instanceGroupManagers');
}

/** `projects/P/regions/R/instanceGroupManagers/N`: a MIG's partial URL, for messages and logs. */
export function formatMigRef(mig: ResourceRef): string {
  return `projects/${mig.project}/${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}`;
}

/** `runners in region us-central1`: how messages name a MIG or an autoscaler. */
export function describeResource(mig: ResourceRef): string {
  return `${mig.name} in ${mig.scope === 'zones' ? 'zone' : 'region'} ${mig.location}`;
}
