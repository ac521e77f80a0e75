import { createRunnerVersionCheck } from '#autoscaler';
import type { FleetRow, Pool, RunnerVersionCheck } from '#autoscaler';
import { createRunnerReleasesApi } from '#shared';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';
import { captureLogs } from '#test-support/log-capture';
import type { CapturedLogger } from '#test-support/log-capture';

const DAY_MS = 86_400_000;
/** When 2.331.0 came out: the 30 days of runners on 2.330.0 count from here. */
const T0 = Date.parse('2026-11-01T12:00:00Z');
const POOL = { name: 'linux-cpu' } as Pool;

let rowNumber = 0;
/** A join row of a VM whose runner reported `version` (null: not connected yet), in `state`. */
function row(version: string | null, state: FleetRow['state'] = 'idle'): FleetRow {
  rowNumber += 1;
  return {
    state,
    mig: 'projects/p/regions/us-central1/instanceGroupManagers/gh-cpu',
    migIndex: 0,
    instance: `gh-cpu-${rowNumber}`,
    instanceId: String(1_000_000_000_000_000_000n + BigInt(rowNumber)),
    zone: 'us-central1-a',
    currentAction: 'NONE',
    instanceStatus: 'RUNNING',
    keep: false,
    runner: {
      id: rowNumber,
      name: `gh-cpu-${rowNumber}`,
      status: 'online',
      busy: false,
      labels: [],
      version,
    },
    extraRunners: [],
    firstSeenAt: T0,
    noRunnerSince: null,
    noRunnerRuns: 0,
    idleSince: T0,
    busyWhenLastOnline: false,
    offlineRuns: 0,
    vmGoneSince: null,
  };
}

/**
 * The version check with the real releases client against the fake GitHub's actions/runner releases, on a
 * clock the test sets: `days` after 2.331.0 came out.
 */
