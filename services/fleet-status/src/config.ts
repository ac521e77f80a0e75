import { z } from 'zod';
import { commonEnvShape, envInteger, IapViewersError, parseEnv, parseIapViewers } from '#shared';
import type { CommonConfig, Env, IapViewers } from '#shared';
import { parseComputeEndpoint } from '#shared';
import type { ComputeClientEndpoint } from '#shared';

/** IAP's public keys, the default of `IAP_PUBLIC_KEYS_URL` (https://cloud.google.com/iap/docs/signed-headers-howto). */
const IAP_PUBLIC_KEYS_URL = 'https://www.gstatic.com/iap/verify/public_key';

export interface FleetStatusConfig extends CommonConfig {
  /**
   * The audience of IAP's signed header for this service (`IAP_AUDIENCE`). `audiences` (of
   * {@link CommonConfig}) holds the same one value, and `certsUrl` IAP's key URL: the page accepts no other
   * identity than IAP's.
   */
  iapAudience: string;
  iapKeysUrl: string;
  /** Who may see the page (`STATUS_VIEWERS`): emails, and Workspace domains matched on `hd`. */
  viewers: IapViewers;
  /** The autoscaler's base URL; the page reads `GET {autoscalerUrl}/fleet`. */
  autoscalerUrl: string;
  /** The audience of this service's identity token for the autoscaler (its `AUTH_AUDIENCE`). */
  autoscalerAudience: string;
  /** Where the actions/runner releases are read, without a token. */
  githubApiUrl: string;
  /** How long the list of releases is kept, in ms. */
  releasesCacheMs: number;
  /** How long one status snapshot serves every viewer, in ms. */
  snapshotTtlMs: number;
  /** Another Compute Engine endpoint (tests, the sandbox); Google's when absent. */
  computeEndpoint?: ComputeClientEndpoint;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
const httpUrl = (what: string) =>
  z
    .url({ protocol: /^https?$/, error: `must be an http(s) URL: ${what}` })
    .transform((value) => value.replace(/\/+$/, ''));

const envSchema = z.object({
  PORT: envInteger(0, 65535, 'must be a port number').default(8080),
  // The other services' HOST (the sandbox listens on loopback only).
  HOST: commonEnvShape.HOST,
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  GOOGLE_CLOUD_PROJECT: z.string().min(1).optional(),
  IAP_AUDIENCE: z
    .string({
      error:
        'is required: the audience of IAP signed headers for this service, /projects/PROJECT_NUMBER/locations/REGION/services/SERVICE',
    })
    .regex(
      /^\/projects\/\d+\/(?:locations\/[a-z0-9-]+\/services\/[a-z0-9-]+|global\/backendServices\/\d+|apps\/[a-z0-9-]+)$/,
      'must be /projects/PROJECT_NUMBER/locations/REGION/services/SERVICE (IAP on Cloud Run), /projects/PROJECT_NUMBER/global/backendServices/ID or /projects/PROJECT_NUMBER/apps/PROJECT_ID',
    ),
  IAP_PUBLIC_KEYS_URL: httpUrl("IAP's public key map").default(IAP_PUBLIC_KEYS_URL),
  STATUS_VIEWERS: z.string({
    error: 'is required: the emails and domain:NAME entries of who may see the fleet status',
  }),
  AUTOSCALER_URL: httpUrl('the autoscaler service, whose GET /fleet the page shows'),
  AUTOSCALER_AUDIENCE: httpUrl("the autoscaler's AUTH_AUDIENCE").optional(),
  GITHUB_API_URL: httpUrl('GitHub’s REST API').default('https://api.github.com'),
  RUNNER_RELEASES_CACHE_MINUTES: envInteger(1, 24 * 60).default(6 * 60),
  SNAPSHOT_TTL_SECONDS: envInteger(0, 300).default(15),
  COMPUTE_API_ENDPOINT: z
    .string()
    .transform((value, ctx) => {
      try {
        return parseComputeEndpoint(value);
      } catch (error) {
        ctx.issues.push({ code: 'custom', message: (error as Error).message, input: value });
        return z.NEVER;
      }
    })
    .optional(),
});

/**
 * Reads and validates the fleet status service's configuration from `env`, reporting every problem in one
 * `ConfigError`. Without a viewer, an IAP audience or the autoscaler's URL it does not start: it could only
 * refuse everyone, or show nothing.
 */
export function loadConfig(env: Env = process.env): FleetStatusConfig {
  const data = parseEnv(
    envSchema.superRefine((value, ctx) => {
      try {
        const viewers = parseIapViewers(value.STATUS_VIEWERS);
        if (viewers.emails.size + viewers.domains.size === 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['STATUS_VIEWERS'],
            message: 'must list at least one viewer',
          });
        }
      } catch (error) {
        if (!(error instanceof IapViewersError)) throw error;
        for (const problem of error.problems)
          ctx.addIssue({ code: 'custom', path: ['STATUS_VIEWERS'], message: problem });
      }
    }),
    env,
  );
  const config: FleetStatusConfig = {
    port: data.PORT,
    logLevel: data.LOG_LEVEL,
    audiences: [data.IAP_AUDIENCE],
    certsUrl: data.IAP_PUBLIC_KEYS_URL,
    iapAudience: data.IAP_AUDIENCE,
    iapKeysUrl: data.IAP_PUBLIC_KEYS_URL,
    viewers: parseIapViewers(data.STATUS_VIEWERS),
    autoscalerUrl: data.AUTOSCALER_URL,
    autoscalerAudience: data.AUTOSCALER_AUDIENCE ?? data.AUTOSCALER_URL,
    githubApiUrl: data.GITHUB_API_URL,
    releasesCacheMs: data.RUNNER_RELEASES_CACHE_MINUTES * 60_000,
    snapshotTtlMs: data.SNAPSHOT_TTL_SECONDS * 1000,
  };
  if (data.HOST !== undefined) config.host = data.HOST;
  if (data.GOOGLE_CLOUD_PROJECT !== undefined) config.projectId = data.GOOGLE_CLOUD_PROJECT;
  if (data.COMPUTE_API_ENDPOINT !== undefined) config.computeEndpoint = data.COMPUTE_API_ENDPOINT;
  return config;
}
