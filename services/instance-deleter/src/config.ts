import { z } from 'zod';
import { commonConfigFrom, commonEnvShape, compileAnchoredRegex, envInteger, parseEnv } from '#shared';
import type { CommonConfig, Env } from '#shared';
import { parseComputeEndpoint } from '#shared';
import type { ComputeClientEndpoint } from '#shared';

export interface InstanceDeleterConfig extends CommonConfig {
  /** Matched against the whole MIG name, case-sensitively (Compute Engine names are lower case). */
  allowedMigPattern: RegExp;
  /** How long a request may take, every Compute call included, before the caller hears 504. */
  requestTimeoutMs: number;
  /** Another Compute Engine endpoint (tests, the sandbox); Google's when absent. */
  computeEndpoint?: ComputeClientEndpoint;
}

const envSchema = z.object({
  ...commonEnvShape,
  ALLOWED_MIG_PATTERN: z
    .string({ error: 'is required: a regular expression that whole MIG names must match' })
    .transform((source, ctx) => {
      try {
        return compileAnchoredRegex(source);
      } catch (error) {
        ctx.issues.push({ code: 'custom', message: (error as Error).message, input: source });
        return z.NEVER;
      }
    }),
  REQUEST_TIMEOUT_SECONDS: envInteger(1, 600, 'must be a whole number of seconds from 1 to 600').default(30),
  // Its wait for a stable MIG is gone: a value left set would be silently ignored, so it is refused.
  STABILIZE_TIMEOUT_SECONDS: z
    .undefined({
      error:
        'is no longer used: the deleter answers "not now" instead of waiting for a stable MIG; set REQUEST_TIMEOUT_SECONDS for its deadline',
    })
    .optional(),
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
 * Reads and validates the instance deleter's configuration from `env`, reporting every problem in one
 * `ConfigError`. Without a valid `ALLOWED_MIG_PATTERN` the service does not start: it would otherwise
 * delete VMs from any MIG its service account can reach.
 */
export function loadConfig(env: Env = process.env): InstanceDeleterConfig {
  const data = parseEnv(envSchema, env);
  const config: InstanceDeleterConfig = {
    ...commonConfigFrom(data),
    allowedMigPattern: data.ALLOWED_MIG_PATTERN,
    requestTimeoutMs: data.REQUEST_TIMEOUT_SECONDS * 1000,
  };
  if (data.COMPUTE_API_ENDPOINT !== undefined) config.computeEndpoint = data.COMPUTE_API_ENDPOINT;
  return config;
}
