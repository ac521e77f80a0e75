import { HttpError, withDeadline } from '#shared';

/** What kind of failure a GitHub call ended in, which decides the status the caller gets. */
export type GitHubFailure =
  'rate-limited' | 'unavailable' | 'timeout' | 'not-found' | 'conflict' | 'invalid' | 'refused';

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
  response?: { data?: unknown; headers?: Record<string, string | number | undefined> };
}

/**
 * Classifies an error from Octokit. Only GitHub's response body `message` is kept; Octokit's own error
 * message and `request` (which carries the Authorization header) are dropped.
 */
export function toGitHubCallError(error: unknown, now: () => number = Date.now): GitHubCallError {
  if (error instanceof GitHubCallError) return error;
  const e = (error ?? {}) as RequestErrorLike;
  const status = typeof e.status === 'number' ? e.status : 0;
  const data = e.response?.data as { message?: unknown } | undefined;
  const raw = typeof data?.message === 'string' ? data.message : '';
  const message = raw.length > 300 ? `${raw.slice(0, 300)}…` : raw;
  const headers = e.response?.headers ?? {};

  if (e.name === 'AbortError' || e.name === 'TimeoutError') {
    return new GitHubCallError('timeout', 0, 'GitHub did not answer in time');
  }
  const rateLimited =
    (status === 403 || status === 429) &&
    (/rate limit/i.test(message) || String(headers['x-ratelimit-remaining']) === '0');
  if (rateLimited) {
    const retryAfter = Number(headers['retry-after']);
    const reset = Number(headers['x-ratelimit-reset']);
    const seconds =
      Number.isFinite(retryAfter) && retryAfter > 0
        ? retryAfter
        : Number.isFinite(reset) && reset > 0
          ? Math.max(1, Math.ceil(reset - now() / 1000))
          : 60;
    return new GitHubCallError('rate-limited', status, message || 'rate limit exceeded', seconds);
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
        new HttpError(504, `GitHub did not answer within ${Math.round(deadlineMs / 1000)} s while ${action}`),
      work,
    );
  } catch (error) {
    throw gitHubHttpError(error, action);
  }
}
