import { HttpError, withDeadline } from '#shared';

/** What kind of failure a GitHub call ended in, which decides the status the caller gets. */
export type GitHubFailure =
  'rate-limited' | 'unavailable' | 'timeout' | 'not-found' | 'conflict' | 'invalid' | 'refused' | 'moved';

/**
 * A GitHub call failed. `githubMessage` is GitHub's own `message` (never a credential: the request's
 * headers are not part of it).
 */
export class GitHubCallError extends Error {
  override readonly name = 'GitHubCallError';

  constructor(
    readonly failure: GitHubFailure,
    readonly status: number,
    readonly githubMessage: string,
    /** Seconds to wait before retrying, for `rate-limited`. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`GitHub ${status || 'request'} failed (${failure}): ${githubMessage}`);
  }
}

interface RequestErrorLike {
  status?: unknown;
  name?: unknown;
  cause?: { name?: unknown };
  response?: { data?: unknown; headers?: Record<string, string | number | undefined> };
}

/**
 * How long to wait after secondary rate limits that say neither `retry-after` nor an exhausted budget:
 * GitHub asks for at least one minute, then exponentially longer while the limit persists
 * (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately).
 */
export interface RateLimitBackoff {
  /** Seconds to wait after a limit seen at `nowMs`. Limits seen within the current wait end with it. */
  next(nowMs: number): number;
  /** A call succeeded at `nowMs`: after the current wait, the next limit starts again at one minute. */
  succeeded(nowMs: number): void;
}

/**
 * Starts at `baseSeconds` (60) and doubles, up to `maxSeconds` (900), for each limit that follows the end of
 * the previous wait without a success in between (or within one more wait's length of it). Concurrent
 * requests that hit the same limit share one wait instead of doubling it once each.
 */
export function createRateLimitBackoff(baseSeconds = 60, maxSeconds = 900): RateLimitBackoff {
  let level = -1;
  let waitMs = 0;
  let until = -Infinity;
  let succeededSince = true;
  return {
    next(nowMs) {
      if (nowMs < until) return Math.max(1, Math.ceil((until - nowMs) / 1000));
      const persisting = !succeededSince && nowMs - until <= waitMs;
      level = persisting ? level + 1 : 0;
      const seconds = Math.min(maxSeconds, baseSeconds * 2 ** level);
      waitMs = seconds * 1000;
      until = nowMs + waitMs;
      succeededSince = false;
      return seconds;
    },
    succeeded(nowMs) {
      if (nowMs >= until) succeededSince = true;
    },
  };
}

/**
 * Classifies an error from Octokit. Only GitHub's response body `message` is kept; Octokit's own error
 * message and `request` (which carries the Authorization header) are dropped.
 */
export function toGitHubCallError(
  error: unknown,
  now: () => number = Date.now,
  backoff?: RateLimitBackoff,
): GitHubCallError {
  if (error instanceof GitHubCallError) return error;
  const e = (error ?? {}) as RequestErrorLike;
  const status = typeof e.status === 'number' ? e.status : 0;
  const data = e.response?.data as { message?: unknown } | undefined;
  const raw = typeof data?.message === 'string' ? data.message : '';
  const message = raw.length > 300 ? `${raw.slice(0, 300)}…` : raw;
  const headers = e.response?.headers ?? {};

  const timedOut = (name: unknown) => name === 'AbortError' || name === 'TimeoutError';
  if (timedOut(e.name) || (e.name === 'HttpError' && timedOut(e.cause?.name))) {
    return new GitHubCallError('timeout', 0, 'GitHub did not answer in time');
  }
  const exhausted = String(headers['x-ratelimit-remaining']) === '0';
  if ((status === 403 || status === 429) && (/rate limit/i.test(message) || exhausted)) {
    // GitHub's rule: `retry-after` when given; else the reset, but only when the budget is exhausted; else
    // (a secondary limit) at least a minute, backing off exponentially. The reset of a budget that is not
    // exhausted says nothing about a secondary limit.
    // https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately
    const retryAfter = Number(headers['retry-after']);
    const reset = Number(headers['x-ratelimit-reset']);
    const seconds =
      Number.isFinite(retryAfter) && retryAfter > 0
        ? retryAfter
        : exhausted && Number.isFinite(reset) && reset > 0
          ? Math.max(1, Math.ceil(reset - now() / 1000))
          : (backoff?.next(now()) ?? 60);
    return new GitHubCallError('rate-limited', status, message || 'rate limit exceeded', seconds);
  }
  if (status >= 300 && status < 400) {
    return new GitHubCallError('moved', status, message || `HTTP ${status}`);
  }
  if (status === 0 || status >= 500) {
    return new GitHubCallError('unavailable', status, message || 'GitHub could not be reached');
  }
  if (status === 404) return new GitHubCallError('not-found', status, message || 'Not Found');
  if (status === 409) return new GitHubCallError('conflict', status, message || 'Conflict');
  if (status === 422) return new GitHubCallError('invalid', status, message || 'Validation failed');
  return new GitHubCallError('refused', status, message || `HTTP ${status}`);
}

/**
 * How long a failed look-up (an installation, a scope's runner groups) may be remembered, in ms, or
 * undefined for a failure worth retrying at once. Answers that will not change within a minute (not found,
 * refused, moved, invalid) are kept 30 s, a rate limit for its wait (at most a minute): a flood of requests
 * for a scope the App is not installed on then costs GitHub one call per 30 s, not one per request.
 * Timeouts and 5xx are not kept: the next caller tries again.
 */
export function failureCacheMs(error: unknown): number | undefined {
  const failure = toGitHubCallError(error);
  switch (failure.failure) {
    case 'not-found':
    case 'refused':
    case 'moved':
    case 'invalid':
      return 30_000;
    case 'rate-limited':
      return Math.min(60, failure.retryAfterSeconds ?? 60) * 1000;
    default:
      return undefined;
  }
}

/**
 * What a GitHub failure means to the caller, with the action named for context: the one place a
 * {@link GitHubCallError} becomes an HTTP answer. Anything else (an {@link HttpError} the operation threw, an
 * unexpected error) passes through unchanged.
 */
function gitHubHttpError(error: unknown, action: string): unknown {
  if (!(error instanceof GitHubCallError)) return error;
  switch (error.failure) {
    case 'rate-limited':
      return new HttpError(503, `GitHub rate limit reached while ${action}; retry later`, {
        'Retry-After': String(Math.max(1, Math.ceil(error.retryAfterSeconds ?? 60))),
      });
    case 'timeout':
      return new HttpError(504, `GitHub did not answer in time while ${action}`);
    case 'moved':
      return new HttpError(
        502,
        `GitHub answered with a redirect (HTTP ${error.status}) while ${action}: the scope has moved (a renamed or transferred repository or organization); ask for it by its current name. Redirects are not followed with the proxy's credential`,
      );
    case 'not-found':
      return new HttpError(
        502,
        `GitHub could not find what was needed while ${action}: ${error.githubMessage}`,
      );
    default:
      return new HttpError(502, `GitHub failed while ${action}: ${error.githubMessage}`);
  }
}

/**
 * Runs the GitHub side of `action` within the caller's deadline (504 past it) and turns its failure into
 * the HTTP answer. The work goes on (and fills caches) if the caller gives up.
 */
export async function askGitHub<T>(deadlineMs: number, action: string, work: () => Promise<T>): Promise<T> {
  try {
    return await withDeadline(
      deadlineMs,
      () =>
        new HttpError(
          504,
          `GitHub did not answer within ${deadlineMs < 1000 ? `${deadlineMs} ms` : `${Math.round(deadlineMs / 1000)} s`} while ${action}`,
        ),
      work,
    );
  } catch (error) {
    throw gitHubHttpError(error, action);
  }
}
