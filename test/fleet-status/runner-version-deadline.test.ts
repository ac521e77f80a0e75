import { compareRunnerVersions, oldestVersion, parseRunnerVersion, versionDeadline } from '#shared';

const NOW = Date.parse('2026-11-29T12:00:00Z');
const daysAgo = (days: number) => new Date(NOW - days * 86_400_000).toISOString();
const RELEASES = [
  { version: '2.328.0', publishedAt: daysAgo(80) },
  { version: '2.329.0', publishedAt: daysAgo(40) },
  { version: '2.330.0', publishedAt: daysAgo(20) },
  { version: '2.331.0', publishedAt: daysAgo(5) },
];

describe('runner versions', () => {
  it('parses and compares versions numerically, with or without v', () => {
    expect(parseRunnerVersion('v2.331.0')).toEqual([2, 331, 0]);
    expect(parseRunnerVersion('2.331')).toBeUndefined();
    expect(compareRunnerVersions('2.99.0', '2.100.0')).toBeLessThan(0);
    expect(oldestVersion(['2.331.0', null, 'junk', '2.99.9', '2.330.0'])).toBe('2.99.9');
    expect(oldestVersion([null])).toBeNull();
  });

  it.each([
    // version, releases, level, first newer, days since, days left
    ['2.331.0', RELEASES, 'current', null, null, null],
    ['2.330.0', RELEASES, 'ok', '2.331.0', 5, 25],
    ['2.329.0', RELEASES, 'warn', '2.330.0', 20, 10],
    ['2.330.0', [...RELEASES, { version: '2.330.1', publishedAt: daysAgo(26) }], 'error', '2.330.1', 26, 4],
    ['2.328.0', RELEASES, 'expired', '2.329.0', 40, 0],
  ] as const)('%s: %s', (version, releases, level, firstNewer, daysSince, daysLeft) => {
    const deadline = versionDeadline(version, [...releases], NOW);
    expect(deadline).toMatchObject({
      version,
      level,
      daysSince,
      daysLeft,
      latest: { version: '2.331.0' },
    });
    expect(deadline.firstNewer?.version ?? null).toBe(firstNewer);
  });

  it('counts from the first newer release by date, not the latest', () => {
    const deadline = versionDeadline('2.329.0', RELEASES, NOW);
    expect(deadline.message).toBe(
      'runs 2.329.0; 2.330.0 came out 20 days ago: 10 days left to update (latest 2.331.0)',
    );
  });

  it('warns from day 14 and calls it an error from day 25', () => {
    const at = (days: number) =>
      versionDeadline('2.330.0', [{ version: '2.331.0', publishedAt: daysAgo(days) }], NOW).level;
    expect([13.9, 14, 24.9, 25, 29.9, 30].map(at)).toEqual([
      'ok',
      'warn',
      'warn',
      'error',
      'error',
      'expired',
    ]);
  });

  it('says past the window when expired, and "at least" when older than every listed release', () => {
    const deadline = versionDeadline('2.300.0', RELEASES, NOW);
    expect(deadline).toMatchObject({ level: 'expired', atLeast: true, firstNewer: { version: '2.328.0' } });
    expect(deadline.message).toMatch(
      /at least 80 days ago: past GitHub's 30-day window, GitHub sends these runners no jobs/,
    );
  });

  it('is unknown without a version or without releases', () => {
    expect(versionDeadline(null, RELEASES, NOW).level).toBe('unknown');
    expect(versionDeadline('2.330.0', null, NOW)).toMatchObject({
      level: 'unknown',
      message: expect.stringMatching(/could not be read/),
    });
  });
});
