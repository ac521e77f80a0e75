import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import {
  ConfigError,
  commonConfigFrom,
  commonEnvShape,
  describeIssues,
  envInteger,
  parseList,
} from '#shared';
import type { CommonConfig, Env, ValuePattern } from '#shared';
import { parseComputeEndpoint } from '#shared';
import type { ComputeClientEndpoint } from '#shared';
import { OPEN_POLICY, parsePolicy } from './policy.js';
import type { Policy } from './policy.js';
import { compileScopePattern } from './scope-pattern.js';

/** How the proxy authenticates to GitHub. */
export type GitHubCredentials =
  | { kind: 'pat'; token: string }
  | { kind: 'app'; appId: string; privateKey: string; installationId?: number };

export interface TokenProxyConfig extends CommonConfig {
  githubApiUrl: string;
  credentials: GitHubCredentials;
  allowedScopes: ValuePattern[];
  deniedScopes: ValuePattern[];
  policy: Policy;
  /** Whether a policy was configured (false means `POLICY=open`: {@link OPEN_POLICY}). */
  policyConfigured: boolean;
  /** Settings that are probably not what was meant; logged at every start. */
  warnings: string[];
  /** A cached token is handed out while at least this much of its life is left; 0 turns reuse off. */
  tokenReuseMinRemainingSeconds: number;
  /** How long a caller waits for GitHub, retries included, before a 504. */
  githubDeadlineMs: number;
  /** Minimum spacing of mutating GitHub requests (secondary rate limits). */
  githubWriteIntervalMs: number;
  /** Mutating GitHub requests waiting at once, all callers together; beyond it, 429. */
  mutationQueueLimit: number;
  /** Mutating GitHub requests one caller (one instance) may have waiting; beyond it, 429. */
  mutationQueueLimitPerCaller: number;
  /** JIT configs one instance id may get in any hour; beyond it, 429. */
  jitConfigsPerInstancePerHour: number;
  /** Whether the calling VM must still exist in Compute Engine (instances.get) to get a JIT config. */
  verifyInstanceExists: boolean;
  /** Another Compute Engine endpoint (tests, the sandbox); Google's when absent. */
  computeEndpoint?: ComputeClientEndpoint;
}

