import { Cron } from 'croner';

/** A time of day (and week) when a pool keeps more idle runners: `minIdle` for `durationMinutes` from each `cron` firing. */
export interface MinIdleSchedule {
  /** Five-field cron (minute hour day-of-month month day-of-week), read in the pool's time zone. */
  cron: string;
  durationMinutes: number;
  minIdle: number;
}

/** A {@link MinIdleSchedule} ready to evaluate: its cron compiled in its time zone. */
export interface WarmSchedule extends MinIdleSchedule {
  timeZone: string;
  /** croner's pattern, never started (no callback): only asked for firing times. */
  pattern: Cron;
}

/** True for an IANA time zone name this runtime knows (`Europe/Berlin`, `UTC`). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * Compiles a schedule; throws an Error saying what is wrong with its cron. Only five-field patterns are
 * taken: seconds and years would let a schedule fire more often than a reconciliation runs.
 */
export function compileSchedule(schedule: MinIdleSchedule, timeZone: string): WarmSchedule {
  const fields = schedule.cron.trim().split(/\s+/);
  if (fields.length !== 5) {
    throw new Error('must be a five-field cron: minute hour day-of-month month day-of-week');
  }
  let pattern: Cron;
  try {
    pattern = new Cron(schedule.cron, { timezone: timeZone });
    pattern.nextRun();
  } catch (error) {
    throw new Error(`is not a valid cron: ${(error as Error).message.replace(/^CronPattern: /, '')}`);
  }
  return { ...schedule, timeZone, pattern };
}

/**
 * How many idle runners a pool keeps at `at` (ms): the largest `minIdle` of its base setting and of every
 * schedule whose window `[firing, firing + durationMinutes)` contains `at`. A schedule is active exactly
 * when its next firing after `at - durationMinutes` is not after `at`.
 */
export function minIdleAt(
  pool: { minIdle: number; minIdleSchedules: readonly WarmSchedule[] },
  at: number,
): number {
  let minIdle = pool.minIdle;
  for (const schedule of pool.minIdleSchedules) {
    if (schedule.minIdle <= minIdle) continue;
    const firing = schedule.pattern.nextRun(new Date(at - schedule.durationMinutes * 60_000));
    if (firing !== null && firing.getTime() <= at) minIdle = schedule.minIdle;
  }
  return minIdle;
}
