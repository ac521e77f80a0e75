import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { ConfigError, commonConfigFrom, commonEnvShape, describeIssues } from '#shared';
import type { CommonConfig, Env } from '#shared';
// The same COMPUTE_API_ENDPOINT rules as the instance deleter's, from its one copy.
import { parseComputeEndpoint } from '#shared';
import type { ComputeClientEndpoint } from '#shared';
import { parsePoolConfig, PoolConfigError } from './pool-config.js';
import type { Pool } from './pool-config.js';
import { isTimeZone } from './warm-pool.js';

/** The GitHub App whose webhook this is, and whose key lists and redelivers its deliveries. */
export interface GitHubAppCredentials {
  appId: string;
  privateKey: string;
  /** Pins the installation: deliveries from any other installation create nothing. */
  installationId?: number;
}

export interface AutoscalerConfig extends CommonConfig {
  githubApiUrl: string;
  app: GitHubAppCredentials;
  /** The current webhook secret first, then the previous one during a rotation. */
  webhookSecrets: string[];
  pools: Pool[];
  /** Another Compute Engine endpoint (tests, the sandbox); Google's when absent. */
  computeEndpoint?: ComputeClientEndpoint;
  /** Lower-cased service account emails that may call `POST /reconcile`. */
  reconcileCallers: string[];
  /** Lower-cased emails that may read `GET /fleet`; none when unset. */
  fleetViewers: string[];
  /** A member that cannot be created for this long is deleted and requested in the pool's next MIG. */
  stuckCreatingMs: number;
  /** Queued jobs for one pool arriving within this window share one createInstances call. */
  batchWindowMs: number;
  /** At most this many failed deliveries are redelivered per reconciliation. */
  maxRedeliveriesPerRun: number;
  /**
   * Minimum spacing of this service's mutating GitHub requests (redeliveries, runner deletions), in ms
   * (GITHUB_WRITE_INTERVAL_MS): its share of the installation's secondary-limit budget, which the deploy
   * scripts split between the services (deploy/lib.sh, github_write_budget).
   */
  githubWriteIntervalMs: number;
  /** The reaper and warm pools: what `POST /reconcile` deletes and keeps ready. */
  reaper: ReaperSettings;
  /**
   * GitHub's REST API where the actions/runner releases are read (`RUNNER_RELEASES_API_URL`, default
   * `https://api.github.com`), without a token: `GET {url}/repos/actions/runner/releases`. Apart from
   * `GITHUB_API_URL`, which may be a GHES host that does not carry github.com's releases.
   */
  runnerReleasesApiUrl: string;
  /** How long the list of releases is kept, in ms (`RUNNER_RELEASES_CACHE_MINUTES`, default 6 hours). */
  runnerReleasesCacheMs: number;
}

