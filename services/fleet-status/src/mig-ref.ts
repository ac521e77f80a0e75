/** A zonal or regional managed instance group. */
export interface MigRef {
  /** A project id or number. */
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
 * Parses a MIG's partial URL (`projects/P/regions/R/instanceGroupManagers/N`, or `zones/Z`), as the autoscaler's
 * fleet view names MIGs, or its full URL; `undefined` for anything else.
 * https://cloud.google.com/compute/docs/reference/rest/v1/regionInstanceGroupManagers
 */
export function parseMigRef(url: string): MigRef | undefined {
  const match = MIG_URL.exec(url.trim());
  if (!match) return undefined;
  const [, project = '', scope, location = '', name = ''] = match;
  return { project, scope: scope === 'zones' ? 'zones' : 'regions', location, name };
}

/** `projects/P/regions/R/instanceGroupManagers/N`. */
export function formatMigRef(mig: MigRef): string {
  return `projects/${mig.project}/${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}`;
}

/** The region of a zonal or regional MIG (`us-central1` for zone `us-central1-a`). */
export function regionOf(mig: MigRef): string {
  return mig.scope === 'regions' ? mig.location : mig.location.replace(/-[a-z]$/, '');
}
