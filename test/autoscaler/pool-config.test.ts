import { parsePoolConfig, PoolConfigError } from '#autoscaler';

const pool = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'linux-cpu',
  scopes: ['my-org'],
  labels: ['self-hosted', 'linux'],
  migs: ['projects/p/regions/us-central1/instanceGroupManagers/gh-linux'],
  runnerScope: 'my-org',
  maxRunners: 10,
  instanceNamePrefix: 'gh-linux',
  ...overrides,
});

function problemsOf(document: unknown): string[] {
  try {
    parsePoolConfig(typeof document === 'string' ? document : JSON.stringify(document));
  } catch (error) {
    expect(error).toBeInstanceOf(PoolConfigError);
    return [...(error as PoolConfigError).problems];
  }
  throw new Error('expected a PoolConfigError');
}

describe('parsePoolConfig', () => {
  it('fills defaults and accepts full MIG URLs and repository scopes', () => {
    const [parsed] = parsePoolConfig(
      JSON.stringify({
        pools: [
          pool({
            migs: [
              'https://www.googleapis.com/compute/v1/projects/p/zones/us-east1-b/instanceGroupManagers/m',
            ],
            runnerScope: 'My-Org/App',
            scopes: ['my-org/app'],
          }),
        ],
      }),
    );
    expect(parsed).toMatchObject({
      runnerGroup: 'Default',
      runnerScope: { kind: 'repo', owner: 'My-Org', repo: 'App' },
      migs: [{ project: 'p', scope: 'zones', location: 'us-east1-b', name: 'm' }],
    });
    expect([...parsed!.labelSet]).toEqual(['self-hosted', 'linux']);
  });

  it.each([
    ['no pools', { pools: [] }, 'pools: must list at least one pool'],
    ['an unknown top-level field', { pools: [pool()], extra: 1 }, 'unknown field "extra"'],
    ['an unknown pool field (a typo)', { pools: [pool({ maxRunner: 3 })] }, 'unknown field "maxRunner"'],
    ['no labels', { pools: [pool({ labels: [] })] }, '.labels: must list at least one label'],
    ['a label with a comma', { pools: [pool({ labels: ['a,b'] })] }, '.labels[0]: each label'],
    ['a repeated label', { pools: [pool({ labels: ['GPU', 'gpu'] })] }, 'must not repeat a label'],
    ['no scopes', { pools: [pool({ scopes: [] })] }, '.scopes: must list at least one'],
    ['a bad scope', { pools: [pool({ scopes: ['a b'] })] }, 'is not an org, owner/repo or match:REGEX'],
    ['a bad regex', { pools: [pool({ scopes: ['match:('] })] }, 'invalid regular expression'],
    ['a bad MIG URL', { pools: [pool({ migs: ['gh-linux'] })] }, 'migs[0]: "gh-linux" is not projects/'],
    ['a bad runner scope', { pools: [pool({ runnerScope: 'a/b/c' })] }, 'runnerScope: must be an org'],
    ['maxRunners 0', { pools: [pool({ maxRunners: 0 })] }, '.maxRunners:'],
    ['maxRunners 1.5', { pools: [pool({ maxRunners: 1.5 })] }, '.maxRunners:'],
    ['an upper-case prefix', { pools: [pool({ instanceNamePrefix: 'GH' })] }, 'instanceNamePrefix: must be'],
    ['a long prefix', { pools: [pool({ instanceNamePrefix: 'a'.repeat(40) })] }, 'at most 39 characters'],
    [
      'a MIG in two pools',
      { pools: [pool(), pool({ name: 'b', instanceNamePrefix: 'b' })] },
      'pools[1] ("b").migs[0]: projects/p/regions/us-central1/instanceGroupManagers/gh-linux is already in pools[0]',
    ],
    [
      'a repeated name',
      {
        pools: [
          pool(),
          pool({
            name: 'LINUX-CPU',
            instanceNamePrefix: 'x',
            migs: ['projects/p/zones/z-a/instanceGroupManagers/x'],
          }),
        ],
      },
      'pools[1] ("LINUX-CPU").name: pools[0] ("linux-cpu") already uses it',
    ],
    ['not JSON', 'nope', 'is not valid JSON'],
    [
      'minIdle above maxRunners',
      { pools: [pool({ minIdle: 11 })] },
      '.minIdle: must not exceed maxRunners (10)',
    ],
    [
      'a schedule above maxRunners',
      { pools: [pool({ minIdleSchedules: [{ cron: '0 8 * * 1-5', durationMinutes: 600, minIdle: 20 }] })] },
      '.minIdleSchedules[0].minIdle: must not exceed maxRunners (10)',
    ],
    [
      'a bad cron',
      { pools: [pool({ minIdleSchedules: [{ cron: '0 25 * * *', durationMinutes: 60, minIdle: 1 }] })] },
      '.minIdleSchedules[0].cron: is not a valid cron',
    ],
    [
      'a cron with seconds',
      { pools: [pool({ minIdleSchedules: [{ cron: '0 0 8 * * 1-5', durationMinutes: 60, minIdle: 1 }] })] },
      '.minIdleSchedules[0].cron: must be a five-field cron',
    ],
    [
      'a schedule without a duration',
      { pools: [pool({ minIdleSchedules: [{ cron: '0 8 * * *', minIdle: 1 }] })] },
      '.minIdleSchedules[0].durationMinutes:',
    ],
    [
      'an unknown time zone',
      { pools: [pool({ timeZone: 'Mars/Base' })] },
      '.timeZone: "Mars/Base" is not an IANA',
    ],
    ['a boot timeout under a minute', { pools: [pool({ bootTimeoutSeconds: 30 })] }, '.bootTimeoutSeconds:'],
  ])('refuses %s', (_, document, expected) => {
    expect(problemsOf(document).join('\n')).toContain(expected);
  });

  it('reads the warm pool and reaper settings, with their defaults', () => {
    const [plain, warm] = parsePoolConfig(
      JSON.stringify({
        pools: [
          pool(),
          pool({
            name: 'warm',
            instanceNamePrefix: 'gh-warm',
            migs: ['projects/p/zones/z-a/instanceGroupManagers/warm'],
            minIdle: 1,
            minIdleSchedules: [{ cron: '0 8 * * 1-5', durationMinutes: 600, minIdle: 5 }],
            timeZone: 'America/New_York',
            bootTimeoutSeconds: 300,
            idleTimeoutSeconds: 120,
          }),
        ],
      }),
      { defaultTimeZone: 'Europe/Berlin' },
    );
    expect(plain).toMatchObject({
      minIdle: 0,
      minIdleSchedules: [],
      timeZone: 'Europe/Berlin',
      bootTimeoutMs: 600_000,
      idleTimeoutMs: 300_000,
    });
    expect(warm).toMatchObject({
      minIdle: 1,
      minIdleSchedules: [
        { cron: '0 8 * * 1-5', durationMinutes: 600, minIdle: 5, timeZone: 'America/New_York' },
      ],
      timeZone: 'America/New_York',
      bootTimeoutMs: 300_000,
      idleTimeoutMs: 120_000,
    });
  });

  it('reports the problems of every pool together', () => {
    const problems = problemsOf({
      pools: [pool({ labels: [] }), pool({ name: 'two', maxRunners: -1, migs: ['x'] })],
    });
    expect(problems).toEqual([
      expect.stringContaining('pools[0] ("linux-cpu").labels'),
      expect.stringContaining('pools[1] ("two").maxRunners'),
    ]);
  });
});
