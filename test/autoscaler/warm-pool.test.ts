import { compileSchedule, minIdleAt } from '#autoscaler';

/** Weekdays 08:00 for ten hours, base 1, in `timeZone`. */
const pool = (timeZone: string) => ({
  minIdle: 1,
  minIdleSchedules: [
    compileSchedule({ cron: '0 8 * * 1-5', durationMinutes: 600, minIdle: 5 }, timeZone),
    compileSchedule({ cron: '30 12 * * *', durationMinutes: 30, minIdle: 8 }, timeZone),
  ],
});
const at = (iso: string): number => Date.parse(iso);

describe('minIdleAt', () => {
  it.each([
    // Tuesday 2026-12-01, UTC.
    ['2026-12-01T07:59:59Z', 1, 'before the weekday window'],
    ['2026-12-01T08:00:00Z', 5, 'at its first minute'],
    ['2026-12-01T12:45:00Z', 8, 'inside the lunch window too: the larger wins'],
    ['2026-12-01T17:59:59Z', 5, 'at its last second'],
    ['2026-12-01T18:00:00Z', 1, 'once it has ended'],
    ['2026-12-05T09:00:00Z', 1, 'on a Saturday'],
    ['2026-12-05T12:40:00Z', 8, 'on a Saturday at lunch (every day)'],
  ])('%s in UTC: %i (%s)', (when, expected) => {
    expect(minIdleAt(pool('UTC'), at(when))).toBe(expected);
  });

  it('reads the schedule in the pool time zone, across a daylight-saving change', () => {
    // 08:00 in New York is 13:00 UTC in winter (EST) and 12:00 UTC in summer (EDT).
    const ny = pool('America/New_York');
    expect(minIdleAt(ny, at('2026-12-01T12:30:00Z'))).toBe(1);
    expect(minIdleAt(ny, at('2026-12-01T13:00:00Z'))).toBe(5);
    expect(minIdleAt(ny, at('2026-07-01T12:00:00Z'))).toBe(5);
    expect(minIdleAt(ny, at('2026-07-01T11:59:00Z'))).toBe(1);
  });

  it('is the base minIdle without schedules', () => {
    expect(minIdleAt({ minIdle: 3, minIdleSchedules: [] }, Date.now())).toBe(3);
  });
});

describe('compileSchedule', () => {
  it.each([
    ['0 8 * * 1-5', undefined],
    ['*/15 * * * *', undefined],
    ['0 8 * *', 'must be a five-field cron'],
    ['0 8 * * * 2027', 'must be a five-field cron'],
    ['61 8 * * *', 'is not a valid cron'],
    ['0 8 * * funday', 'is not a valid cron'],
  ])('%s: %s', (cron, problem) => {
    const compile = () => compileSchedule({ cron, durationMinutes: 60, minIdle: 1 }, 'UTC');
    if (problem === undefined) expect(compile).not.toThrow();
    else expect(compile).toThrow(problem);
  });
});
