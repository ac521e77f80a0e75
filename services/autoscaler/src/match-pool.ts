import { matchesAny } from '#shared';
import type { Pool } from './pool-config.js';

/** Which pool, if any, gives a queued job its VM, and if none, why not (for the log line). */
export type PoolMatch =
  | { kind: 'matched'; pool: Pool }
  /** `runs-on` named only a runner group: no label to route on. */
  | { kind: 'no-labels' }
  /** No pool has every label of the job. */
  | { kind: 'no-pool' }
  /** Pools have the labels, but none serves the job's repository. */
  | { kind: 'out-of-scope'; pools: string[] };

/**
 * True when every label of the job is among the pool's, compared case-insensitively: GitHub's own rule for
 * sending a job to a runner. https://docs.github.com/actions/hosting-your-own-runners/managing-self-hosted-runners/using-labels-with-self-hosted-runners
 */
export function labelsCover(pool: Pool, jobLabels: readonly string[]): boolean {
  return jobLabels.length > 0 && jobLabels.every((label) => pool.labelSet.has(label.toLowerCase()));
}

/** True when the pool serves `owner/repo`: its scopes name the owner (an org) or the repository itself. */
export function servesRepository(pool: Pool, fullName: string): boolean {
  const owner = fullName.split('/')[0] ?? '';
  return matchesAny(pool.scopes, owner) || matchesAny(pool.scopes, fullName);
}

/** The first pool (in configuration order) whose labels cover the job and which serves its repository. */
export function matchPool(
  pools: readonly Pool[],
  job: { labels: readonly string[]; repository: string },
): PoolMatch {
  if (job.labels.length === 0) return { kind: 'no-labels' };
  const covering = pools.filter((pool) => labelsCover(pool, job.labels));
  if (covering.length === 0) return { kind: 'no-pool' };
  const pool = covering.find((p) => servesRepository(p, job.repository));
  return pool ? { kind: 'matched', pool } : { kind: 'out-of-scope', pools: covering.map((p) => p.name) };
}
