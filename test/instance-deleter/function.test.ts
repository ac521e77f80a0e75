import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import request from 'supertest';
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeInstance, FakeMig } from '#fakes/compute-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import type { FakeMetadataServer } from '#fakes/metadata-server';
import { isolateGoogleClientEnv } from '#test-support/google-client-env';

const AUDIENCE = 'https://us-central1-runners-prod.cloudfunctions.net/instance-deleter';
const PROJECT = 'runners-prod';
const PROJECT_NUMBER = 123456789012;
const ZONE = 'us-central1-a';

describe('the Cloud Function entry point', () => {
  let issuer: FakeGoogleIssuer;
  let compute: FakeComputeApi;
  let metadata: FakeMetadataServer;
  let mig: FakeMig;
  let vm: FakeInstance;
  let server: Server;
  let restoreEnv: () => void;

  beforeAll(async () => {
    issuer = await startFakeGoogleIssuer();
    compute = await startFakeComputeApi({ deletionDelayMs: Infinity });
    compute.addProject({ projectId: PROJECT, projectNumber: PROJECT_NUMBER });
    mig = compute.addMig({
      project: PROJECT,
      region: 'us-central1',
      name: 'gh-runner-presubmit',
      autoscaler: { recommendedSize: 1 },
    });
    vm = compute.addInstance({ project: PROJECT, zone: ZONE, name: 'gh-runner-presubmit-x7k2', mig });
    compute.addInstance({ project: PROJECT, zone: 'us-central1-b', name: 'gh-runner-presubmit-b9q1', mig });
    // One metadata server plays both parts: the runner VM asking for its identity token, and the
    // function's runtime handing the deleter an access token through Application Default Credentials.
    metadata = await startFakeMetadataServer({
      issuer,
      vm: {
        projectId: PROJECT,
        projectNumber: PROJECT_NUMBER,
        zone: ZONE,
        instanceId: vm.id,
        instanceName: vm.name,
        serviceAccountEmail: `runner@${PROJECT}.iam.gserviceaccount.com`,
        attributes: {},
      },
    });

    // function.ts reads its configuration from these when it loads; each is restored afterwards.
    restoreEnv = isolateGoogleClientEnv(
      metadata.host,
      {
        AUTH_AUDIENCE: AUDIENCE,
        ALLOWED_MIG_PATTERN: 'gh-runner-(presubmit|postsubmit)',
        ID_TOKEN_CERTS_URL: issuer.certsUrl,
        COMPUTE_API_ENDPOINT: compute.url,
        LOG_LEVEL: 'silent',
      },
      ['REQUEST_TIMEOUT_SECONDS', 'STABILIZE_TIMEOUT_SECONDS'],
    );
    // Loaded only now: it reads its configuration when it loads, as it does on Cloud Functions.
    const { FUNCTION_TARGET } = await import('../../services/instance-deleter/src/function.js');
    server = getTestServer(FUNCTION_TARGET);
  });

  afterAll(async () => {
    restoreEnv();
    await Promise.all([metadata.close(), compute.close(), issuer.close()]);
  });

  /** What the VM scripts do: `curl -H 'Metadata-Flavor: Google' …/identity?audience=URL&format=full`. */
  async function identityToken(): Promise<string> {
    const url = new URL(
      `http://${metadata.host}/computeMetadata/v1/instance/service-accounts/default/identity`,
    );
    url.search = new URLSearchParams({ audience: AUDIENCE, format: 'full' }).toString();
    const res = await fetch(url, { headers: { 'Metadata-Flavor': 'Google' } });
    expect(res.status).toBe(200);
    return res.text();
  }

  it('is registered as deleteInstance', async () => {
    const { FUNCTION_TARGET } = await import('../../services/instance-deleter/src/function.js');
    expect(FUNCTION_TARGET).toBe('deleteInstance');
  });

  it('answers GET / with true or false', async () => {
    const res = await request(server)
      .get('/')
      .set('Authorization', `Bearer ${await identityToken()}`);

    expect(res.status).toBe(200);
    expect(res.type).toBe('text/plain');
    expect(res.text).toBe('true');
  });

  it('deletes the calling VM with an access token from Application Default Credentials', async () => {
    const res = await request(server)
      .delete('/?if=scale-down')
      .set('Authorization', `Bearer ${await identityToken()}`);

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ deleted: true, reason: 'above-recommendation' });
    expect(res.body.message).toContain('is deleting instance gh-runner-presubmit-x7k2');
    const [call, ...others] = compute.controls.callsTo('POST', /\/deleteInstances$/);
    expect(others).toHaveLength(0);
    expect(call?.body).toEqual({
      instances: [`zones/${ZONE}/instances/gh-runner-presubmit-x7k2`],
      skipInstancesOnValidationError: false,
    });
    const accessToken = call?.headers.authorization?.replace(/^Bearer /, '');
    expect(metadata.accessTokens).toContain(accessToken);
    expect(mig.members.get(vm.name)?.currentAction).toBe('DELETING');
  });

  it('keeps its routing and errors behind the framework', async () => {
    const token = await identityToken();
    const wrongPath = await request(server).get('/other').set('Authorization', `Bearer ${token}`);
    const wrongMethod = await request(server).post('/').set('Authorization', `Bearer ${token}`);
    const anonymous = await request(server).delete('/');

    expect([wrongPath.status, wrongMethod.status, anonymous.status]).toEqual([404, 405, 401]);
    expect(wrongMethod.headers.allow).toBe('GET, DELETE');
  });
});
