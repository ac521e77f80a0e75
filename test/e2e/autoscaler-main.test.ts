import path from 'node:path';
import { Webhooks } from '@octokit/webhooks';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import type { FakeMetadataServer } from '#fakes/metadata-server';
import { freePort, spawnNode } from '#sandbox/node-process';
import { repoRoot } from '#sandbox/sandbox';
import {
  POOLS,
  PROJECT,
  SCHEDULER,
  startAutoscalerFakes,
  WEBHOOK_SECRET,
  workflowJob,
} from '../autoscaler/harness.js';
import type { AutoscalerFakes } from '../autoscaler/harness.js';

/**
 * The built entry point (`npm run start:autoscaler`), as Cloud Run runs it: configuration from the
 * environment, Compute credentials from the metadata server (Application Default Credentials).
 */
const ENTRY = path.join(repoRoot(), 'dist/services/autoscaler/src/main.js');

let fakes: AutoscalerFakes;
let metadata: FakeMetadataServer;
beforeAll(async () => {
  fakes = await startAutoscalerFakes();
  metadata = await startFakeMetadataServer({
    issuer: fakes.issuer,
    vm: {
      projectId: PROJECT.projectId,
      projectNumber: Number(PROJECT.projectNumber),
      zone: 'us-central1-a',
      instanceId: '4000000000000000002',
      instanceName: 'autoscaler',
      serviceAccountEmail: `autoscaler@${PROJECT.projectId}.iam.gserviceaccount.com`,
      attributes: {},
    },
  });
});
afterAll(async () => {
  await Promise.all([fakes.close(), metadata.close()]);
});

function environment(port: number): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    CLOUDSDK_CONFIG: '/nonexistent/gcloud',
    GCE_METADATA_HOST: metadata.host,
    PORT: String(port),
    AUTH_AUDIENCE: `http://127.0.0.1:${port}`,
    ID_TOKEN_CERTS_URL: fakes.issuer.certsUrl,
    GITHUB_API_URL: fakes.github.baseUrl,
    RUNNER_RELEASES_API_URL: fakes.github.baseUrl,
    GITHUB_APP_ID: String(fakes.github.app.id),
    GITHUB_APP_PRIVATE_KEY: fakes.github.app.privateKeyPkcs1Pem,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    POOLS: JSON.stringify(POOLS),
    COMPUTE_API_ENDPOINT: fakes.compute.url,
    RECONCILE_CALLERS: SCHEDULER,
    BATCH_WINDOW_MS: '100',
    LOG_LEVEL: 'info',
  };
}

it('refuses to start with a bad configuration, listing every problem and no secret', async () => {
  const port = await freePort();
  const env = environment(port);
  const service = spawnNode(ENTRY, {
    ...env,
    GITHUB_WEBHOOK_SECRET: 'short',
    GITHUB_APP_PRIVATE_KEY: 'not-a-key-but-secret-looking',
    POOLS: '{"pools": [{"name": "x"}]}',
  });
  expect(await service.exited).toBe(1);
  const output = service.output();
  expect(output).toContain('GITHUB_WEBHOOK_SECRET: must be at least 16 characters');
  expect(output).toContain('GITHUB_APP_PRIVATE_KEY: is not an RSA private key');
  expect(output).toContain('POOLS: pools[0] ("x").scopes');
  expect(output).not.toContain('not-a-key-but-secret-looking');
  expect(output).not.toContain('short,');
}, 30_000);

it('starts, creates a VM for a signed queued delivery with its own Compute credentials, and stops on SIGTERM', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const service = spawnNode(ENTRY, environment(port));
  try {
    for (let ready = false; !ready;) {
      ready = await fetch(`${url}/healthz`).then(
        (res) => res.ok,
        () => false,
      );
      if (service.child.exitCode !== null) throw new Error(`autoscaler exited:\n${service.output()}`);
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const body = JSON.stringify(workflowJob({ id: 4_200_000_001 }));
    const response = await fetch(`${url}/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'workflow_job',
        'x-github-delivery': 'main-test',
        'x-hub-signature-256': await new Webhooks({ secret: WEBHOOK_SECRET }).sign(body),
      },
      body,
    });
    expect(response.status).toBe(200);
    expect(fakes.migs.cpu.members.has('gh-cpu-4200000001')).toBe(true);
    const [call] = fakes.compute.controls.callsTo('POST', '/createInstances');
    expect(metadata.accessTokens).toContain(String(call?.headers.authorization).replace(/^Bearer /, ''));

    const unsigned = await fetch(`${url}/webhook`, { method: 'POST', body });
    expect(unsigned.status).toBe(401);
    const anonymous = await fetch(`${url}/reconcile`, { method: 'POST' });
    expect(anonymous.status).toBe(401);

    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    const output = service.output();
    expect(output).toContain('autoscaler listening');
    expect(output).not.toContain(WEBHOOK_SECRET);
    expect(output).not.toContain('PRIVATE KEY');
  } finally {
    await service.stop(1000);
  }
}, 60_000);
