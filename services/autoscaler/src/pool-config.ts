import { z } from 'zod';
import { compilePattern } from '#shared';
import type { ValuePattern } from '#shared';
import { INSTANCE_NAME, MAX_INSTANCE_NAME_PREFIX_LENGTH } from './instance-name.js';
import { formatMigRef, parseMigRef } from './mig-ref.js';
import type { MigRef } from './mig-ref.js';
import { compileSchedule, isTimeZone } from './warm-pool.js';
import type { WarmSchedule } from './warm-pool.js';

/** Where a pool's runners are registered, which is where their runners are listed. */
export type RunnerScope = { kind: 'org'; org: string } | { kind: 'repo'; owner: string; repo: string };

/**
 * A set of MIGs whose VMs register with one label set, in one runner group of one org or repository. A
 * queued job whose labels are all among `labels` (case-insensitively) and whose repository is in `scopes`
 * gets a VM here.
 */
export interface Pool {
  name: string;
  /** Orgs or `owner/repo` (literals or anchored `match:` patterns) whose jobs the pool serves. */
  scopes: ValuePattern[];
  /** As configured, for messages and the fleet view. */
  labels: string[];
  /** Lower-cased, for matching. */
  labelSet: ReadonlySet<string>;
  /** In order of preference: the next one is used when one cannot create VMs. */
  migs: MigRef[];
  runnerScope: RunnerScope;
  runnerGroup: string;
  /** The most VMs (existing and requested, over all of the pool's MIGs) the pool may have. */
  maxRunners: number;
  instanceNamePrefix: string;
  /** Idle, registered runners kept ready (VMs still booting count), outside any schedule. */
  minIdle: number;
  /** Times when more are kept; the largest `minIdle` of those active wins. */
  minIdleSchedules: WarmSchedule[];
  /** The IANA time zone the schedules are read in. */
  timeZone: string;
  /** A VM without a connected runner this long (and on two runs in a row) is deleted. */
  bootTimeoutMs: number;
  /** An idle runner this long (beyond `minIdle`, nothing queued) is removed, then its VM. */
  idleTimeoutMs: number;
}

/** Options of {@link parsePoolConfig}. */
export interface PoolConfigOptions {
  /** The time zone of pools that name none (`WARM_POOL_TIME_ZONE`); default `UTC`. */
  defaultTimeZone?: string;
}

/** Thrown with every problem of a `POOLS` document; messages never quote secrets (there are none here). */
export class PoolConfigError extends Error {
  override readonly name = 'PoolConfigError';

  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

/** A GitHub login: alphanumerics and single inner hyphens, at most 39 characters. */
const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
/** A repository name: ASCII letters, digits, `.`, `-`, `_`, at most 100 characters, not `.` or `..`. */
const REPO = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}$/;
/** Runner labels as the token proxy accepts them (no commas or spaces: the runner joins them with commas). */
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,99}$/;
const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const GROUP = /^[^\p{Cc}]{1,128}$/u;

/** `ORG` or `OWNER/REPO`; `undefined` for anything else. */
export function parseRunnerScope(value: string): RunnerScope | undefined {
  const parts = value.split('/');
  if (parts.length === 1 && LOGIN.test(parts[0]!)) return { kind: 'org', org: parts[0]! };
  if (parts.length === 2 && LOGIN.test(parts[0]!) && REPO.test(parts[1]!)) {
    return { kind: 'repo', owner: parts[0]!, repo: parts[1]! };
  }
  return undefined;
}

/** `org` or `owner/repo`. */
export function formatRunnerScope(scope: RunnerScope): string {
  return scope.kind === 'org' ? scope.org : `${scope.owner}/${scope.repo}`;
}

const poolSchema = z.strictObject({
  name: z.string().regex(POOL_NAME, 'must be 1-63 letters, digits, ".", "_" or "-"'),
  scopes: z.array(z.string()).min(1, 'must list at least one org or owner/repo'),
  labels: z
    .array(z.string().regex(LABEL, 'each label must be 1-100 letters, digits and . _ : + = / -'))
    .min(1, 'must list at least one label')
    .max(100, 'must list at most 100 labels')
    .refine(
      (labels) => new Set(labels.map((l) => l.toLowerCase())).size === labels.length,
      'must not repeat a label (labels compare case-insensitively)',
    ),
  migs: z.array(z.string()).min(1, 'must list at least one MIG').max(20, 'must list at most 20 MIGs'),
  runnerScope: z.string(),
  runnerGroup: z.string().regex(GROUP, 'must be 1-128 printable characters').default('Default'),
  maxRunners: z.number().int().min(1).max(10_000),
  instanceNamePrefix: z
    .string()
    .regex(INSTANCE_NAME, 'must be lower-case letters, digits and "-", starting with a letter')
    .max(
      MAX_INSTANCE_NAME_PREFIX_LENGTH,
      `must be at most ${MAX_INSTANCE_NAME_PREFIX_LENGTH} characters, to leave room for the job id`,
    ),
  minIdle: z.number().int().min(0).max(10_000).default(0),
  minIdleSchedules: z
    .array(
      z.strictObject({
        cron: z.string(),
        durationMinutes: z
          .number()
          .int()
          .min(1)
          .max(7 * 24 * 60),
        minIdle: z.number().int().min(0).max(10_000),
      }),
    )
    .max(50, 'must list at most 50 schedules')
    .default([]),
  timeZone: z.string().optional(),
  bootTimeoutSeconds: z.number().int().min(60).max(86_400).default(600),
  idleTimeoutSeconds: z.number().int().min(30).max(86_400).default(300),
});

