import { LRUCache } from 'lru-cache';
import type { RunnerToken } from './github-runner-api.js';

export interface TokenCacheOptions {
  /** Reuse a token while at least this many seconds of its life are left; 0 turns reuse off. */
  minRemainingSeconds: number;
  /** How many tokens are kept (one per scope and kind; the least recently used goes first). Default 1000. */
  maxEntries?: number;
  now?: () => number;
}

/** Hands out cached registration and remove tokens; see {@link createTokenCache}. */
export interface TokenCache {
  /** The cached token for `key` if it has enough life left, else one from `fetch`. */
  get(key: string, fetch: () => Promise<RunnerToken>): Promise<RunnerToken>;
  /** The cached token for `key` if it has enough life left (never with reuse off), without fetching. */
  fresh(key: string): RunnerToken | undefined;
}

/**
 * A registration token may register any number of runners for an hour, so a boot storm needs one GitHub
 * call per scope, not one per VM. Concurrent requests for a key share one fetch; a fetched token is reused
 * until less than `minRemainingSeconds` of it is left. A failed fetch is not cached. With reuse off, every
 * request fetches its own token (the upstream proxy's behaviour).
 */
export function createTokenCache(options: TokenCacheOptions): TokenCache {
  const now = options.now ?? Date.now;
  const minRemainingMs = options.minRemainingSeconds * 1000;
  // Bounded: with `match:` scopes the keys are whatever allowed scopes callers ask for.
  const entries = new LRUCache<string, { token: RunnerToken; expiresMs: number }>({
    max: options.maxEntries ?? 1000,
  });
  const inFlight = new Map<string, Promise<RunnerToken>>();

  const fresh = (key: string): RunnerToken | undefined => {
    if (minRemainingMs === 0) return undefined;
    const cached = entries.get(key);
    return cached && cached.expiresMs - now() >= minRemainingMs ? cached.token : undefined;
  };

  return {
    fresh,
    get(key, fetch) {
      if (minRemainingMs === 0) return fetch();
      const cached = fresh(key);
      if (cached) return Promise.resolve(cached);
      let pending = inFlight.get(key);
      if (!pending) {
        pending = fetch().then(
          (token) => {
            const expiresMs = Date.parse(token.expiresAt);
            if (Number.isFinite(expiresMs)) entries.set(key, { token, expiresMs });
            inFlight.delete(key);
            return token;
          },
          (error: unknown) => {
            inFlight.delete(key);
            throw error;
          },
        );
        inFlight.set(key, pending);
      }
      return pending;
    },
  };
}
