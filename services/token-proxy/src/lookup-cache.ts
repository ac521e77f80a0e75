import { LRUCache } from 'lru-cache';

/** Remembered answers of a look-up by key (an installation id, a scope's runner groups). */
export interface LookupCache<T> {
  /**
   * The answer for `key`: remembered if it was loaded at most `maxAgeMs` ago (default: the cache's TTL) and
   * has not expired, else `load()`'s. Concurrent callers share one pending load.
   */
  get(key: string, load: () => Promise<T>, maxAgeMs?: number): Promise<T>;
}

export interface LookupCacheOptions {
  /** How many keys are kept; the least recently used goes first. */
  maxEntries: number;
  /** How long an answer is kept, in ms. */
  ttlMs: number;
  /** How long a failure is kept, in ms, or undefined to forget it at once (the next caller tries again). */
  failureTtlMs: (error: unknown) => number | undefined;
  now?: () => number;
}

/**
 * A bounded cache of look-ups that also remembers failures briefly, so neither the scopes callers ask for
 * nor a flood of requests that fail the same way can make it grow or cost one outside call each.
 */
export function createLookupCache<T>(options: LookupCacheOptions): LookupCache<T> {
  const now = options.now ?? Date.now;
  const entries = new LRUCache<string, { value: Promise<T>; loadedAt: number; expiresAt: number }>({
    max: options.maxEntries,
  });
  return {
    get(key, load, maxAgeMs = options.ttlMs) {
      const cached = entries.get(key);
      const at = now();
      if (cached && at < cached.expiresAt && at - cached.loadedAt <= maxAgeMs) return cached.value;
      const entry = { value: load(), loadedAt: at, expiresAt: at + options.ttlMs };
      entries.set(key, entry);
      entry.value.catch((error: unknown) => {
        if (entries.peek(key) !== entry) return;
        const keepMs = options.failureTtlMs(error);
        if (keepMs === undefined) entries.delete(key);
        else entry.expiresAt = now() + keepMs;
      });
      return entry.value;
    },
  };
}