/** How the reaper acts (see `plan-reaping.ts`). */
export interface ReaperSettings {
  /** `enforce` deletes; `dry-run` decides and logs only; `off` neither (warm pools still filled). */
  mode: 'enforce' | 'dry-run' | 'off';
  /** At most this share (percent) of a pool's VMs is deleted in one run; at least one VM always may be. */
  maxDeletePercent: number;
  /** The time zone of pools that name none (`WARM_POOL_TIME_ZONE`). */
  defaultTimeZone: string;
}

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number from ${min} to ${max}`);

const EMAIL = /^[^\s@,]+@[^\s@,]+$/;
const emailList = (required: boolean) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim().toLowerCase())
        .filter((entry) => entry !== ''),
    )
    .refine((list) => !required || list.length > 0, 'must list at least one service account email')
    .refine((list) => list.every((entry) => EMAIL.test(entry)), 'each entry must be an email address');

const envSchema = z.object({
  ...commonEnvShape,
  GITHUB_API_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default('https://api.github.com'),
  GITHUB_APP_ID: z
    .string({ error: 'is required: the GitHub App whose webhook this service receives' })
    .regex(/^(\d+|Iv[0-9A-Za-z.]+)$/, 'must be a numeric App id or a client id'),
  GITHUB_APP_PRIVATE_KEY: z.string({ error: "is required: the GitHub App's private key (PEM)" }),
  GITHUB_INSTALLATION_ID: integer(1, Number.MAX_SAFE_INTEGER).optional(),
  GITHUB_WEBHOOK_SECRET: z.string({ error: "is required: the GitHub App's webhook secret" }),
  GITHUB_WEBHOOK_SECRET_PREVIOUS: z.string().optional(),
  POOLS: z.string().optional(),
  POOLS_FILE: z.string().optional(),
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
  RECONCILE_CALLERS: z
    .string({ error: 'is required: the Cloud Scheduler service account that calls POST /reconcile' })
    .pipe(emailList(true)),
  FLEET_VIEWERS: emailList(false).optional(),
  STUCK_CREATING_SECONDS: integer(60, 86_400).default(600),
  BATCH_WINDOW_MS: integer(0, 5000).default(1000),
  MAX_REDELIVERIES_PER_RUN: integer(0, 1000).default(50),
  GITHUB_WRITE_INTERVAL_MS: integer(0, 60_000).default(350),
  REAPER_MODE: z
    .enum(['enforce', 'dry-run', 'off'], { error: 'must be enforce, dry-run or off' })
    .default('enforce'),
  REAPER_MAX_DELETE_PERCENT: integer(1, 100).default(25),
  RUNNER_RELEASES_API_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default('https://api.github.com'),
  RUNNER_RELEASES_CACHE_MINUTES: integer(1, 24 * 60).default(6 * 60),
  WARM_POOL_TIME_ZONE: z
    .string()
    .refine(isTimeZone, 'must be an IANA time zone such as UTC or Europe/Berlin')
    .default('UTC'),
});

export interface LoadConfigOptions {
  /** Reads POOLS_FILE; injectable for tests. */
  readFile?: (path: string) => string;
}

/** Environment variables often carry PEM keys with literal `\n`; turn them back into newlines. */
function normalizePem(value: string): string {
  return value.includes('\\n') ? value.replace(/\\n/g, '\n') : value;
}

/**
 * Reads and validates the autoscaler's configuration from `env`, collecting every problem into one
 * {@link ConfigError}. Secrets (the App key, webhook secrets) never appear in its messages.
 */
export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): AutoscalerConfig {
  const present: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') present[key] = value;
  }
  const parsed = envSchema.safeParse(present);
  const problems = parsed.success ? [] : describeIssues(parsed.error.issues);

  let privateKey: string | undefined;
  if (present.GITHUB_APP_PRIVATE_KEY !== undefined) {
    privateKey = normalizePem(present.GITHUB_APP_PRIVATE_KEY);
    try {
      if (crypto.createPrivateKey(privateKey).asymmetricKeyType !== 'rsa') throw new Error('not RSA');
    } catch {
      problems.push('GITHUB_APP_PRIVATE_KEY: is not an RSA private key in PEM form (PKCS#1 or PKCS#8)');
    }
  }
  for (const name of ['GITHUB_WEBHOOK_SECRET', 'GITHUB_WEBHOOK_SECRET_PREVIOUS'] as const) {
    const secret = present[name];
    // GitHub accepts any secret; a short one can be guessed offline from one signed delivery.
    if (secret !== undefined && secret.length < 16) problems.push(`${name}: must be at least 16 characters`);
  }

  let pools: Pool[] = [];
  if (present.POOLS !== undefined && present.POOLS_FILE !== undefined) {
    problems.push('POOLS: set POOLS or POOLS_FILE, not both');
  } else if (present.POOLS === undefined && present.POOLS_FILE === undefined) {
    problems.push('POOLS: is required (or POOLS_FILE): the pools of MIGs to scale');
  } else {
    const source = present.POOLS !== undefined ? 'POOLS' : 'POOLS_FILE';
    let text: string | undefined = present.POOLS;
    if (text === undefined) {
      try {
        text = (options.readFile ?? ((path) => fs.readFileSync(path, 'utf8')))(present.POOLS_FILE!);
      } catch {
        problems.push(`POOLS_FILE: cannot read ${JSON.stringify(present.POOLS_FILE)}`);
      }
    }
    if (text !== undefined) {
      try {
        // A bad WARM_POOL_TIME_ZONE is reported once, above, not again for every pool.
        const zone = present.WARM_POOL_TIME_ZONE;
        pools = parsePoolConfig(text, { defaultTimeZone: zone && isTimeZone(zone) ? zone : 'UTC' });
      } catch (error) {
        if (!(error instanceof PoolConfigError)) throw error;
        problems.push(...error.problems.map((problem) => `${source}: ${problem}`));
      }
    }
  }

  if (!parsed.success || problems.length > 0 || privateKey === undefined) throw new ConfigError(problems);
  const data = parsed.data;
  const config: AutoscalerConfig = {
    ...commonConfigFrom(data),
    githubApiUrl: data.GITHUB_API_URL.replace(/\/+$/, ''),
    app: {
      appId: data.GITHUB_APP_ID,
      privateKey,
      ...(data.GITHUB_INSTALLATION_ID === undefined ? {} : { installationId: data.GITHUB_INSTALLATION_ID }),
    },
    webhookSecrets: [
      data.GITHUB_WEBHOOK_SECRET,
      ...(data.GITHUB_WEBHOOK_SECRET_PREVIOUS === undefined ? [] : [data.GITHUB_WEBHOOK_SECRET_PREVIOUS]),
    ],
    pools,
    reconcileCallers: data.RECONCILE_CALLERS,
    fleetViewers: data.FLEET_VIEWERS ?? [],
    stuckCreatingMs: data.STUCK_CREATING_SECONDS * 1000,
    batchWindowMs: data.BATCH_WINDOW_MS,
    maxRedeliveriesPerRun: data.MAX_REDELIVERIES_PER_RUN,
    githubWriteIntervalMs: data.GITHUB_WRITE_INTERVAL_MS,
    reaper: {
      mode: data.REAPER_MODE,
      maxDeletePercent: data.REAPER_MAX_DELETE_PERCENT,
      defaultTimeZone: data.WARM_POOL_TIME_ZONE,
    },
    runnerReleasesApiUrl: data.RUNNER_RELEASES_API_URL.replace(/\/+$/, ''),
    runnerReleasesCacheMs: data.RUNNER_RELEASES_CACHE_MINUTES * 60_000,
  };
  if (data.COMPUTE_API_ENDPOINT !== undefined) config.computeEndpoint = data.COMPUTE_API_ENDPOINT;
  return config;
}
