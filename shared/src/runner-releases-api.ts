import { Octokit } from '@octokit/core';
import { z } from 'zod';
import { withDeadline } from './with-deadline.js';
import { parseRunnerVersion } from './runner-version-deadline.js';
import type { RunnerRelease } from './runner-version-deadline.js';

/** The releases could not be read and none are cached. */
export class RunnerReleasesError extends Error {
  override readonly name = 'RunnerReleasesError';
}

/** The releases as last read. */
export interface RunnerReleaseList {
  /** Full releases only (no drafts, no prereleases), newest first. */
  releases: RunnerRelease[];
  /** When they were read (ms). */
  fetchedAt: number;
  /** Set when the last refresh failed and this is the list from before. */
  staleBecause?: string;
}

export interface RunnerReleasesApi {
  /** The cached list, read again once older than `cacheMs`. @throws RunnerReleasesError with nothing cached. */
  releases(): Promise<RunnerReleaseList>;
}

export interface RunnerReleasesApiOptions {
  /** GitHub's REST API (`https://api.github.com`, or GHES `https://HOST/api/v3`). */
  baseUrl: string;
  /** How long a list is kept, in ms (default six hours): releases come every few weeks. */
  cacheMs?: number;
  /** Least time between two attempts after a failure, in ms. Default 5 minutes. */
  retryAfterFailureMs?: number;
  /** Deadline of one read, in ms. Default 5000. */
  timeoutMs?: number;
  /** The `User-Agent` GitHub asks every caller to send; default `gce-github-runners`. */
  userAgent?: string;
  now?: () => number;
  fetch?: typeof globalThis.fetch;
}

const releaseSchema = z.object({
  tag_name: z.string(),
  draft: z.boolean(),
  prerelease: z.boolean(),
  published_at: z.string().nullable(),
});

/**
 * Reads actions/runner's releases, without a token: the repository is public, and this service holds no GitHub
 * credential. One page of the newest 100 covers years of releases. Unauthenticated requests may use 60 an
 * hour per IP address (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api); this
 * makes about one every `cacheMs`, shared by every viewer, and keeps the last list while GitHub fails.
 * https://docs.github.com/rest/releases/releases#list-releases
 */
export function createRunnerReleasesApi(options: RunnerReleasesApiOptions): RunnerReleasesApi {
  const now = options.now ?? Date.now;
  const cacheMs = options.cacheMs ?? 6 * 3_600_000;
  const retryAfterFailureMs = options.retryAfterFailureMs ?? 300_000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const octokit = new Octokit({
    baseUrl: options.baseUrl,
    userAgent: options.userAgent ?? 'gce-github-runners',
    ...(options.fetch && { request: { fetch: options.fetch } }),
  });
  let cached: RunnerReleaseList | undefined;
  let lastFailureAt = -Infinity;
  let lastFailure = '';
  let inFlight: Promise<RunnerReleaseList> | undefined;

  const read = async (): Promise<RunnerReleaseList> => {
    try {
      const response = await withDeadline(
        timeoutMs,
        () => new RunnerReleasesError(`GitHub did not answer within ${timeoutMs} ms`),
        () =>
          octokit.request('GET /repos/{owner}/{repo}/releases', {
            owner: 'actions',
            repo: 'runner',
            per_page: 100,
            headers: { 'x-github-api-version': '2022-11-28' },
            request: { signal: AbortSignal.timeout(timeoutMs) },
          }),
      );
      const parsed = z.array(releaseSchema).safeParse(response.data);
      if (!parsed.success)
        throw new RunnerReleasesError('GitHub answered something that is not a release list');
      const releases = parsed.data.flatMap((release): RunnerRelease[] => {
        const version = release.tag_name.replace(/^v/, '');
        if (release.draft || release.prerelease || release.published_at === null) return [];
        if (!parseRunnerVersion(version)) return [];
        return [{ version, publishedAt: release.published_at }];
      });
      cached = { releases, fetchedAt: now() };
      return cached;
    } catch (error) {
      lastFailureAt = now();
      const status = (error as { status?: unknown }).status;
      lastFailure =
        error instanceof RunnerReleasesError
          ? error.message
          : typeof status === 'number'
            ? `GitHub answered ${status}`
            : 'GitHub could not be reached';
      if (cached) return { ...cached, staleBecause: lastFailure };
      throw new RunnerReleasesError(`cannot read the actions/runner releases: ${lastFailure}`);
    }
  };

  return {
    releases: async () => {
      const fresh = cached !== undefined && now() - cached.fetchedAt < cacheMs;
      const mayRetry = now() - lastFailureAt >= retryAfterFailureMs;
      if (fresh) return cached!;
      if (!mayRetry) {
        if (cached) return { ...cached, staleBecause: lastFailure };
        throw new RunnerReleasesError(`cannot read the actions/runner releases: ${lastFailure}`);
      }
      inFlight ??= read().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
  };
}
