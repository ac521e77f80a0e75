import { compareRunnerVersions, oldestVersion, parseRunnerVersion, versionDeadline } from '#shared';
import type { Logger, RunnerRelease, RunnerReleasesApi, VersionDeadline } from '#shared';
import { METRIC_LOG_MESSAGES } from './log-messages.js';
import type { FleetRow } from './join-fleet.js';
import type { Pool } from './pool-config.js';

/** The actions/runner releases as one reconciliation read them. */
export interface ReleasesRead {
  /** Null when they could not be read and none were cached. */
  releases: readonly RunnerRelease[] | null;
  /** When the list was read (ms); null without one. */
  fetchedAt: number | null;
  /** Why the releases could not be read (now, or at the last attempt, when a cached list is used). */
  error: string | null;
}

/** One pool's runner versions, as the last reconciliation judged them. */
export interface PoolVersionState {
  /** Runners per version they reported when they connected; `null` counts runners not connected yet. */
  reported: Record<string, number>;
  /** The deadline of the oldest reported version: what the warnings and errors are about. */
  oldest: VersionDeadline;
  /** The deadline of the newest reported version: past it, every VM of the pool is refused jobs. */
  newest: VersionDeadline;
  /** Why the pool creates no VMs, when it does not. */
  scaleUpBlockedReason: string | null;
  /** When it was judged (ms). */
  checkedAt: number;
}

/** Reads the releases once a run, judges each pool's reported versions, and says which pools may not grow. */
export interface RunnerVersionCheck {
  /** Reads the releases (cached by the releases API for hours); never throws. */
  readReleases(): Promise<ReleasesRead>;
  /**
   * Judges one pool from its join: logs at the thresholds, and stops or resumes its scale-up. `rows`
   * undefined (the runners could not be listed) keeps the pool's last judgement.
   */
  judge(pool: Pool, rows: readonly FleetRow[] | undefined, read: ReleasesRead): PoolVersionState | undefined;
  /** Why `pool` may create no VMs now, or undefined: what the webhook and the reconciler ask. */
  scaleUpBlockedReason(pool: string): string | undefined;
  /** The last judgement of `pool`, if any. */
  state(pool: string): PoolVersionState | undefined;
  /** The releases as last read, for the fleet view. */
  lastRead(): ReleasesRead | undefined;
  /**
   * True for a version past GitHub's window by the releases last read: a runner reporting it gets no job, so
   * the reconciler does not count its VM as capacity for queued jobs. False when unknown.
   */
  isPastDeadline(version: string | null): boolean;
}

