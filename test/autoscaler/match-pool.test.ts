import fc from 'fast-check';
import { instanceNameFor, labelsCover, matchPool, parseInstanceName, parsePoolConfig } from '#autoscaler';

const pools = parsePoolConfig(
  JSON.stringify({
    pools: [
      {
        name: 'linux-cpu',
        scopes: ['my-org', 'match:partner/ci-.*'],
        labels: ['self-hosted', 'Linux', 'x64', 'cpu'],
        migs: ['projects/p/regions/r1/instanceGroupManagers/cpu'],
        runnerScope: 'my-org',
        maxRunners: 5,
        instanceNamePrefix: 'cpu',
      },
      {
        name: 'linux-gpu',
        scopes: ['my-org'],
        labels: ['self-hosted', 'linux', 'x64', 'cpu', 'gpu'],
        migs: ['projects/p/zones/r1-a/instanceGroupManagers/gpu'],
        runnerScope: 'my-org',
        maxRunners: 2,
        instanceNamePrefix: 'gpu',
      },
      {
        name: 'other-org',
        scopes: ['other-org'],
        labels: ['self-hosted', 'linux'],
        migs: ['projects/p/zones/r1-a/instanceGroupManagers/other'],
        runnerScope: 'other-org',
        maxRunners: 2,
        instanceNamePrefix: 'other',
      },
    ],
  }),
);
const cpu = pools[0]!;

describe('matchPool', () => {
  it.each([
    ['an exact label set', ['self-hosted', 'linux', 'x64', 'cpu'], 'my-org/app', 'linux-cpu'],
    ['a subset', ['self-hosted', 'linux'], 'my-org/app', 'linux-cpu'],
    ['labels in another case', ['SELF-HOSTED', 'LINUX'], 'My-Org/App', 'linux-cpu'],
    ['a label only the second pool has', ['self-hosted', 'gpu'], 'my-org/app', 'linux-gpu'],
    ['a repository a match: scope names', ['linux'], 'partner/ci-tools', 'linux-cpu'],
    ['a repository of the third pool', ['linux'], 'other-org/x', 'other-org'],
  ])('gives %s to its pool', (_, labels, repository, expected) => {
    const match = matchPool(pools, { labels, repository });
    expect(match.kind === 'matched' && match.pool.name).toBe(expected);
  });

  it.each([
    ['no labels (runs-on names only a group)', [], 'my-org/app', { kind: 'no-labels' }],
    ['a GitHub-hosted label', ['ubuntu-latest'], 'my-org/app', { kind: 'no-pool' }],
    ['one label no pool has', ['self-hosted', 'linux', 'arm64'], 'my-org/app', { kind: 'no-pool' }],
    [
      'a repository outside every scope',
      ['self-hosted'],
      'evil/app',
      {
        kind: 'out-of-scope',
        pools: ['linux-cpu', 'linux-gpu', 'other-org'],
      },
    ],
    ['a look-alike org', ['gpu'], 'evil-my-org/app', { kind: 'out-of-scope', pools: ['linux-gpu'] }],
    [
      'a match: pattern that must match whole',
      ['cpu'],
      'partner/tools-ci-x',
      {
        kind: 'out-of-scope',
        pools: ['linux-cpu', 'linux-gpu'],
      },
    ],
  ])('gives %s no VM', (_, labels, repository, expected) => {
    expect(matchPool(pools, { labels, repository })).toEqual(expected);
  });

  it('matches exactly when every label of the job is among the pool labels, whatever the case', () => {
    const label = fc.constantFrom('self-hosted', 'linux', 'x64', 'cpu', 'gpu', 'arm64', 'windows');
    const cased = label.chain((l) => fc.constantFrom(l, l.toUpperCase(), l[0]!.toUpperCase() + l.slice(1)));
    fc.assert(
      fc.property(fc.array(cased, { maxLength: 6 }), (labels) => {
        const expected = labels.length > 0 && labels.every((l) => cpu.labelSet.has(l.toLowerCase()));
        expect(labelsCover(cpu, labels)).toBe(expected);
      }),
    );
  });
});

describe('instance names', () => {
  it.each([
    ['gh', 42, 1, 'gh-42'],
    ['gh', 42, 2, 'gh-42-2'],
    ['gh-linux-cpu', 9007199254740991, 999, 'gh-linux-cpu-9007199254740991-999'],
  ])('%s, job %d, attempt %d: %s', (prefix, jobId, attempt, name) => {
    expect(instanceNameFor(prefix, jobId, attempt)).toBe(name);
    expect(parseInstanceName(prefix, name)).toEqual({ jobId, attempt });
  });

  it.each(['gh-', 'gh-x', 'gh-1-1', 'gh-1-0', 'other-1', 'gh-1-2-3', 'gh-12345678901234567890'])(
    'does not take %s for one of ours',
    (name) => {
      expect(parseInstanceName('gh', name)).toBeUndefined();
    },
  );

  it('round-trips any job id and attempt, within 63 characters', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z][-a-z0-9]{0,36}[a-z0-9]$/),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 1, max: 999 }),
        (prefix, jobId, attempt) => {
          const name = instanceNameFor(prefix, jobId, attempt);
          expect(name.length).toBeLessThanOrEqual(63);
          expect(name).toMatch(/^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/);
          expect(parseInstanceName(prefix, name)).toEqual({ jobId, attempt });
        },
      ),
    );
  });
});
