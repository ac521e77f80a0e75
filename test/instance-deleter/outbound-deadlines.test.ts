import request from 'supertest';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import type { FakeMetadataServer } from '#fakes/metadata-server';
import {
  buildDeleter,
  DELETER_PROJECT,
  DELETER_REGION,
  DELETER_ZONE,
  memberOf,
  regionalMig,
  startDeleterFakes,
} from '#test-support/deleter-harness';
import type { DeleterFakes } from '#test-support/deleter-harness';
import { isolateGoogleClientEnv } from '#test-support/google-client-env';
import { startSilentServer } from '#test-support/silent-server';
import type { SilentServer } from '#test-support/silent-server';

// Issue 14 §1 for the deleter: every outbound call has a deadline. Each case points the deleter at a
// server that accepts connections and never answers; the request must end with a bounded 503 or 504
// that says what did not answer, and the next request must try again. The deadlines are short here,
// and each test has time to spare.
const TEST_TIMEOUT_MS = 30_000;

describe('the instance deleter against outside systems that never answer', () => {
  let fakes: DeleterFakes;
  let silent: SilentServer;

  beforeEach(async () => {
    fakes = await startDeleterFakes({ deletionDelayMs: Infinity });
    silent = await startSilentServer();
  });
  afterEach(async () => {
    await Promise.all([fakes.close(), silent.close()]);
  });

  describe('Compute Engine', () => {
    it.each([
      ['DELETE', '/', 'look up instance'],
      ['GET', '/', 'look up instance'],
      ['DELETE', '/?if=scale-down', 'look up instance'],
    ])(
      'answers %s %s with 504 after one call’s deadline when Compute never answers',
      async (method, path, action) => {
        const vm = memberOf(fakes, regionalMig(fakes));
        const deleter = buildDeleter(fakes, { computeUrl: silent.url, callTimeoutMs: 300 });

        const res = await request(deleter.app)
          [method === 'GET' ? 'get' : 'delete'](path)
          .set('Authorization', `Bearer ${deleter.token(vm)}`);

        expect(res.status).toBe(504);
        expect(res.body.error).toBe(
          `Compute Engine did not answer in time to ${action} ${vm.name} in zone ${DELETER_ZONE} of project ${DELETER_PROJECT.projectId}; ask again later`,
        );
        expect(silent.connections).toBeGreaterThan(0);
        expect(deleter.logs.lines()).toContainEqual(
          expect.objectContaining({ outcome: 'failed', status: 504 }),
        );
      },
      TEST_TIMEOUT_MS,
    );

    it(
      'lets a read shared by several requests fail them all at its deadline, and reads again for the next',
      async () => {
        const mig = regionalMig(fakes);
        const vms = [memberOf(fakes, mig), memberOf(fakes, mig), memberOf(fakes, mig)];
        let now = 1_700_000_000_000;
        const deleter = buildDeleter(fakes, { callTimeoutMs: 200, now: () => now });
        const ask = (i: number) =>
          request(deleter.app)
            .get('/')
            .set('Authorization', `Bearer ${deleter.token(vms[i]!)}`);
        // A first request warms the clients up (their first call loads protobuf descriptors); then the
        // reads it shared are a second old, and the next read of the MIG is answered well past its deadline.
        expect((await ask(2)).status).toBe(200);
        now += 1001;
        fakes.compute.controls.addFault({
          method: 'GET',
          path: `/regions/${DELETER_REGION}/instanceGroupManagers/${mig.name}`,
          delayMs: 800,
          times: 1,
        });

        const hung = await Promise.all([ask(0), ask(1)]);
        const next = await ask(2);

        expect(hung.map((res) => [res.status, res.body.error])).toEqual(
          Array(2).fill([
            504,
            `Compute Engine did not answer in time to read MIG ${mig.name} in region ${DELETER_REGION}; ask again later`,
          ]),
        );
        expect(next.status).toBe(200);
      },
      TEST_TIMEOUT_MS,
    );
  });

  describe("the metadata server, for the deleter's own credentials", () => {
    let metadata: FakeMetadataServer;
    let restoreEnv: () => void;

    beforeEach(async () => {
      metadata = await startFakeMetadataServer({
        issuer: fakes.issuer,
        vm: {
          projectId: DELETER_PROJECT.projectId,
          projectNumber: Number(DELETER_PROJECT.projectNumber),
          zone: DELETER_ZONE,
          instanceId: '1234567890123456789',
          instanceName: 'deleter-host',
          serviceAccountEmail: `instance-deleter@${DELETER_PROJECT.projectId}.iam.gserviceaccount.com`,
          attributes: {},
        },
      });
    });
    afterEach(async () => {
      restoreEnv();
      await metadata.close();
    });

    it(
      'answers 503 with Retry-After when the metadata server never answers, and tries again on the next request',
      async () => {
        // As on Cloud Run: K_SERVICE makes gcp-metadata ask the metadata server with no timeout at all,
        // and ADC assumes the metadata server is there.
        restoreEnv = isolateGoogleClientEnv(
          silent.host,
          {
            METADATA_SERVER_DETECTION: 'assume-present',
            K_SERVICE: 'instance-deleter',
            // As the deploy scripts set it; without it ADC first asks gcloud and the metadata server for
            // the project, which the same deadline bounds.
            GOOGLE_CLOUD_PROJECT: DELETER_PROJECT.projectId,
          },
          ['K_SERVICE'],
        );
        const vm = memberOf(fakes, regionalMig(fakes));
        const deleter = buildDeleter(fakes, { credentials: 'adc', credentialsTimeoutMs: 2000 });
        const del = () =>
          request(deleter.app)
            .delete('/')
            .set('Authorization', `Bearer ${deleter.token(vm)}`);

        const hung = await del();

        expect(hung.status).toBe(503);
        expect(hung.headers['retry-after']).toBe('10');
        expect(hung.body.error).toBe(
          `the instance deleter could not get its own credentials to look up instance ${vm.name} in zone ${DELETER_ZONE} of project ${DELETER_PROJECT.projectId} (no credentials within 2 s); ask again later`,
        );
        expect(silent.connections).toBeGreaterThan(0);
        expect(fakes.compute.controls.calls).toHaveLength(0);

        // The metadata server answers again: the next request looks credentials up afresh. (The silent
        // one goes, so that what google-auth-library still retries against it ends with this test.)
        await silent.close();
        process.env.GCE_METADATA_HOST = metadata.host;
        const recovered = await del();

        expect(recovered.status).toBe(200);
        const [call] = fakes.compute.controls.callsTo('POST', /\/deleteInstances$/);
        expect(metadata.accessTokens).toContain(call?.headers.authorization?.replace(/^Bearer /, ''));
      },
      TEST_TIMEOUT_MS,
    );
  });
});
