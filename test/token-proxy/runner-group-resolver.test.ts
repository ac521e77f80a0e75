import { GitHubCallError } from '../../services/token-proxy/src/github-call-error.js';
import type { GitHubRunnerApi } from '../../services/token-proxy/src/github-runner-api.js';
import { createRunnerGroupResolver } from '../../services/token-proxy/src/runner-group-resolver.js';
import type { Scope } from '#token-proxy';

const org = (name: string): Scope => ({ kind: 'org', org: name });

/** A GitHub whose runner-group list is `answer(scope)`, counting the calls per org. */
function github(answer: (scope: Scope) => Promise<Array<{ id: number; name: string }>>) {
  const calls = new Map<string, number>();
  const api = {
    listRunnerGroups: (scope: Scope) => {
      const key = scope.kind === 'org' ? scope.org : '';
      calls.set(key, (calls.get(key) ?? 0) + 1);
      return answer(scope);
    },
  } as unknown as GitHubRunnerApi;
  return { api, calls };
}

// Issue 15 §7: the cache kept every scope ever asked for.
describe('createRunnerGroupResolver', () => {
  let clock = 0;
  const now = () => clock;

  it('keeps at most maxScopes lists, dropping the least recently used', async () => {
    const { api, calls } = github(async () => [{ id: 2, name: 'ci' }]);
    const resolver = createRunnerGroupResolver({ github: api, maxScopes: 2, now });
    for (const name of ['a', 'b', 'a', 'c', 'a', 'b'])
      expect(await resolver.resolve(org(name), 'CI')).toBe(2);
    expect(Object.fromEntries(calls)).toEqual({ a: 1, b: 2, c: 1 });
  });

  it('remembers for 30 s that a scope has no runner groups to list (404), not longer', async () => {
    const { api, calls } = github(() => Promise.reject(new GitHubCallError('not-found', 404, 'Not Found')));
    const resolver = createRunnerGroupResolver({ github: api, now });
    for (let i = 0; i < 3; i += 1)
      await expect(resolver.resolve(org('gone'), 'ci')).rejects.toThrow('Not Found');
    expect(calls.get('gone')).toBe(1);
    clock += 30_001;
    await expect(resolver.resolve(org('gone'), 'ci')).rejects.toThrow('Not Found');
    expect(calls.get('gone')).toBe(2);
  });

  it('does not remember a timeout or a 5xx: the next caller asks again', async () => {
    const { api, calls } = github(() =>
      Promise.reject(new GitHubCallError('unavailable', 502, 'Bad Gateway')),
    );
    const resolver = createRunnerGroupResolver({ github: api, now });
    await expect(resolver.resolve(org('flaky'), 'ci')).rejects.toThrow();
    await expect(resolver.resolve(org('flaky'), 'ci')).rejects.toThrow();
    expect(calls.get('flaky')).toBe(2);
  });

  it('lists again for an unknown name at most once per missRefreshMs', async () => {
    const { api, calls } = github(async () => [{ id: 2, name: 'ci' }]);
    const resolver = createRunnerGroupResolver({ github: api, missRefreshMs: 30_000, now });
    expect(await resolver.resolve(org('x'), 'new-group')).toBeUndefined();
    expect(await resolver.resolve(org('x'), 'new-group')).toBeUndefined();
    expect(calls.get('x')).toBe(1);
    clock += 30_001;
    expect(await resolver.resolve(org('x'), 'new-group')).toBeUndefined();
    expect(calls.get('x')).toBe(2);
  });
});