describe('runner versions in the reconciler: thresholds and scale-up', () => {
  let github: FakeGitHub;
  let clock: number;
  let logs: CapturedLogger;
  let check: RunnerVersionCheck;

  beforeAll(async () => {
    github = await startFakeGitHub();
    github.runnerReleases = [
      { version: '2.329.0', publishedAt: new Date(T0 - 200 * DAY_MS).toISOString() },
      { version: '2.330.0', publishedAt: new Date(T0 - 100 * DAY_MS).toISOString() },
      { version: '2.331.0', publishedAt: new Date(T0).toISOString() },
    ];
  });
  afterAll(() => github.close());
  beforeEach(() => {
    clock = T0;
    logs = captureLogs();
    check = createRunnerVersionCheck({
      releases: createRunnerReleasesApi({ baseUrl: github.baseUrl, now: () => clock }),
      logger: logs.logger,
      now: () => clock,
    });
  });

  /** Judges the pool at `days` after 2.331.0 came out; returns what was logged about it. */
  async function judgeAt(days: number, rows: FleetRow[]) {
    clock = T0 + days * DAY_MS;
    const before = logs.lines().length;
    const state = check.judge(POOL, rows, await check.readReleases());
    return { state, lines: logs.lines().slice(before) };
  }

  it.each([
    [0, 'ok', null, false],
    [13.9, 'ok', null, false],
    [14, 'warn', 'WARNING', false],
    [24.9, 'warn', 'WARNING', false],
    [25, 'error', 'ERROR', false],
    [29.9, 'error', 'ERROR', false],
    [30, 'expired', 'ERROR', true],
    [45, 'expired', 'ERROR', true],
  ] as const)(
    'at %s days: level %s, logged at %s, scale-up stopped: %s',
    async (days, level, severity, blocked) => {
      const { state, lines } = await judgeAt(days, [row('2.330.0'), row('2.330.0', 'busy')]);
      expect(state?.oldest.level).toBe(level);
      const versionLines = lines.filter((l) => l.message === 'runner version out of date');
      if (severity === null) expect(versionLines).toEqual([]);
      else
        expect(versionLines).toEqual([
          expect.objectContaining({
            severity,
            pool: 'linux-cpu',
            level,
            version: '2.330.0',
            firstNewer: '2.331.0',
            daysLeft: Math.max(0, Math.ceil(30 - days)),
            reported: { '2.330.0': 2 },
          }),
        ]);
      expect(check.scaleUpBlockedReason('linux-cpu') !== undefined).toBe(blocked);
      expect(lines.some((l) => l.message === 'scale-up stopped' && l.severity === 'ERROR')).toBe(blocked);
    },
  );

  it('logs once per pool per run while due, and says when scale-up stops and resumes, once each', async () => {
    await judgeAt(20, [row('2.330.0')]);
    await judgeAt(20.01, [row('2.330.0')]);
    expect(logs.lines().filter((l) => l.message === 'runner version out of date')).toHaveLength(2);

    const stopped = await judgeAt(31, [row('2.330.0'), row(null)]);
    expect(stopped.state?.scaleUpBlockedReason).toMatch(
      /^every runner of pool linux-cpu that reports a version runs 2\.330\.0 or older, and 2\.331\.0 came out 31 days ago: past GitHub's 30-day window/,
    );
    await judgeAt(31.01, [row('2.330.0')]);
    expect(logs.lines().filter((l) => l.message === 'scale-up stopped')).toHaveLength(1);

    // A canary VM reports the new release: new VMs get it, so the pool may grow again, though the oldest
    // runners are still past due (and still logged).
    const resumed = await judgeAt(31.02, [row('2.330.0'), row('2.331.0')]);
    expect(resumed.state).toMatchObject({
      scaleUpBlockedReason: null,
      oldest: { version: '2.330.0', level: 'expired' },
      newest: { version: '2.331.0', level: 'current' },
    });
    expect(check.scaleUpBlockedReason('linux-cpu')).toBeUndefined();
    expect(resumed.lines.map((l) => [l.severity, l.message])).toEqual([
      ['ERROR', 'runner version out of date'],
      [
        'INFO',
        'scale-up resumed: a runner reports a version GitHub still sends jobs to, or none reports one',
      ],
    ]);
  });

  it('stops nothing once no runner reports a version (the expired VMs were reaped)', async () => {
    await judgeAt(40, [row('2.330.0')]);
    expect(check.scaleUpBlockedReason('linux-cpu')).toBeDefined();
    const { state } = await judgeAt(40.1, [row(null, 'booting')]);
    expect(state?.oldest.level).toBe('unknown');
    expect(check.scaleUpBlockedReason('linux-cpu')).toBeUndefined();
  });

  it('keeps its judgement when the runners could not be listed this run', async () => {
    await judgeAt(40, [row('2.330.0')]);
    const { state } = await judgeAt(40.1, undefined as unknown as FleetRow[]);
    expect(state?.scaleUpBlockedReason).not.toBeNull();
  });

  it('leaves out runners being deleted and judges versions numerically (2.330.0 is newer than 2.99.0)', async () => {
    const { state } = await judgeAt(31, [row('2.99.0', 'deleting'), row('2.330.0'), row('2.331.0')]);
    expect(state?.reported).toEqual({ '2.330.0': 1, '2.331.0': 1 });
    expect(state?.oldest.version).toBe('2.330.0');
    expect(state?.newest.version).toBe('2.331.0');
  });

  it('fails open when the releases cannot be read: nothing is stopped, and the reason is kept', async () => {
    const down = await startFakeGitHub();
    try {
      down.controls.addFault({ path: '/repos/actions/runner/releases', status: 503, times: 10 });
      const unread = createRunnerVersionCheck({
        releases: createRunnerReleasesApi({ baseUrl: down.baseUrl, now: () => clock }),
        logger: logs.logger,
        now: () => clock,
      });
      clock = T0 + 60 * DAY_MS;
      const read = await unread.readReleases();
      expect(read).toEqual({
        releases: null,
        fetchedAt: null,
        error: 'cannot read the actions/runner releases: GitHub answered 503',
      });
      const state = unread.judge(POOL, [row('2.300.0')], read);
      expect(state?.oldest.level).toBe('unknown');
      expect(unread.scaleUpBlockedReason('linux-cpu')).toBeUndefined();
      expect(unread.lastRead()?.error).toMatch(/GitHub answered 503/);
      expect(
        logs
          .lines()
          .some(
            (l) =>
              l.severity === 'WARNING' &&
              l.message ===
                'actions/runner releases unreadable: runner versions not judged, no pool stopped for them',
          ),
      ).toBe(true);
    } finally {
      await down.close();
    }
  });

  it('judges nothing and stops nothing without a releases reader', async () => {
    const none = createRunnerVersionCheck({ releases: undefined, logger: logs.logger, now: () => clock });
    expect(none.judge(POOL, [row('2.1.0')], await none.readReleases())).toBeUndefined();
    expect(none.scaleUpBlockedReason('linux-cpu')).toBeUndefined();
  });
});