export interface RunnerVersionCheckOptions {
  /** The actions/runner releases (cached); undefined: versions are not judged and nothing is blocked. */
  releases: RunnerReleasesApi | undefined;
  logger: Logger;
  now: () => number;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * GitHub's rule for runners with updates disabled (as ours are: `--disableupdate`): "you must update your
 * runner within 30 days of a new release being published", else GitHub stops queueing jobs to it.
 * https://docs.github.com/actions/hosting-your-own-runners/managing-self-hosted-runners/autoscaling-with-self-hosted-runners#controlling-runner-software-updates-on-self-hosted-runners
 *
 * Each reconciliation, per pool, this judges the versions its runners reported when they connected (the
 * runner object's `version`; a runner that has not connected has none):
 *
 * - the **oldest** against the window, logged once a run while it is due: `warn` from 14 days after the
 *   first newer release, `error` from 25 (and past 30), message `runner version out of date` with the
 *   pool, level, version and days left. An alert matches that message at severity ERROR; a warning is for
 *   the logs. One line per pool per run, so an alert sees it as long as it lasts, also after a restart.
 * - the **newest** past 30 days: every VM of the pool runs a release GitHub sends no jobs to, and so would
 *   every VM its templates create (the runners report what the templates installed), so the pool stops
 *   scaling up (`scale-up stopped`, logged at ERROR when it starts, `scale-up resumed` at INFO when it
 *   ends). It resumes when a runner reports a version within the window (a template rolled out with
 *   `--proactive`), or when no runner reports one any more (its VMs were reaped or deleted): a fleet is
 *   never stopped for a version nobody reports.
 *
 * The release list does not say which updates GitHub deems critical (the REST API's release object has no
 * such field: https://docs.github.com/rest/releases/releases#get-a-release), so only the 30 days are enforced.
 * Releases that cannot be read stop nothing (fail open): the pool keeps its last judgement only while a
 * cached list exists; without one, nothing is blocked and the fleet view says why.
 */
export function createRunnerVersionCheck(options: RunnerVersionCheckOptions): RunnerVersionCheck {
  const { logger, now } = options;
  const states = new Map<string, PoolVersionState>();
  let last: ReleasesRead | undefined;

  return {
    async readReleases() {
      if (!options.releases) {
        last = { releases: null, fetchedAt: null, error: 'not configured' };
        return last;
      }
      try {
        const list = await options.releases.releases();
        last = { releases: list.releases, fetchedAt: list.fetchedAt, error: list.staleBecause ?? null };
      } catch (error) {
        last = { releases: null, fetchedAt: null, error: (error as Error).message };
        logger.warn(
          { error: last.error },
          'actions/runner releases unreadable: runner versions not judged, no pool stopped for them',
        );
      }
      return last;
    },

    judge(pool, rows, read) {
      if (!options.releases) return undefined;
      if (rows === undefined) return states.get(pool.name);
      const reported: Record<string, number> = {};
      const versions: string[] = [];
      for (const row of rows) {
        if (!row.runner || row.state === 'deleting') continue;
        const version = row.runner.version;
        reported[version ?? 'null'] = (reported[version ?? 'null'] ?? 0) + 1;
        if (version !== null && parseRunnerVersion(version)) versions.push(version);
      }
      const at = now();
      const oldest = versionDeadline(oldestVersion(versions), read.releases, at);
      const newestVersion = versions.reduce<string | null>(
        (best, v) => (best === null || compareRunnerVersions(v, best) > 0 ? v : best),
        null,
      );
      const newest = versionDeadline(newestVersion, read.releases, at);
      const previous = states.get(pool.name);
      const scaleUpBlockedReason =
        newest.level === 'expired'
          ? `every runner of pool ${pool.name} that reports a version runs ${newest.version} or older, and ` +
            `${newest.firstNewer!.version} came out ${newest.atLeast ? 'at least ' : ''}${plural(newest.daysSince!, 'day')} ago: ` +
            `past GitHub's 30-day window, GitHub sends these runners no jobs, and new VMs from the same templates ` +
            `would get none either. Roll out a newer runner (npm run fleet -- templates create, then rollout ` +
            `canary --proactive); scale-up resumes once a runner reports a version within the window`
          : null;
      const state: PoolVersionState = {
        reported,
        oldest,
        newest,
        scaleUpBlockedReason,
        checkedAt: at,
      };
      states.set(pool.name, state);

      const line = {
        pool: pool.name,
        level: oldest.level,
        version: oldest.version,
        firstNewer: oldest.firstNewer?.version ?? null,
        daysSince: oldest.daysSince,
        daysLeft: oldest.daysLeft,
        reported,
      };
      if (oldest.level === 'warn') logger.warn(line, METRIC_LOG_MESSAGES.runnerVersionOutOfDate);
      if (oldest.level === 'error' || oldest.level === 'expired')
        logger.error(line, METRIC_LOG_MESSAGES.runnerVersionOutOfDate);
      if (scaleUpBlockedReason !== null && !previous?.scaleUpBlockedReason) {
        logger.error({ pool: pool.name, reason: scaleUpBlockedReason }, 'scale-up stopped');
      } else if (scaleUpBlockedReason === null && previous?.scaleUpBlockedReason) {
        logger.info(
          { pool: pool.name, version: newest.version, level: newest.level },
          'scale-up resumed: a runner reports a version GitHub still sends jobs to, or none reports one',
        );
      }
      return state;
    },

    scaleUpBlockedReason: (pool) => states.get(pool)?.scaleUpBlockedReason ?? undefined,
    state: (pool) => states.get(pool),
    lastRead: () => last,
    isPastDeadline: (version) =>
      version !== null &&
      last?.releases != null &&
      versionDeadline(version, last.releases, now()).level === 'expired',
  };
}
