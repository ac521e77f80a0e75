/**
 * The autoscaler's GitHub writes wait for their turn in one write queue (plugin-throttling, spaced
 * `writeIntervalMs` apart). A request's deadline must start when it is sent: started when it joined the
 * queue, a write queued behind a few others timed out unsent.
 */
import { createGitHubAppApi } from '#autoscaler';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';
import { captureLogs } from '#test-support/log-capture';

let github: FakeGitHub;
let installationId: number;
beforeAll(async () => {
  github = await startFakeGitHub();
  github.addOrg('my-org');
  installationId = github.addInstallation({
    account: 'my-org',
    permissions: { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' },
  });
});
afterAll(() => github.close());

const ORG = { kind: 'org', org: 'my-org' } as const;

it('deletes every runner of a batch whose queue takes longer to drain than one request may take', async () => {
  const requestTimeoutMs = 2000;
  const writeIntervalMs = 1000;
  const api = createGitHubAppApi({
    app: { appId: String(github.app.id), privateKey: github.app.privateKeyPkcs1Pem, installationId },
    baseUrl: github.baseUrl,
    logger: captureLogs().logger,
    requestTimeoutMs,
    writeIntervalMs,
    retries: 0,
  });
  // The last of four writes starts about 3 s after the first: past a deadline started on arrival.
  const runners = Array.from({ length: 4 }, (_, i) => github.addRunner(ORG, { name: `gh-cpu-queued-${i}` }));
  const results = await Promise.allSettled(runners.map((runner) => api.deleteRunner(ORG, runner.id)));
  expect(results.map((result) => result.status)).toEqual(Array(4).fill('fulfilled'));
  expect(github.listRunners(ORG)).toEqual([]);
}, 30_000);
