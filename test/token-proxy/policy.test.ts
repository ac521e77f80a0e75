import { parsePolicy, PolicyError } from '#token-proxy';
import { ruleMatchesCaller, allowsGroup, allowsLabel } from '../../services/token-proxy/src/policy.js';
import type { CallerIdentity } from '#shared';

const presubmitVm: CallerIdentity = {
  sub: '1',
  email: 'runner-min@p.iam.gserviceaccount.com',
  compute: {
    projectId: 'my-project',
    projectNumber: '123',
    zone: 'us-central1-a',
    instanceId: '1234567890123456789',
    instanceName: 'gh-runner-presubmit-abcd',
  },
};

const example = JSON.stringify({
  rules: [
    {
      name: 'presubmit',
      callers: {
        serviceAccounts: ['runner-min@p.iam.gserviceaccount.com'],
        projects: ['my-project'],
        instanceNames: ['match:gh-runner-presubmit-.*'],
      },
      scopes: ['my-org', 'match:my-org/.*'],
    },
  ],
});

describe('parsePolicy', () => {
  it('compiles the documented example and matches the caller it names', () => {
    const [rule] = parsePolicy(example).rules;
    expect(ruleMatchesCaller(rule!, presubmitVm)).toBe(true);
    expect(rule!.scopes.some((s) => s.test('MY-ORG/Repo'))).toBe(true);
    expect(rule!.scopes.some((s) => s.test('evil-my-org/repo'))).toBe(false);
  });

  it.each([
    ['another service account', { ...presubmitVm, email: 'other@p.iam.gserviceaccount.com' }],
    ['an unverified email (absent)', { sub: '1', compute: presubmitVm.compute! }],
    ['another project', { ...presubmitVm, compute: { ...presubmitVm.compute!, projectId: 'other' } }],
    [
      'another instance name',
      { ...presubmitVm, compute: { ...presubmitVm.compute!, instanceName: 'gh-runner-postsubmit-1' } },
    ],
    [
      'a prefix-only instance-name match',
      { ...presubmitVm, compute: { ...presubmitVm.compute!, instanceName: 'x-gh-runner-presubmit-1' } },
    ],
    ['a token without Compute claims', { sub: '1', email: presubmitVm.email! }],
  ])('does not match %s', (_, caller) => {
    const [rule] = parsePolicy(example).rules;
    expect(ruleMatchesCaller(rule!, caller as CallerIdentity)).toBe(false);
  });

  it('matches a project by number as well as by id', () => {
    const [rule] = parsePolicy(
      JSON.stringify({ rules: [{ name: 'n', callers: { projects: ['123'] }, scopes: ['o'] }] }),
    ).rules;
    expect(ruleMatchesCaller(rule!, presubmitVm)).toBe(true);
  });

  it('lets a rule that names only a project match every caller of it, and defaults groups to Default only', () => {
    const [rule] = parsePolicy(
      JSON.stringify({ rules: [{ name: 'all', callers: { projects: ['my-project'] }, scopes: ['o'] }] }),
    ).rules;
    expect(ruleMatchesCaller(rule!, presubmitVm)).toBe(true);
    expect(ruleMatchesCaller(rule!, { sub: '1' })).toBe(false);
    expect(allowsGroup(rule!, 'default')).toBe(true);
    expect(allowsGroup(rule!, 'postsubmit')).toBe(false);
    expect(allowsLabel(rule!, 'anything')).toBe(true);
  });

  // Issue 15 §2: a rule must say whose callers it is about.
  it.each([
    ['no callers', '{"rules": [{"name":"a","scopes":["o"]}]}'],
    ['empty callers', '{"rules": [{"name":"a","callers":{},"scopes":["o"]}]}'],
    [
      'instance names only',
      '{"rules": [{"name":"a","callers":{"instanceNames":["match:gh-.*"]},"scopes":["o"]}]}',
    ],
  ])('refuses a rule with %s: it would match every caller', (_, text) => {
    expect(() => parsePolicy(text)).toThrow(
      /rules\[0\]\.callers: rule "a" names neither serviceAccounts nor projects/,
    );
  });

  it('refuses a policy that writes a key twice, since readers disagree on which counts', () => {
    expect(() =>
      parsePolicy('{"rules": [{"name":"a","callers":{"projects":["p"],"projects":["q"]},"scopes":["o"]}]}'),
    ).toThrow(/policy is ambiguous: key "projects" appears more than once in one object/);
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['no rules', '{"rules": []}', /rules: must contain at least one rule/],
    [
      'an unknown top-level field',
      '{"rules": [{"name":"a","scopes":["o"]}], "extra": 1}',
      /unrecognized key/i,
    ],
    [
      'an unknown rule field (a typo)',
      '{"rules": [{"name":"a","scopes":["o"],"scope":["x"]}]}',
      /rules\[0\].*scope/,
    ],
    [
      'an unknown caller field',
      '{"rules": [{"name":"a","scopes":["o"],"callers":{"instances":["x"]}}]}',
      /rules\[0\]\.callers/,
    ],
    ['a rule without scopes', '{"rules": [{"name":"a"}]}', /rules\[0\]\.scopes/],
    [
      'an empty scopes list',
      '{"rules": [{"name":"a","scopes":[]}]}',
      /rules\[0\]\.scopes: must list at least one entry/,
    ],
    [
      'a bad regex',
      '{"rules": [{"name":"a","scopes":["o"],"callers":{"instanceNames":["ok","match:(x"]}}]}',
      /rules\[0\]\.callers\.instanceNames\[1\]: invalid regular expression/,
    ],
    [
      'a default group outside runnerGroups',
      '{"rules": [{"name":"a","scopes":["o"],"runnerGroups":["ci"],"defaultRunnerGroup":"other"}]}',
      /rules\[0\]\.defaultRunnerGroup/,
    ],
    [
      'a default label outside labels',
      '{"rules": [{"name":"a","scopes":["o"],"labels":["linux"],"defaultLabels":["linux","gpu"]}]}',
      /rules\[0\]\.defaultLabels\[1\]/,
    ],
    [
      'jitOnly not a boolean',
      '{"rules": [{"name":"a","scopes":["o"],"jitOnly":"yes"}]}',
      /rules\[0\]\.jitOnly/,
    ],
  ])('refuses %s, pointing at the entry', (_, text, message) => {
    expect(() => parsePolicy(text)).toThrow(PolicyError);
    expect(() => parsePolicy(text)).toThrow(message);
  });
});