const envSchema = z.object({
  ...commonEnvShape,
  GITHUB_API_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default('https://api.github.com'),
  GITHUB_TOKEN: z.string().optional(),
  GITHUB_APP_ID: z
    .string()
    .regex(/^(\d+|Iv[0-9A-Za-z.]+)$/, 'must be a numeric App id or a client id')
    .optional(),
  GITHUB_APP_PRIVATE_KEY: z.string().optional(),
  GITHUB_INSTALLATION_ID: envInteger(1, Number.MAX_SAFE_INTEGER).optional(),
  GITHUB_APP_INSTALLATION_ID: envInteger(1, Number.MAX_SAFE_INTEGER).optional(),
  ALLOWED_SCOPES: z.string().optional(),
  DENIED_SCOPES: z.string().optional(),
  POLICY: z.string().optional(),
  POLICY_FILE: z.string().optional(),
  TOKEN_REUSE_MIN_REMAINING_SECONDS: envInteger(0, 3300).default(900),
  GITHUB_DEADLINE_SECONDS: envInteger(1, 300).default(30),
  GITHUB_WRITE_INTERVAL_MS: envInteger(0, 10000).default(350),
  MUTATION_QUEUE_LIMIT: envInteger(1, 100_000).default(80),
  MUTATION_QUEUE_LIMIT_PER_CALLER: envInteger(1, 1000).default(4),
  JIT_CONFIGS_PER_INSTANCE_PER_HOUR: envInteger(1, 1000).default(2),
  VERIFY_INSTANCE_EXISTS: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((value) => value === 'true'),
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

export interface LoadConfigOptions {
  /** Reads POLICY_FILE; injectable for tests. */
  readFile?: (path: string) => string;
}

/**
 * Splits a scope list (`;`- or `,`-separated, see `parseList`) and compiles each literal or `match:` entry,
 * reporting every entry that can never match what it seems to mean.
 */
function scopeList(name: string, value: string | undefined, problems: string[]): ValuePattern[] {
  return parseList(value).flatMap((entry) => {
    try {
      return [compileScopePattern(entry)];
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message}`);
      return [];
    }
  });
}

/** The value of `POLICY` that runs the proxy without trust levels, said explicitly. */
export const OPEN_POLICY_SETTING = 'open';

/** Environment variables often carry PEM keys with literal `\n`; turn them back into newlines. */
function normalizePem(value: string): string {
  return value.includes('\\n') ? value.replace(/\\n/g, '\n') : value;
}

/**
 * Reads and validates the token proxy's configuration from `env`, collecting every problem into one
 * {@link ConfigError}. Secret values never appear in its messages.
 */
export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): TokenProxyConfig {
  const present: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') present[key] = value;
  }
  const parsed = envSchema.safeParse(present);
  const problems = parsed.success ? [] : describeIssues(parsed.error.issues);

  const allowedScopes = scopeList('ALLOWED_SCOPES', present.ALLOWED_SCOPES, problems);
  const deniedScopes = scopeList('DENIED_SCOPES', present.DENIED_SCOPES, problems);
  if (present.ALLOWED_SCOPES !== undefined && allowedScopes.length === 0 && problems.length === 0) {
    problems.push('ALLOWED_SCOPES: lists no scope');
  }
  const warnings: string[] = [];
  if (present.ALLOWED_SCOPES === undefined) {
    warnings.push(
      "ALLOWED_SCOPES is empty: every request will be refused with 403 until it lists the scopes this proxy serves, such as ALLOWED_SCOPES='my-org;match:my-org/.*'",
    );
  }

  let credentials: GitHubCredentials | undefined;
  const { GITHUB_TOKEN: pat, GITHUB_APP_ID: appId, GITHUB_APP_PRIVATE_KEY: key } = present;
  if (pat !== undefined && (appId !== undefined || key !== undefined)) {
    problems.push(
      'GITHUB_TOKEN: set either GITHUB_TOKEN or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY, not both',
    );
  } else if (pat !== undefined) {
    credentials = { kind: 'pat', token: pat.trim() };
  } else if (appId !== undefined || key !== undefined) {
    if (appId === undefined) problems.push('GITHUB_APP_ID: is required with GITHUB_APP_PRIVATE_KEY');
    if (key === undefined) problems.push('GITHUB_APP_PRIVATE_KEY: is required with GITHUB_APP_ID');
    if (appId !== undefined && key !== undefined) {
      const privateKey = normalizePem(key);
      try {
        const parsedKey = crypto.createPrivateKey(privateKey);
        if (parsedKey.asymmetricKeyType !== 'rsa') throw new Error('not RSA');
        credentials = { kind: 'app', appId, privateKey };
      } catch {
        problems.push('GITHUB_APP_PRIVATE_KEY: is not an RSA private key in PEM form (PKCS#1 or PKCS#8)');
      }
    }
  } else {
    problems.push('GITHUB_TOKEN: set GITHUB_TOKEN (a PAT) or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY');
  }

  let policy: Policy = OPEN_POLICY;
  const openPolicy = present.POLICY?.trim().toLowerCase() === OPEN_POLICY_SETTING;
  const policyConfigured = (present.POLICY !== undefined && !openPolicy) || present.POLICY_FILE !== undefined;
  if (present.POLICY !== undefined && present.POLICY_FILE !== undefined) {
    problems.push('POLICY: set POLICY or POLICY_FILE, not both');
  } else if (openPolicy) {
    warnings.push(
      'POLICY=open: there are no trust levels. Every caller with a valid identity token for this service may get registration tokens for every allowed scope and JIT runners in any group with any labels; set POLICY or POLICY_FILE to a caller policy to separate them',
    );
  } else if (!policyConfigured) {
    problems.push(
      `POLICY: is required: set POLICY (inline JSON) or POLICY_FILE to the caller policy that binds callers to scopes, groups and labels (README, "The caller policy"), or POLICY=${OPEN_POLICY_SETTING} to let every verified caller use every allowed scope, group and label (the upstream behaviour, with no trust levels)`,
    );
  } else {
    const source = present.POLICY !== undefined ? 'POLICY' : 'POLICY_FILE';
    try {
      const text =
        present.POLICY ??
        (options.readFile ?? ((path) => fs.readFileSync(path, 'utf8')))(present.POLICY_FILE!);
      policy = parsePolicy(text);
    } catch (error) {
      const message =
        (error as Error).name === 'PolicyError'
          ? (error as Error).message
          : `cannot read ${JSON.stringify(present.POLICY_FILE)}`;
      problems.push(`${source}: ${message}`);
    }
  }

  if (!parsed.success || problems.length > 0 || !credentials) throw new ConfigError(problems);
  const data = parsed.data;
  const installationId = data.GITHUB_INSTALLATION_ID ?? data.GITHUB_APP_INSTALLATION_ID;
  if (credentials.kind === 'app' && installationId !== undefined) credentials.installationId = installationId;
  if (credentials.kind === 'app') {
    for (const { source } of allowedScopes.filter((p) => /^enterprise:/i.test(p.source))) {
      warnings.push(
        `ALLOWED_SCOPES: ${source} is an enterprise, which a GitHub App cannot manage: requests for it are refused with 400 (a PAT in GITHUB_TOKEN can serve it)`,
      );
    }
  }
  return {
    ...commonConfigFrom(data),
    githubApiUrl: data.GITHUB_API_URL.replace(/\/+$/, ''),
    credentials,
    allowedScopes,
    deniedScopes,
    policy,
    policyConfigured,
    warnings,
    tokenReuseMinRemainingSeconds: data.TOKEN_REUSE_MIN_REMAINING_SECONDS,
    githubDeadlineMs: data.GITHUB_DEADLINE_SECONDS * 1000,
    githubWriteIntervalMs: data.GITHUB_WRITE_INTERVAL_MS,
    mutationQueueLimit: data.MUTATION_QUEUE_LIMIT,
    mutationQueueLimitPerCaller: data.MUTATION_QUEUE_LIMIT_PER_CALLER,
    jitConfigsPerInstancePerHour: data.JIT_CONFIGS_PER_INSTANCE_PER_HOUR,
    verifyInstanceExists: data.VERIFY_INSTANCE_EXISTS,
    ...(data.COMPUTE_API_ENDPOINT === undefined ? {} : { computeEndpoint: data.COMPUTE_API_ENDPOINT }),
  };
}
