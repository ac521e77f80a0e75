import type { Env } from '#shared';

/** What the environment says where a flag does not: each flag wins over its variable. */
export interface FleetCliDefaults {
  /** `COMPUTE_API_ENDPOINT`, the default of `--compute-endpoint`. */
  computeEndpoint: string | undefined;
  /** `GOOGLE_CLOUD_PROJECT`, the default of `--project`. */
  project: string | undefined;
}

/** Reads the CLI's defaults from the environment: the one place `npm run fleet` reads it. */
export function loadFleetCliDefaults(env: Env = process.env): FleetCliDefaults {
  const value = (name: string) => (env[name] === '' ? undefined : env[name]);
  return { computeEndpoint: value('COMPUTE_API_ENDPOINT'), project: value('GOOGLE_CLOUD_PROJECT') };
}
