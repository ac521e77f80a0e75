import { createTokenCache } from '#token-proxy';
import type { RunnerToken } from '#token-proxy';

describe('createTokenCache', () => {
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const now = () => clock;
  const tokenExpiringIn = (seconds: number, token = 'T'): RunnerToken => ({
    token,
    expiresAt: new Date(clock + seconds * 1000).toISOString(),
  });

  it('shares one fetch among concurrent requests and reuses the token until it nears expiry', async () => {
    const cache = createTokenCache({ minRemainingSeconds: 900, now });
    let fetches = 0;
    const fetch = async () => {
      fetches += 1;
      return tokenExpiringIn(3600, `T${fetches}`);
    };
    const first = await Promise.all(Array.from({ length: 100 }, () => cache.get('registration:o', fetch)));
    expect(fetches).toBe(1);
    expect(new Set(first.map((t) => t.token))).toEqual(new Set(['T1']));

    clock += (3600 - 901) * 1000;
    expect((await cache.get('registration:o', fetch)).token).toBe('T1');
    clock += 2000;
    expect((await cache.get('registration:o', fetch)).token).toBe('T2');
    expect(fetches).toBe(2);
  });

  // Issue 15 §7: with match: scopes the keys are whatever allowed scopes callers ask for.
  it('keeps at most maxEntries tokens, dropping the least recently used', async () => {
    const cache = createTokenCache({ minRemainingSeconds: 900, maxEntries: 2, now });
    let fetches = 0;
    const fetch = async () => {
      fetches += 1;
      return tokenExpiringIn(3600, `T${fetches}`);
    };
    await cache.get('registration:a', fetch);
    await cache.get('registration:b', fetch);
    await cache.get('registration:a', fetch);
    await cache.get('registration:c', fetch);
    expect(fetches).toBe(3);
    expect((await cache.get('registration:a', fetch)).token).toBe('T1');
    expect((await cache.get('registration:b', fetch)).token).toBe('T4');
  });

  it('keeps keys apart', async () => {
    const cache = createTokenCache({ minRemainingSeconds: 900, now });
    const a = await cache.get('registration:a', async () => tokenExpiringIn(3600, 'A'));
    const b = await cache.get('remove:a', async () => tokenExpiringIn(3600, 'B'));
    expect([a.token, b.token]).toEqual(['A', 'B']);
  });

  it('does not cache a failure', async () => {
    const cache = createTokenCache({ minRemainingSeconds: 900, now });
    await expect(cache.get('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    await expect(cache.get('k', async () => tokenExpiringIn(3600, 'ok'))).resolves.toMatchObject({
      token: 'ok',
    });
  });

  it('fetches every time with reuse off (0)', async () => {
    const cache = createTokenCache({ minRemainingSeconds: 0, now });
    let fetches = 0;
    await Promise.all(
      Array.from({ length: 5 }, () => cache.get('k', async () => tokenExpiringIn(3600, `T${++fetches}`))),
    );
    expect(fetches).toBe(5);
  });
});
