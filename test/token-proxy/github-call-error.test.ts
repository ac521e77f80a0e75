import { GitHubCallError } from '../../services/token-proxy/src/github-call-error.js';
import {
  askGitHub,
  createRateLimitBackoff,
  failureCacheMs,
  toGitHubCallError,
} from '../../services/token-proxy/src/github-call-error.js';

const NOW = Date.parse('2026-11-29T12:00:00Z');
const now = () => NOW;
const SECONDARY = 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.';

/** An error shaped as @octokit/request-error's RequestError. */
const requestError = (status: number, message: string, headers: Record<string, string> = {}) => ({
  name: 'HttpError',
  status,
  response: { data: { message }, headers },
});

// Issue 14 §3: https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately
describe('toGitHubCallError on a rate limit', () => {
  const reset = String(NOW / 1000 + 45 * 60);

  it.each([
    [
      'a secondary limit with 4870 left, the reset 45 minutes ahead, no retry-after: one minute',
      requestError(403, SECONDARY, { 'x-ratelimit-remaining': '4870', 'x-ratelimit-reset': reset }),
      60,
    ],
    [
      'a secondary limit with retry-after: retry-after',
      requestError(403, SECONDARY, {
        'retry-after': '7',
        'x-ratelimit-remaining': '4870',
        'x-ratelimit-reset': reset,
      }),
      7,
    ],
    [
      'an exhausted budget (remaining 0): until the reset',
      requestError(403, 'API rate limit exceeded for installation ID 1.', {
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': reset,
      }),
      2700,
    ],
    ['a 429 secondary limit without headers: one minute', requestError(429, SECONDARY), 60],
  ])('waits for %s', (_, error, seconds) => {
    const failure = toGitHubCallError(error, now, createRateLimitBackoff());
    expect(failure).toMatchObject({ failure: 'rate-limited', retryAfterSeconds: seconds });
  });

  it('answers the caller 503 with that Retry-After', async () => {
    const error = requestError(403, SECONDARY, {
      'x-ratelimit-remaining': '4870',
      'x-ratelimit-reset': reset,
    });
    await expect(
      askGitHub(1000, 'creating a registration token for my-org', () =>
        Promise.reject(toGitHubCallError(error, now, createRateLimitBackoff())),
      ),
    ).rejects.toMatchObject({ status: 503, headers: { 'Retry-After': '60' } });
  });
});

describe('createRateLimitBackoff', () => {
  it('starts at one minute and doubles while the limit persists, up to 15 minutes', () => {
    const backoff = createRateLimitBackoff();
    let t = NOW;
    const waits: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      const seconds = backoff.next(t);
      waits.push(seconds);
      t += seconds * 1000; // the caller waits as told, and is limited again
    }
    expect(waits).toEqual([60, 120, 240, 480, 900, 900]);
  });

  it('gives requests limited during one wait the rest of that wait, without doubling it', () => {
    const backoff = createRateLimitBackoff();
    expect(backoff.next(NOW)).toBe(60);
    expect(backoff.next(NOW + 10_000)).toBe(50);
    expect(backoff.next(NOW + 59_500)).toBe(1);
    expect(backoff.next(NOW + 60_000)).toBe(120);
  });

  it('starts again at one minute after a success, or after a quiet spell', () => {
    const backoff = createRateLimitBackoff();
    expect(backoff.next(NOW)).toBe(60);
    backoff.succeeded(NOW + 61_000);
    expect(backoff.next(NOW + 62_000)).toBe(60);
    expect(backoff.next(NOW + 62_000 + 60_000)).toBe(120);
    expect(backoff.next(NOW + 62_000 + 60_000 + 120_000 + 121_000)).toBe(60);
  });
});

describe('toGitHubCallError on other answers', () => {
  it.each([
    ['a 307 (a renamed repository)', requestError(307, ''), 'moved'],
    ['a 301', requestError(301, 'Moved Permanently'), 'moved'],
    [
      'a fetch that timed out, wrapped by Octokit',
      { name: 'HttpError', status: 500, cause: { name: 'TimeoutError' } },
      'timeout',
    ],
    ['an aborted fetch', { name: 'AbortError', status: 500 }, 'timeout'],
    ['a 409', requestError(409, 'Already exists'), 'conflict'],
  ])('classifies %s', (_, error, failure) => {
    expect(toGitHubCallError(error, now).failure).toBe(failure);
  });
});

describe('failureCacheMs', () => {
  it.each([
    ['not found (the App is not installed)', new GitHubCallError('not-found', 404, 'Not Found'), 30_000],
    ['moved', new GitHubCallError('moved', 307, 'HTTP 307'), 30_000],
    ['refused', new GitHubCallError('refused', 403, 'Forbidden'), 30_000],
    ['rate limited for 20 s', new GitHubCallError('rate-limited', 403, 'limit', 20), 20_000],
    [
      'rate limited for an hour (kept a minute)',
      new GitHubCallError('rate-limited', 403, 'limit', 3600),
      60_000,
    ],
    ['a timeout', new GitHubCallError('timeout', 0, 'slow'), undefined],
    ['a 5xx', new GitHubCallError('unavailable', 502, 'Bad Gateway'), undefined],
  ])('keeps %s for %p ms', (_, error, ms) => {
    expect(failureCacheMs(error)).toBe(ms);
  });
});
