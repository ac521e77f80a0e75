import { Octokit } from '@octokit/core';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';

describe('fake GitHub: actions/runner releases', () => {
  let github: FakeGitHub;
  beforeAll(async () => {
    github = await startFakeGitHub();
    github.runnerReleases = [
      { version: '2.329.0', publishedAt: '2026-09-01T10:00:00Z' },
      { version: '2.331.0', publishedAt: '2026-11-20T10:00:00Z' },
      { version: '2.332.0', publishedAt: '2026-11-25T10:00:00Z', prerelease: true },
      { version: '2.330.0', publishedAt: '2026-10-15T10:00:00Z' },
    ];
  });
  afterAll(() => github.close());

  it('lists releases newest first without a token, paged', async () => {
    const octokit = new Octokit({ baseUrl: github.baseUrl });
    const first = await octokit.request('GET /repos/{owner}/{repo}/releases', {
      owner: 'actions',
      repo: 'runner',
      per_page: 3,
    });
    expect(first.data.map((r) => [r.tag_name, r.prerelease])).toEqual([
      ['v2.332.0', true],
      ['v2.331.0', false],
      ['v2.330.0', false],
    ]);
    expect(first.data[1]?.published_at).toBe('2026-11-20T10:00:00Z');
    const second = await octokit.request('GET /repos/{owner}/{repo}/releases', {
      owner: 'actions',
      repo: 'runner',
      per_page: 3,
      page: 2,
    });
    expect(second.data.map((r) => r.tag_name)).toEqual(['v2.329.0']);
    expect(
      github.controls.callsTo('GET', '/repos/actions/runner/releases')[0]?.headers.authorization,
    ).toBeUndefined();
  });

  it('answers the latest full release', async () => {
    const octokit = new Octokit({ baseUrl: github.baseUrl });
    const latest = await octokit.request('GET /repos/{owner}/{repo}/releases/latest', {
      owner: 'actions',
      repo: 'runner',
    });
    expect(latest.data.tag_name).toBe('v2.331.0');
  });

  it('answers 404 for the latest release when there is none', async () => {
    const empty = await startFakeGitHub();
    try {
      const octokit = new Octokit({ baseUrl: empty.baseUrl });
      await expect(
        octokit.request('GET /repos/{owner}/{repo}/releases/latest', { owner: 'actions', repo: 'runner' }),
      ).rejects.toMatchObject({ status: 404 });
    } finally {
      await empty.close();
    }
  });
});
