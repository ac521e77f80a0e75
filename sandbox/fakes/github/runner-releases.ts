import express from 'express';
import type { Request, Router } from 'express';
import { GitHubError } from './github-error.js';

/** One release of actions/runner, as a test describes it. */
export interface FakeRunnerRelease {
  /** `2.330.0`; the tag is `v2.330.0`. */
  version: string;
  /** ISO 8601. */
  publishedAt: string;
  prerelease?: boolean;
  draft?: boolean;
}

const RELEASES_DOCS = 'https://docs.github.com/rest/releases/releases';

/**
 * `GET /repos/actions/runner/releases` (newest first, `per_page` up to 100, `page`) and `…/releases/latest` (the
 * newest release that is neither a draft nor a prerelease), public: no token needed. The release objects carry
 * the fields GitHub documents that a reader of versions needs (`id`, `tag_name`, `name`, `draft`, `prerelease`,
 * `created_at`, `published_at`, `html_url`). https://docs.github.com/rest/releases/releases#list-releases
 */
export function createRunnerReleasesRouter(releases: () => readonly FakeRunnerRelease[]): Router {
  const router = express.Router();
  const render = (release: FakeRunnerRelease, index: number) => ({
    id: 100_000 + index,
    tag_name: `v${release.version}`,
    name: `v${release.version}`,
    draft: release.draft ?? false,
    prerelease: release.prerelease ?? false,
    created_at: release.publishedAt,
    published_at: release.draft ? null : release.publishedAt,
    html_url: `https://github.com/actions/runner/releases/tag/v${release.version}`,
    body: `Runner ${release.version}`,
  });
  const newestFirst = () =>
    releases()
      .map(render)
      .sort((a, b) => b.created_at.localeCompare(a.created_at));

  router.get('/repos/actions/runner/releases', (req: Request, res) => {
    const perPage = Number(req.query.per_page ?? 30);
    const pageNumber = Number(req.query.page ?? 1);
    if (!Number.isInteger(perPage) || perPage < 1 || !Number.isInteger(pageNumber) || pageNumber < 1) {
      throw new GitHubError(
        422,
        'Invalid request: per_page and page must be positive integers.',
        RELEASES_DOCS,
      );
    }
    const all = newestFirst();
    const size = Math.min(perPage, 100);
    res.json(all.slice((pageNumber - 1) * size, pageNumber * size));
  });
  router.get('/repos/actions/runner/releases/latest', (_req, res) => {
    const latest = newestFirst().find((r) => !r.draft && !r.prerelease);
    if (!latest) throw new GitHubError(404, 'Not Found', RELEASES_DOCS);
    res.json(latest);
  });
  return router;
}
