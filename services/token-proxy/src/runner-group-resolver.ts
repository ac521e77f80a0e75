import type { GitHubRunnerApi } from './github-runner-api.js';
import { scopeCacheKey } from './scope.js';
import type { Scope } from './scope.js';

/** Turns a runner group's name into the id generate-jitconfig takes. */
export interface RunnerGroupResolver {
  /** The group's id, or undefined when the scope has no group of that name. */
  resolve(scope: Scope, name: string): Promise<number | undefined>;
}

export interface RunnerGroupResolverOptions {
  github: GitHubRunnerApi;
  /** How long a scope's group list is trusted. */
  ttlMs?: number;
  /** An unknown name triggers a fresh list at most this often per scope (a group may just have been made). */
  missRefreshMs?: number;
  now?: () => number;
}

/**
 * Caches each scope's runner groups, so a storm of JIT requests costs one list call per scope. Concurrent
 * lookups share one fetch; a failed fetch is not cached.
 */
export function createRunnerGroupResolver(options: RunnerGroupResolverOptions): RunnerGroupResolver {
  const now = options.now ?? Date.now;
  const ttlMs = options.ttlMs ?? 10 * 60_000;
  const missRefreshMs = options.missRefreshMs ?? 30_000;
  const cache = new Map<string, { groups: Promise<Map<string, number>>; fetchedAt: number }>();

  const load = (scope: Scope) => {
    const key = scopeCacheKey(scope);
    const groups = options.github
      .listRunnerGroups(scope)
      .then((list) => new Map(list.map((group) => [group.name.toLowerCase(), group.id])));
    const entry = { groups, fetchedAt: now() };
    cache.set(key, entry);
    groups.catch(() => {
      if (cache.get(key) === entry) cache.delete(key);
    });
    return entry;
  };

  return {
    async resolve(scope, name) {
      const wanted = name.toLowerCase();
      let entry = cache.get(scopeCacheKey(scope));
      if (!entry || now() - entry.fetchedAt > ttlMs) entry = load(scope);
      const id = (await entry.groups).get(wanted);
      if (id !== undefined || now() - entry.fetchedAt < missRefreshMs) return id;
      return (await load(scope).groups).get(wanted);
    },
  };
}
