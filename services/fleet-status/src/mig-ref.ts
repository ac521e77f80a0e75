import type { MigRef } from '#autoscaler';

// A MIG is named as the autoscaler names it in its fleet view: one parser, the autoscaler's.
export { formatMigRef, parseMigRef } from '#autoscaler';
export type { MigRef } from '#autoscaler';

/** The region of a zonal or regional MIG (`us-central1` for zone `us-central1-a`). */
export function regionOf(mig: MigRef): string {
  return mig.scope === 'regions' ? mig.location : mig.location.replace(/-[a-z]$/, '');
}
