/** A zonal or regional managed instance group, as a pool's `migs` entry names it. */
export interface MigRef {
  /** A project id (or number), as configured. */
  project: string;
  scope: 'zones' | 'regions';
  /** The zone or region. */
  location: string;
  name: string;
}

const NAME = '[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?';
const PROJECT = '[a-z0-9][-a-z0-9.:]{0,62}';
const MIG_URL = new RegExp(
  `^(?:https://[^/]+/compute/v1/)?projects/(${PROJECT})/(zones|regions)/(${NAME})/instanceGroupManagers/(${NAME})$`,
);

/**
 * Parses a MIG's partial URL (`projects/P/regions/R/instanceGroupManagers/N`, or `zones/Z`) or its full
 * `https://…/compute/v1/…` URL; `undefined` for anything else.
 * https://cloud.google.com/compute/docs/reference/rest/v1/regionInstanceGroupManagers
 */
export function parseMigRef(url: string): MigRef | undefined {
  const match = MIG_URL.exec(url.trim());
  if (!match) return undefined;
  const [, project = '', scope, location = '', name = ''] = match;
  return { project, scope: scope === 'zones' ? 'zones' : 'regions', location, name };
}

/** `projects/P/regions/R/instanceGroupManagers/N`: how logs, messages and the fleet view name a MIG. */
export function formatMigRef(mig: MigRef): string {
  return `projects/${mig.project}/${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}`;
}