const documentSchema = z.strictObject({
  pools: z.array(z.unknown()).min(1, 'must list at least one pool'),
});

function where(path: readonly PropertyKey[]): string {
  return path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('');
}

/**
 * Parses and checks a `POOLS` document (`{"pools": [...]}`), collecting every problem: unknown fields,
 * invalid scopes, labels, MIG URLs or names, and MIGs or name prefixes that two pools share (a MIG counted in
 * two pools would break both caps).
 */
export function parsePoolConfig(text: string, options: PoolConfigOptions = {}): Pool[] {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new PoolConfigError(['is not valid JSON']);
  }
  const top = documentSchema.safeParse(document);
  if (!top.success) {
    throw new PoolConfigError(
      top.error.issues.map((issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: expected {"pools": [...]}`
          : `${where(issue.path).replace(/^\./, '') || 'the document'}: ${issue.message}`,
      ),
    );
  }

  const problems: string[] = [];
  const pools: Pool[] = [];
  const seen = {
    names: new Map<string, string>(),
    migs: new Map<string, string>(),
    prefixes: new Map<string, string>(),
  };
  top.data.pools.forEach((raw, index) => {
    const label = `pools[${index}]${
      typeof (raw as { name?: unknown } | null)?.name === 'string'
        ? ` (${JSON.stringify((raw as { name: string }).name)})`
        : ''
    }`;
    const parsed = poolSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const message =
          issue.code === 'unrecognized_keys'
            ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
            : issue.message;
        problems.push(`${label}${where(issue.path)}: ${message}`);
      }
      return;
    }
    const p = parsed.data;
    const before = problems.length;
    const scopes = p.scopes.flatMap((entry, i) => {
      if (!entry.startsWith('match:') && !parseRunnerScope(entry)) {
        problems.push(
          `${label}.scopes[${i}]: ${JSON.stringify(entry)} is not an org, owner/repo or match:REGEX`,
        );
        return [];
      }
      try {
        return [compilePattern(entry, { caseInsensitive: true })];
      } catch (error) {
        problems.push(`${label}.scopes[${i}]: ${(error as Error).message}`);
        return [];
      }
    });
    const migs = p.migs.flatMap((url, i) => {
      const mig = parseMigRef(url);
      if (!mig) {
        problems.push(
          `${label}.migs[${i}]: ${JSON.stringify(url)} is not projects/P/(zones/Z|regions/R)/instanceGroupManagers/N`,
        );
        return [];
      }
      const key = formatMigRef(mig);
      const owner = seen.migs.get(key);
      if (owner !== undefined) problems.push(`${label}.migs[${i}]: ${key} is already in ${owner}`);
      seen.migs.set(key, label);
      return [mig];
    });
    const runnerScope = parseRunnerScope(p.runnerScope);
    if (!runnerScope) problems.push(`${label}.runnerScope: must be an org or owner/repo`);
    const timeZone = p.timeZone ?? options.defaultTimeZone ?? 'UTC';
    if (!isTimeZone(timeZone)) {
      problems.push(`${label}.timeZone: ${JSON.stringify(timeZone)} is not an IANA time zone`);
    }
    if (p.minIdle > p.maxRunners)
      problems.push(`${label}.minIdle: must not exceed maxRunners (${p.maxRunners})`);
    const minIdleSchedules = p.minIdleSchedules.flatMap((schedule, i) => {
      if (schedule.minIdle > p.maxRunners) {
        problems.push(
          `${label}.minIdleSchedules[${i}].minIdle: must not exceed maxRunners (${p.maxRunners})`,
        );
      }
      if (!isTimeZone(timeZone)) return [];
      try {
        return [compileSchedule(schedule, timeZone)];
      } catch (error) {
        problems.push(`${label}.minIdleSchedules[${i}].cron: ${(error as Error).message}`);
        return [];
      }
    });
    for (const [kind, key, map] of [
      ['name', p.name.toLowerCase(), seen.names],
      ['instanceNamePrefix', p.instanceNamePrefix, seen.prefixes],
    ] as const) {
      const owner = map.get(key);
      if (owner !== undefined) problems.push(`${label}.${kind}: ${owner} already uses it`);
      map.set(key, label);
    }
    if (problems.length > before || !runnerScope) return;
    pools.push({
      name: p.name,
      scopes,
      labels: p.labels,
      labelSet: new Set(p.labels.map((l) => l.toLowerCase())),
      migs,
      runnerScope,
      runnerGroup: p.runnerGroup,
      maxRunners: p.maxRunners,
      instanceNamePrefix: p.instanceNamePrefix,
      minIdle: p.minIdle,
      minIdleSchedules,
      timeZone,
      bootTimeoutMs: p.bootTimeoutSeconds * 1000,
      idleTimeoutMs: p.idleTimeoutSeconds * 1000,
    });
  });
  if (problems.length > 0) throw new PoolConfigError(problems);
  return pools;
}
