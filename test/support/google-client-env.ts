/** Variables google-auth-library and gcp-metadata read, which could send credential lookups elsewhere. */
const GOOGLE_CLIENT_ENV_KEYS = [
  'GCE_METADATA_HOST',
  'GCE_METADATA_IP',
  'METADATA_SERVER_DETECTION',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'CLOUDSDK_CONFIG',
  'GOOGLE_CLOUD_PROJECT',
  'GCLOUD_PROJECT',
];

/**
 * Points the Google client libraries at a fake metadata server and nothing else: clears every variable
 * that could lead them elsewhere (and `values`' and `extraKeys`' names), sets `values`, and returns a function that restores
 * the environment as it was. `CLOUDSDK_CONFIG` keeps a developer's gcloud credentials out of the way.
 */
export function isolateGoogleClientEnv(
  metadataHost: string,
  values: Record<string, string> = {},
  extraKeys: readonly string[] = [],
): () => void {
  const keys = [...new Set([...GOOGLE_CLIENT_ENV_KEYS, ...Object.keys(values), ...extraKeys])];
  const saved = new Map(keys.map((key) => [key, process.env[key]]));
  for (const key of keys) delete process.env[key];
  Object.assign(
    process.env,
    { GCE_METADATA_HOST: metadataHost, CLOUDSDK_CONFIG: '/nonexistent/gcloud' },
    values,
  );
  return () => {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}
