import { failureCacheMs } from './github-call-error.js';
import type { GitHubRunnerApi } from './github-runner-api.js';
import { createLookupCache } from './lookup-cache.js';
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
  /** How many scopes' lists are kept (least recently used first out). Default 1000. */
  maxScopes?: number;
  now?: () => number;
}

/**
 * Caches each scope's runner groups, so a storm of JIT requests costs one list call per scope. Concurrent
 * lookups share one fetch. The cache holds at most `maxScopes` scopes; a failure GitHub will repeat (a scope
 * that does not exist, a rate limit) is remembered briefly, a transient one (timeout, 5xx) not at all.
 */
export function createRunnerGroupResolver(options: RunnerGroupResolverOptions): RunnerGroupResolver {
  const missRefreshMs = options.missRefreshMs ?? 30_000;
  const lists = createLookupCache<Map<string, number>>({
    maxEntries: options.maxScopes ?? 1000,
    ttlMs: options.ttlMs ?? 10 * 60_000,
    failureTtlMs: failureCacheMs,
    ...(options.now === undefined ? {} : { now: options.now }),
  });

  return {
    async resolve(scope, name) {
      const wanted = name.toLowerCase();
      const key = scopeCacheKey(scope);
      const load = () =>
        options.github
          .listRunnerGroups(scope)
          .then((list) => new Map(list.map((group) => [group.name.toLowerCase(), group.id])));
      const id = (await lists.get(key, load)).get(wanted);
      if (id !== undefined) return id;
      // Unknown: fetch again unless the list is younger than missRefreshMs.
      return (await lists.get(key, load, missRefreshMs)).get(wanted);
    },
  };
}
