import crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';

/** The certificates could not be fetched and none are cached: tokens cannot be checked at all. */
export class SigningKeysUnavailableError extends Error {
  override readonly name = 'SigningKeysUnavailableError';
}

/** Public keys by key id (`kid`), parsed once per fetched certificate set. */
export type SigningKeys = ReadonlyMap<string, KeyObject>;

export interface SigningKeyCacheOptions {
  /** The PEM certificate map URL (Google's `https://www.googleapis.com/oauth2/v1/certs`). */
  url: string;
  /** Deadline of one fetch, in milliseconds. Default 5000. */
  fetchTimeoutMs?: number;
  /**
   * Least time between two fetches made because a token names a key id the cache does not hold, in
   * milliseconds. Default 60000: a flood of tokens with made-up key ids costs one fetch a minute.
   */
  unknownKeyRefreshIntervalMs?: number;
  /** Least time between two fetches after a failed one, in milliseconds. Default 5000. */
  retryAfterFailureMs?: number;
  /** Used when the answer has no `max-age`, in milliseconds. Default one hour. */
  defaultMaxAgeMs?: number;
  /** Milliseconds since the epoch; injected in tests. */
  now?: () => number;
  fetch?: typeof globalThis.fetch;
}

/** Google's signing certificates, fetched with a deadline and kept while a refresh fails. */
export interface SigningKeyCache {
  /**
   * The keys to check a token signed with `kid`. Fetches when nothing is cached, when the cached set has
   * expired, or (at most once per `unknownKeyRefreshIntervalMs`) when `kid` is not in it: Google publishes a
   * new key before it signs with it, so an unknown `kid` is the first sign of a rotation. A failed refresh
   * keeps the expired set in service.
   *
   * @throws SigningKeysUnavailableError when no set was ever fetched and this fetch failed.
   */
  keysFor(kid: string): Promise<SigningKeys>;
}

const pemMap = z.record(z.string(), z.string());

/** `max-age` of a Cache-Control header, in milliseconds, or undefined. */
export function maxAgeMs(cacheControl: string | null): number | undefined {
  const match = /(?:^|,)\s*max-age\s*=\s*(\d+)\s*(?:,|$)/i.exec(cacheControl ?? '');
  return match ? Number(match[1]) * 1000 : undefined;
}

function parseKeys(pems: Record<string, string>): SigningKeys {
  const keys = new Map<string, KeyObject>();
  for (const [kid, pem] of Object.entries(pems)) {
    try {
      keys.set(kid, crypto.createPublicKey(pem));
    } catch {
      // An entry that does not parse cannot verify anything; leaving it out refuses its tokens.
    }
  }
  return keys;
}

/**
 * Builds the cache. Google rotates its signing keys about every two weeks and publishes a new one before it
 * signs with it; the endpoint answers with a Cache-Control `max-age` of hours
 * (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken). One fetch is
 * shared by all requests waiting for it, so a boot storm costs one fetch.
 */
export function createSigningKeyCache(options: SigningKeyCacheOptions): SigningKeyCache {
  const now = options.now ?? Date.now;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 5000;
  const unknownKeyRefreshIntervalMs = options.unknownKeyRefreshIntervalMs ?? 60_000;
  const retryAfterFailureMs = options.retryAfterFailureMs ?? 5000;
  const defaultMaxAgeMs = options.defaultMaxAgeMs ?? 3_600_000;

  let keys: SigningKeys | undefined;
  let expiresAt = 0;
  let lastAttemptAt = -Infinity;
  let lastFailed = false;
  let inFlight: Promise<void> | undefined;

  const fetchKeys = async (): Promise<void> => {
    lastAttemptAt = now();
    try {
      const res = await fetchImpl(options.url, {
        signal: AbortSignal.timeout(fetchTimeoutMs),
        headers: { accept: 'application/json' },
        redirect: 'error',
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const parsed = pemMap.parse(await res.json());
      keys = parseKeys(parsed);
      expiresAt = now() + (maxAgeMs(res.headers.get('cache-control')) ?? defaultMaxAgeMs);
      lastFailed = false;
    } catch (error) {
      lastFailed = true;
      throw error;
    }
  };

  const refresh = (): Promise<void> => {
    inFlight ??= fetchKeys().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  // A refresh that fails while an older set is cached is not the caller's problem: keep serving that set.
  const refreshKeepingStale = async (): Promise<void> => {
    try {
      await refresh();
    } catch (error) {
      if (!keys) {
        throw new SigningKeysUnavailableError(
          `could not fetch the token signing certificates: ${(error as Error).name === 'TimeoutError' ? `no answer within ${fetchTimeoutMs} ms` : (error as Error).message}`,
        );
      }
    }
  };

  return {
    async keysFor(kid) {
      const sinceAttempt = now() - lastAttemptAt;
      const mayRetry = !lastFailed || sinceAttempt >= retryAfterFailureMs;
      if (!keys) {
        if (!mayRetry && !inFlight) {
          throw new SigningKeysUnavailableError('could not fetch the token signing certificates recently');
        }
        await refreshKeepingStale();
      } else if (now() >= expiresAt && mayRetry) {
        await refreshKeepingStale();
      } else if (!keys.has(kid) && sinceAttempt >= unknownKeyRefreshIntervalMs) {
        await refreshKeepingStale();
      }
      return keys!;
    },
  };
}
