/** One full release of actions/runner. */
export interface RunnerRelease {
  /** `2.331.0`. */
  version: string;
  /** ISO 8601. */
  publishedAt: string;
}

/**
 * GitHub's rule for runners with automatic updates disabled: "you must update your runner within 30 days of a
 * new release being published", else GitHub stops queueing jobs to it (and at once for a critical update).
 * https://docs.github.com/actions/hosting-your-own-runners/managing-self-hosted-runners/autoscaling-with-self-hosted-runners#controlling-runner-software-updates-on-self-hosted-runners
 */
export const UPDATE_WINDOW_DAYS = 30;
/** Days after the first newer release when the page and the logs warn. */
export const WARN_AFTER_DAYS = 14;
/** Days after the first newer release when they call it an error. */
export const ERROR_AFTER_DAYS = 25;

/**
 * - `current`: no newer release;
 * - `ok`, `warn`, `error`: a newer release is out, under 14, 14 to 25, 25 to 30 days ago;
 * - `expired`: over 30 days: GitHub sends these runners no jobs;
 * - `unknown`: the version, or the releases, are not known.
 */
export type DeadlineLevel = 'current' | 'ok' | 'warn' | 'error' | 'expired' | 'unknown';

export interface VersionDeadline {
  /** The version judged (a pool's oldest); null when not known. */
  version: string | null;
  level: DeadlineLevel;
  latest: RunnerRelease | null;
  /** The first release newer than `version`: the 30 days count from it. */
  firstNewer: RunnerRelease | null;
  /** Whole days since `firstNewer` was published. */
  daysSince: number | null;
  /** Whole days left of the 30 (0 once past). */
  daysLeft: number | null;
  /**
   * True when `version` is older than every release listed: the real first newer release is older still, so
   * `daysSince` is a lower bound.
   */
  atLeast: boolean;
  /** One sentence for the page and the logs. */
  message: string;
}

const VERSION = /^(\d+)\.(\d+)\.(\d+)$/;
const DAY_MS = 86_400_000;

/** `[major, minor, patch]` of `2.331.0` (a leading `v` allowed), or undefined. */
export function parseRunnerVersion(text: string): [number, number, number] | undefined {
  const match = VERSION.exec(text.trim().replace(/^v/, ''));
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

/** Negative when `a` is older than `b`; both must parse. */
export function compareRunnerVersions(a: string, b: string): number {
  const [x, y] = [parseRunnerVersion(a)!, parseRunnerVersion(b)!];
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

/** The oldest of `versions` that parse (what a pool must update), or null. */
export function oldestVersion(versions: Iterable<string | null>): string | null {
  let oldest: string | null = null;
  for (const version of versions) {
    if (version === null || !parseRunnerVersion(version)) continue;
    if (oldest === null || compareRunnerVersions(version, oldest) < 0) oldest = version;
  }
  return oldest;
}

/**
 * How long runners on `version` may still get jobs: the days since the first release newer than it, against
 * GitHub's 30-day window. `releases` are full releases (no drafts or prereleases), in any order.
 */
export function versionDeadline(
  version: string | null,
  releases: readonly RunnerRelease[] | null,
  now: number,
): VersionDeadline {
  const valid = (releases ?? []).filter(
    (r) => parseRunnerVersion(r.version) && !Number.isNaN(Date.parse(r.publishedAt)),
  );
  const latest = valid.reduce<RunnerRelease | null>(
    (best, r) => (best === null || compareRunnerVersions(r.version, best.version) > 0 ? r : best),
    null,
  );
  const base = { version, latest, firstNewer: null, daysSince: null, daysLeft: null, atLeast: false };
  if (version === null || !parseRunnerVersion(version)) {
    return { ...base, level: 'unknown', message: 'the runner version of these VMs is not known' };
  }
  if (releases === null) {
    return {
      ...base,
      level: 'unknown',
      message: `runs ${version}; the actions/runner releases could not be read`,
    };
  }
  const newer = valid.filter((r) => compareRunnerVersions(r.version, version) > 0);
  if (newer.length === 0) {
    return { ...base, level: 'current', message: `runs ${version}, the latest release` };
  }
  const firstNewer = newer.reduce((first, r) =>
    Date.parse(r.publishedAt) < Date.parse(first.publishedAt) ? r : first,
  );
  const atLeast = valid.every((r) => compareRunnerVersions(r.version, version) > 0);
  const elapsedDays = Math.max(0, (now - Date.parse(firstNewer.publishedAt)) / DAY_MS);
  const daysSince = Math.floor(elapsedDays);
  const daysLeft = Math.max(0, Math.ceil(UPDATE_WINDOW_DAYS - elapsedDays));
  const level: DeadlineLevel =
    elapsedDays >= UPDATE_WINDOW_DAYS
      ? 'expired'
      : elapsedDays >= ERROR_AFTER_DAYS
        ? 'error'
        : elapsedDays >= WARN_AFTER_DAYS
          ? 'warn'
          : 'ok';
  const since = `${atLeast ? 'at least ' : ''}${daysSince} day${daysSince === 1 ? '' : 's'} ago`;
  const message =
    level === 'expired'
      ? `runs ${version}; ${firstNewer.version} came out ${since}: past GitHub's ${UPDATE_WINDOW_DAYS}-day window, GitHub sends these runners no jobs`
      : `runs ${version}; ${firstNewer.version} came out ${since}: ${daysLeft} day${daysLeft === 1 ? '' : 's'} left to update (latest ${latest!.version})`;
  return { ...base, firstNewer, daysSince, daysLeft, atLeast, level, message };
}
