/** What kind of failure a GitHub call ended in. */
export type GitHubFailure = 'rate-limited' | 'unavailable' | 'timeout' | 'not-found' | 'refused';

/**
 * A GitHub call failed. `githubMessage` is GitHub's own `message` (never a credential: the request's
 * headers, which carry the App JWT or an installation token, are not part of it).
 */
export class GitHubError extends Error {
  override readonly name = 'GitHubError';

  constructor(
    readonly failure: GitHubFailure,
    readonly status: number,
    readonly githubMessage: string,
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
 * Classifies an error from Octokit, keeping only GitHub's response `message`; Octokit's own message and
 * its `request` (with the Authorization header) are dropped.
 */
export function toGitHubError(error: unknown): GitHubError {
  if (error instanceof GitHubError) return error;
  const e = (error ?? {}) as RequestErrorLike;
  const status = typeof e.status === 'number' ? e.status : 0;
  const data = e.response?.data as { message?: unknown } | undefined;
  const raw = typeof data?.message === 'string' ? data.message : '';
  const message = raw.length > 300 ? `${raw.slice(0, 300)}…` : raw;
  if (e.name === 'AbortError' || e.name === 'TimeoutError') {
    return new GitHubError('timeout', 0, 'GitHub did not answer in time');
  }
  const headers = e.response?.headers ?? {};
  // https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
  if (
    (status === 403 || status === 429) &&
    (/rate limit/i.test(message) || String(headers['x-ratelimit-remaining']) === '0')
  ) {
    return new GitHubError('rate-limited', status, message || 'rate limit exceeded');
  }
  if (status === 0 || status >= 500)
    return new GitHubError('unavailable', status, message || 'GitHub could not be reached');
  if (status === 404) return new GitHubError('not-found', status, message || 'Not Found');
  return new GitHubError('refused', status, message || `HTTP ${status}`);
}
