import request from 'supertest';
import { googleErrorBody } from '#fakes/compute-api';
import type { FakeComputeApi, FakeInstance, FakeMig } from '#fakes/compute-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { ComputeEngineIdentity, FakeGoogleIssuer } from '#fakes/google-issuer';
import {
  buildDeleter,
  DELETER_ACCESS_TOKEN as ACCESS_TOKEN,
  DELETER_AUDIENCE as AUDIENCE,
  DELETER_PROJECT,
  DELETER_REGION as REGION,
  DELETER_ZONE as ZONE,
  deleterToken,
  startDeleterFakes,
} from '#test-support/deleter-harness';
import type { DeleterFakes, DeleterOptions } from '#test-support/deleter-harness';
import { captureLogs } from '#test-support/log-capture';
import type { CapturedLogger } from '#test-support/log-capture';

const PROJECT = DELETER_PROJECT.projectId;
const PROJECT_NUMBER = DELETER_PROJECT.projectNumber;
const MIGS_PATH = `/compute/v1/projects/${PROJECT}/regions/${REGION}/instanceGroupManagers`;

/** A clock that moves only when a test moves it: the age of the deleter's shared reads. */
interface ManualClock {
  now(): number;
  advance(ms: number): void;
}

function manualClock(): ManualClock {
  let time = 1_700_000_000_000;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}

/** A promise and the function that settles it: tests hold a Compute call until something has happened. */
function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('instance deleter', () => {
  let issuer: FakeGoogleIssuer;
  let fakes: DeleterFakes;
  let fake: FakeComputeApi;
  let logs: CapturedLogger;
  let clock: ManualClock;
  /** Every identity token a test sent: none may appear in the logs. */
  let tokens: string[];

  beforeAll(async () => {
    issuer = await startFakeGoogleIssuer();
  });
  afterAll(() => issuer.close());

  beforeEach(async () => {
    // VMs stay DELETING until a test finishes their deletion, so repeated deletes can be seen.
    fakes = await startDeleterFakes({ deletionDelayMs: Infinity, issuer });
    fake = fakes.compute;
    logs = captureLogs();
    clock = manualClock();
    tokens = [];
  });
  afterEach(async () => {
    const text = logs.text();
    for (const token of tokens) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(token.split('.')[2]);
    }
    expect(text).not.toContain(ACCESS_TOKEN);
    await fakes.close();
  });

  /** The deleter as the harness builds it (the real Compute clients against the fake), on the manual clock. */
  function app(options: Pick<DeleterOptions, 'pattern' | 'wrapCompute'> = {}) {
    return buildDeleter(fakes, {
      requestTimeoutMs: 100_000,
      pattern: options.pattern ?? 'gh-runner-[a-z]+',
      now: clock.now,
      logs,
      ...(options.wrapCompute ? { wrapCompute: options.wrapCompute } : {}),
    }).app;
  }

  /** The token a VM gets from its metadata server with `format=full`. */
  function tokenFor(vm: FakeInstance, overrides: Partial<ComputeEngineIdentity> = {}): string {
    const token = deleterToken(fakes, vm, overrides);
    tokens.push(token);
    return token;
  }

  const regionalMig = (options: { targetSize?: number; recommendedSize?: number | null } = {}): FakeMig =>
    fake.addMig({
      project: PROJECT,
      region: REGION,
      name: 'gh-runner-presubmit',
      ...(options.targetSize === undefined ? {} : { targetSize: options.targetSize }),
      ...(options.recommendedSize === undefined
        ? {}
        : { autoscaler: { name: 'gh-runner-presubmit-as', recommendedSize: options.recommendedSize } }),
    });
  const member = (mig: FakeMig, name: string, zone = ZONE): FakeInstance =>
    fake.addInstance({ project: PROJECT, zone, name, mig });

  const del = (vm: FakeInstance, query = '', deps?: Parameters<typeof app>[0]) =>
    request(app(deps))
      .delete(`/${query}`)
      .set('Authorization', `Bearer ${tokenFor(vm)}`);
  const get = (vm: FakeInstance, deps?: Parameters<typeof app>[0]) =>
    request(app(deps))
      .get('/')
      .set('Authorization', `Bearer ${tokenFor(vm)}`);
  const deleteCalls = () => fake.controls.callsTo('POST', /\/deleteInstances$/);
  const decisions = () => logs.lines().filter((line) => line.outcome !== undefined);

  describe('DELETE /', () => {
    it('deletes the calling VM from its regional MIG', async () => {
      const mig = regionalMig();
      const vm = member(mig, 'gh-runner-presubmit-x7k2');
      member(mig, 'gh-runner-presubmit-b9q1', 'us-central1-c');

      const res = await del(vm);

      expect(res.status).toBe(200);
      expect(res.type).toBe('text/plain');
      expect(res.text).toBe(
        'MIG gh-runner-presubmit in region us-central1 is deleting instance gh-runner-presubmit-x7k2\n',
      );
      const [call, ...others] = deleteCalls();
      expect(others).toHaveLength(0);
      expect(call?.path).toBe(`${MIGS_PATH}/gh-runner-presubmit/deleteInstances`);
      expect(call?.body).toEqual({
        instances: [`zones/${ZONE}/instances/gh-runner-presubmit-x7k2`],
        skipInstancesOnValidationError: false,
      });
      expect(call?.headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
      expect(mig.members.get(vm.name)?.currentAction).toBe('DELETING');
      expect(mig.members.get('gh-runner-presubmit-b9q1')?.currentAction).toBe('NONE');
      expect(mig.targetSize).toBe(1);
      expect(decisions()).toEqual([
        expect.objectContaining({
          severity: 'INFO',
          outcome: 'deleting',
          instance: vm.name,
          mig: `projects/${PROJECT}/regions/${REGION}/instanceGroupManagers/gh-runner-presubmit`,
          caller: expect.objectContaining({ instance: vm.name, instanceId: vm.id, project: PROJECT }),
        }),
      ]);
    });

    it('deletes the calling VM from its zonal MIG', async () => {
      const mig = fake.addMig({ project: PROJECT, zone: 'us-central1-b', name: 'gh-runner-nightly' });
      const vm = member(mig, 'gh-runner-nightly-0001', 'us-central1-b');

      const res = await del(vm);

      expect(res.status).toBe(200);
      expect(res.text).toBe(
        'MIG gh-runner-nightly in zone us-central1-b is deleting instance gh-runner-nightly-0001\n',
      );
      const [call] = deleteCalls();
      expect(call?.path).toBe(
        `/compute/v1/projects/${PROJECT}/zones/us-central1-b/instanceGroupManagers/gh-runner-nightly/deleteInstances`,
      );
      expect(call?.body).toEqual({
        instances: ['zones/us-central1-b/instances/gh-runner-nightly-0001'],
        skipInstancesOnValidationError: false,
      });
      expect(mig.members.get(vm.name)?.currentAction).toBe('DELETING');
    });

    it('waits for an operation that is still running', async () => {
      fake.operationsPendingPolls = 2;
      const vm = member(regionalMig(), 'gh-runner-presubmit-x7k2');

      const res = await del(vm);

      expect(res.status).toBe(200);
      expect(fake.controls.callsTo('POST', /\/regions\/us-central1\/operations\/[^/]+\/wait$/)).toHaveLength(
        2,
      );
    });

    it('answers a repeated delete from the MIG state, without a second deleteInstances', async () => {
      const vm = member(regionalMig(), 'gh-runner-presubmit-x7k2');

      const first = await del(vm);
      const second = await del(vm);

      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      expect(second.text).toBe(
        'MIG gh-runner-presubmit in region us-central1 is already deleting instance gh-runner-presubmit-x7k2\n',
      );
      expect(deleteCalls()).toHaveLength(1);
      expect(decisions().map((line) => line.outcome)).toEqual(['deleting', 'already-deleting']);
    });

    it('answers 404 when the instance does not exist', async () => {
      const mig = regionalMig();
      const vm = member(mig, 'gh-runner-presubmit-x7k2');
      const token = tokenFor(vm, { instanceName: 'gh-runner-presubmit-gone' });

      const res = await request(app()).delete('/').set('Authorization', `Bearer ${token}`);

      expect(res.status).toBe(404);
      expect(res.body.error).toBe(
        `Compute Engine could not look up instance gh-runner-presubmit-gone in zone ${ZONE} of project ${PROJECT}: ` +
          `not found (The resource 'projects/${PROJECT}/zones/${ZONE}/instances/gh-runner-presubmit-gone' was not found)`,
      );
      expect(deleteCalls()).toHaveLength(0);
      expect(decisions()).toEqual([
        expect.objectContaining({ severity: 'WARNING', outcome: 'refused', status: 404 }),
      ]);
    });

    it.each([
      ['2^53 + 1 and 2^53', '9007199254740993', '9007199254740992'],
      ['19-digit ids', '9223372036854775809', '9223372036854775808'],
    ])(
      'refuses a token whose instance id differs from the VM of that name (%s)',
      async (_, live, inToken) => {
        // Equal as JS numbers: only a string comparison tells these VMs apart.
        expect(Number(live)).toBe(Number(inToken));
        const vm = fake.addInstance({
          project: PROJECT,
          zone: ZONE,
          name: 'gh-runner-presubmit-x7k2',
          id: live,
          mig: regionalMig(),
        });
        const token = tokenFor(vm, { instanceId: inToken });

        const res = await request(app()).delete('/').set('Authorization', `Bearer ${token}`);

        expect(res.status).toBe(403);
        expect(res.body.error).toBe(
          'instance gh-runner-presubmit-x7k2 is not the VM this token was issued to: its id differs',
        );
        expect(deleteCalls()).toHaveLength(0);
      },
    );

    it.each([
      ['the project number', `projects/${PROJECT_NUMBER}`, 200],
      ['the project id', `projects/${PROJECT}`, 200],
      ['another project number', 'projects/987654321098', 403],
      ['another project id', 'projects/someone-else', 403],
    ])('checks the project in created-by: %s', async (_, project, status) => {
      const mig = regionalMig();
      const vm = fake.addInstance({
        project: PROJECT,
        zone: ZONE,
        name: 'gh-runner-presubmit-x7k2',
        mig,
        metadata: { 'created-by': `${project}/regions/${REGION}/instanceGroupManagers/gh-runner-presubmit` },
      });

      const res = await del(vm);

      expect(res.status).toBe(status);
      if (status === 403) {
        expect(res.body.error).toBe(
          `instance gh-runner-presubmit-x7k2 was created by MIG ${project}/regions/${REGION}/instanceGroupManagers/gh-runner-presubmit, outside its own project ${PROJECT}`,
        );
      }
      expect(deleteCalls()).toHaveLength(status === 200 ? 1 : 0);
    });

    it.each([
      ['no created-by metadata', {}, 'instance gh-runner-x is not in a managed instance group'],
      [
        'created-by naming no MIG',
        { 'created-by': `projects/${PROJECT}/zones/${ZONE}/instances/other` },
        'instance gh-runner-x is not in a managed instance group: its created-by metadata names no MIG',
      ],
    ])('refuses a VM with %s', async (_, metadata, message) => {
      const vm = fake.addInstance({ project: PROJECT, zone: ZONE, name: 'gh-runner-x', metadata });

      const res = await del(vm);

      expect(res.status).toBe(403);
      expect(res.body.error).toBe(message);
      expect(fake.controls.callsTo('GET', /instanceGroupManagers/)).toHaveLength(0);
    });

    it('refuses a VM whose MIG is outside ALLOWED_MIG_PATTERN, naming the MIG', async () => {
      const mig = fake.addMig({ project: PROJECT, region: REGION, name: 'production-web' });
      const vm = member(mig, 'production-web-1234');

      const res = await del(vm);

      expect(res.status).toBe(403);
      expect(res.body.error).toBe('MIG production-web is not one this service may delete VMs from');
      expect(fake.controls.calls.filter((c) => c.path.includes('instanceGroupManagers'))).toHaveLength(0);
      expect(mig.members.get(vm.name)?.currentAction).toBe('NONE');
    });

    it('matches the pattern against the whole MIG name, case-sensitively', async () => {
      const mig = fake.addMig({ project: PROJECT, region: REGION, name: 'gh-runner-presubmit-canary' });
      const vm = member(mig, 'gh-runner-presubmit-canary-1');

      const partial = await del(vm, '', { pattern: 'gh-runner-presubmit' });
      const upper = await del(vm, '', { pattern: 'GH-RUNNER-.*' });
      const whole = await del(vm, '', { pattern: 'gh-runner-presubmit(-canary)?' });

      expect([partial.status, upper.status, whole.status]).toEqual([403, 403, 200]);
    });

    it('refuses a VM that claims a MIG it is not a member of', async () => {
      const mig = regionalMig();
      member(mig, 'gh-runner-presubmit-x7k2');
      const stranger = fake.addInstance({
        project: PROJECT,
        zone: ZONE,
        name: 'gh-runner-stranger',
        metadata: {
          'created-by': `projects/${PROJECT_NUMBER}/regions/${REGION}/instanceGroupManagers/${mig.name}`,
        },
      });

      const res = await del(stranger);

      expect(res.status).toBe(403);
      expect(res.body.error).toBe(
        'instance gh-runner-stranger is not a member of MIG gh-runner-presubmit in region us-central1',
      );
      expect(deleteCalls()).toHaveLength(0);
    });

    it('refuses an unknown condition', async () => {
      const vm = member(regionalMig(), 'gh-runner-presubmit-x7k2');

      const res = await del(vm, '?if=always');

      expect(res.status).toBe(400);
      expect(res.body.error).toBe('unknown condition: the only one is DELETE /?if=scale-down');
      expect(fake.controls.calls).toHaveLength(0);
    });
  });

  describe('authentication and routing', () => {
    it('answers 401 to a token without Compute Engine claims', async () => {
      const token = issuer.mintIdentityToken({ audience: AUDIENCE, email: 'someone@example.com' });
      tokens.push(token);

      const res = await request(app()).delete('/').set('Authorization', `Bearer ${token}`);

      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
      expect(res.body.error).toBe(
        'identity token has no Compute Engine claims: request it from the metadata server with format=full',
      );
      expect(fake.controls.calls).toHaveLength(0);
      expect(decisions()).toEqual([expect.objectContaining({ outcome: 'refused', status: 401 })]);
    });

    it.each([
      ['no token', undefined],
      ['a token for another audience', 'other-audience'],
    ])('answers 401 to %s', async (_, audience) => {
      const vm = member(regionalMig(), 'gh-runner-presubmit-x7k2');
      let req = request(app()).delete('/');
      if (audience !== undefined) {
        const token = issuer.mintIdentityToken({ audience: `https://${audience}.example` });
        tokens.push(token);
        req = req.set('Authorization', `Bearer ${token}`);
      }

      const res = await req;

      expect(res.status).toBe(401);
      expect(fake.controls.calls).toHaveLength(0);
      expect(vm.mig?.members.get(vm.name)?.currentAction).toBe('NONE');
    });

    it.each(['POST', 'PUT', 'PATCH', 'HEAD', 'OPTIONS'])(
      'answers %s / with 405 and Allow',
      async (method) => {
        const vm = member(regionalMig(), 'gh-runner-presubmit-x7k2');

        const res = await request(app())
          [method.toLowerCase() as 'post']('/')
          .set('Authorization', `Bearer ${tokenFor(vm)}`);

        expect(res.status).toBe(405);
        expect(res.headers.allow).toBe('GET, DELETE');
        expect(fake.controls.calls).toHaveLength(0);
      },
    );

    it('authenticates before it looks at the method', async () => {
      const res = await request(app()).post('/');
      expect(res.status).toBe(401);
    });

    it.each([
      ['GET', '/delete'],
      ['DELETE', '/instances/me'],
      ['GET', '/healthz'],
    ])('answers %s %s with 404', async (method, path) => {
      const vm = member(regionalMig(), 'gh-runner-presubmit-x7k2');

      const res = await request(app())
        [method.toLowerCase() as 'get'](path)
        .set('Authorization', `Bearer ${tokenFor(vm)}`);

      expect(res.status).toBe(404);
      expect(fake.controls.calls).toHaveLength(0);
    });
  });

  describe('Compute Engine failures', () => {
    /** Only in the raw response body: proof that it does not reach callers or logs. */
    const RAW_ONLY = 'raw-body-marker-7c1e';
    const failure = (status: number, message: string) => ({
      ...(googleErrorBody(status, message) as Record<string, unknown>),
      debug: RAW_ONLY,
    });

    it.each([
      {
        what: 'a 403 looking up the instance',
        fault: { method: 'GET', path: /\/instances\//, status: 403 },
        message: "Required 'compute.instances.get' permission for 'projects/runners-prod'",
        status: 403,
        error: `Compute Engine refused to look up instance gh-runner-presubmit-x7k2 in zone ${ZONE} of project ${PROJECT}: permission denied (Required 'compute.instances.get' permission for 'projects/runners-prod')`,
      },
      {
        what: 'a 404 listing the MIG',
        fault: { method: 'POST', path: /\/listManagedInstances$/, status: 404 },
        message:
          "The resource 'projects/runners-prod/regions/us-central1/instanceGroupManagers/gh-runner-presubmit' was not found",
        status: 404,
        error:
          "Compute Engine could not list the VMs of MIG gh-runner-presubmit in region us-central1: not found (The resource 'projects/runners-prod/regions/us-central1/instanceGroupManagers/gh-runner-presubmit' was not found)",
      },
      {
        what: 'a 500 from deleteInstances',
        fault: { method: 'POST', path: /\/deleteInstances$/, status: 500 },
        message: 'Internal error. Please try again or contact Google Support.',
        status: 502,
        error:
          'Compute Engine failed to delete instance gh-runner-presubmit-x7k2 from MIG gh-runner-presubmit in region us-central1: HTTP 500 (Internal error. Please try again or contact Google Support.)',
      },
      {
        what: 'a 401 (the deleter’s own credentials)',
        fault: { method: 'GET', path: /\/instances\//, status: 401 },
        message: 'Request had invalid authentication credentials.',
        status: 502,
        error: `Compute Engine failed to look up instance gh-runner-presubmit-x7k2 in zone ${ZONE} of project ${PROJECT}: HTTP 401 (Request had invalid authentication credentials.)`,
      },
      {
        what: 'a 429 with Retry-After (Compute rate-limits the deleter)',
        fault: { method: 'GET', path: /\/instances\//, status: 429, headers: { 'Retry-After': '7' } },
        message: 'Quota exceeded for quota metric Read requests',
        status: 503,
        retryAfter: '7',
        error: `Compute Engine is rate-limiting the instance deleter, which could not look up instance gh-runner-presubmit-x7k2 in zone ${ZONE} of project ${PROJECT} (Quota exceeded for quota metric Read requests); ask again later`,
      },
      {
        what: 'a 429 without Retry-After',
        fault: { method: 'POST', path: /\/deleteInstances$/, status: 429 },
        message: 'Rate Limit Exceeded',
        status: 503,
        retryAfter: '10',
        error:
          'Compute Engine is rate-limiting the instance deleter, which could not delete instance gh-runner-presubmit-x7k2 from MIG gh-runner-presubmit in region us-central1 (Rate Limit Exceeded); ask again later',
      },
    ])('maps $what to $status', async ({ fault, message, status, error, ...rest }) => {
      const vm = member(regionalMig(), 'gh-runner-presubmit-x7k2');
      fake.controls.addFault({ ...fault, body: failure(fault.status, message) });

      const res = await del(vm);

      expect(res.status).toBe(status);
      expect(res.body.error).toBe(error);
      expect(res.headers['retry-after']).toBe('retryAfter' in rest ? rest.retryAfter : undefined);
      expect(res.text).not.toContain(RAW_ONLY);
      expect(logs.text()).not.toContain(RAW_ONLY);
      expect(decisions()).toEqual([
        expect.objectContaining({
          outcome: status >= 500 ? 'failed' : 'refused',
          status,
          severity: status >= 500 ? 'ERROR' : 'WARNING',
        }),
      ]);
    });

    it('passes a 403 reading the MIG through to a GET', async () => {
      const vm = member(regionalMig({ recommendedSize: 0 }), 'gh-runner-presubmit-x7k2');
      fake.controls.addFault({
        method: 'GET',
        path: `${MIGS_PATH}/gh-runner-presubmit`,
        status: 403,
        body: failure(403, "Required 'compute.instanceGroupManagers.get' permission"),
      });

      const res = await get(vm);

      expect(res.status).toBe(403);
      expect(res.body.error).toBe(
        "Compute Engine refused to read MIG gh-runner-presubmit in region us-central1: permission denied (Required 'compute.instanceGroupManagers.get' permission)",
      );
    });

    it('answers 502 when Compute Engine cannot be reached', async () => {
      const vm = member(regionalMig(), 'gh-runner-presubmit-x7k2');
      fake.controls.addFault({ path: /\/instances\//, reset: true });

      const res = await del(vm);

      expect(res.status).toBe(502);
      expect(res.body.error).toBe(
        `Compute Engine failed to look up instance gh-runner-presubmit-x7k2 in zone ${ZONE} of project ${PROJECT}`,
      );
    });

    it.each([
      [400, 'CONDITION_NOT_MET', 502, 'HTTP 400'],
      [403, 'PERMISSION_DENIED', 403, 'permission denied'],
      [404, 'RESOURCE_NOT_FOUND', 404, 'not found'],
      [500, 'INTERNAL_ERROR', 502, 'HTTP 500'],
    ])('maps a failed operation (%i %s) to %i', async (httpStatus, code, status, summary) => {
      const mig = regionalMig();
      const vm = member(mig, 'gh-runner-presubmit-x7k2');
      fake.failNextOperation({ httpErrorStatusCode: httpStatus, code, message: `operation said ${code}` });

      const res = await del(vm);

      expect(res.status).toBe(status);
      expect(res.body.error).toMatch(
        new RegExp(
          `^Compute Engine .* delete instance gh-runner-presubmit-x7k2 from MIG .*: ${summary} \\(operation said ${code}\\)$`,
        ),
      );
      expect(mig.members.get(vm.name)?.currentAction).toBe('NONE');
    });
  });

  describe('GET /', () => {
    it.each([
      ['above', 3, 2, 'true'],
      ['at', 3, 3, 'false'],
      ['below', 3, 4, 'false'],
    ])('answers whether a stable MIG is %s its recommendation', async (_, size, recommendedSize, body) => {
      const mig = regionalMig({ recommendedSize });
      const vm = member(mig, 'gh-runner-presubmit-0');
      for (let i = 1; i < size; i += 1) member(mig, `gh-runner-presubmit-${i}`);

      const res = await get(vm);

      expect(res.status).toBe(200);
      expect(res.type).toBe('text/plain');
      expect(res.text).toBe(body);
      expect(deleteCalls()).toHaveLength(0);
      expect(decisions()).toEqual([
        expect.objectContaining({
          message: `scale-down check: ${body}`,
          outcome: body === 'true' ? 'scale-down' : 'no-scale-down',
          targetSize: size,
          recommendedSize,
        }),
      ]);
    });

    it('reads a zonal autoscaler', async () => {
      const mig = fake.addMig({
        project: PROJECT,
        zone: ZONE,
        name: 'gh-runner-zonal',
        autoscaler: { recommendedSize: 0 },
      });
      const vm = member(mig, 'gh-runner-zonal-1', ZONE);

      const res = await get(vm);

      expect(res.text).toBe('true');
      expect(fake.controls.callsTo('GET', `/zones/${ZONE}/autoscalers/gh-runner-zonal`)).toHaveLength(1);
    });

    it('answers false for a MIG without an autoscaler', async () => {
      const vm = member(regionalMig(), 'gh-runner-presubmit-0');

      const res = await get(vm);

      expect(res.text).toBe('false');
      expect(fake.controls.callsTo('GET', /autoscalers/)).toHaveLength(0);
      expect(decisions()).toEqual([expect.objectContaining({ reason: 'no-autoscaler' })]);
    });

    it('answers false while the autoscaler has no recommendation', async () => {
      const vm = member(regionalMig({ recommendedSize: null }), 'gh-runner-presubmit-0');

      const res = await get(vm);

      expect(res.text).toBe('false');
      expect(decisions()).toEqual([expect.objectContaining({ reason: 'no-recommendation' })]);
    });

    it('answers false at once, without waiting, while the MIG is not stable (issue 14 §5)', async () => {
      const mig = regionalMig({ recommendedSize: 1 });
      const vm = member(mig, 'gh-runner-presubmit-0');
      member(mig, 'gh-runner-presubmit-1');
      fake.setCurrentAction(mig, 'gh-runner-presubmit-1', 'CREATING');

      const res = await get(vm);

      expect(res.text).toBe('false');
      expect(fake.controls.callsTo('GET', `${MIGS_PATH}/gh-runner-presubmit`)).toHaveLength(1);
      expect(fake.controls.callsTo('GET', /autoscalers/)).toHaveLength(0);
      expect(decisions()).toEqual([
        expect.objectContaining({ outcome: 'no-scale-down', reason: 'mig-unstable', targetSize: 2 }),
      ]);
    });

    it('refuses a VM that is not a member of the MIG its created-by names (issue 15 §7)', async () => {
      const mig = regionalMig({ recommendedSize: 0 });
      member(mig, 'gh-runner-presubmit-0');
      const stranger = fake.addInstance({
        project: PROJECT,
        zone: ZONE,
        name: 'gh-runner-stranger',
        metadata: {
          'created-by': `projects/${PROJECT_NUMBER}/regions/${REGION}/instanceGroupManagers/${mig.name}`,
        },
      });

      const res = await get(stranger);

      expect(res.status).toBe(403);
      expect(res.body.error).toBe(
        'instance gh-runner-stranger is not a member of MIG gh-runner-presubmit in region us-central1',
      );
      // Missing from the shared list, it was looked for once more, afresh, before the refusal.
      expect(fake.controls.callsTo('POST', /\/listManagedInstances$/)).toHaveLength(2);
      expect(decisions()).toEqual([expect.objectContaining({ outcome: 'refused', status: 403 })]);
    });

    it('looks again, afresh, for a member missing from a shared read of a moment ago', async () => {
      const mig = regionalMig({ recommendedSize: 5 });
      const first = member(mig, 'gh-runner-presubmit-0');
      const deleter = app();
      await request(deleter)
        .get('/')
        .set('Authorization', `Bearer ${tokenFor(first)}`);
      const newcomer = member(mig, 'gh-runner-presubmit-1');

      const res = await request(deleter)
        .get('/')
        .set('Authorization', `Bearer ${tokenFor(newcomer)}`);

      expect(res.status).toBe(200);
      expect(res.text).toBe('false');
      expect(fake.controls.callsTo('POST', /\/listManagedInstances$/)).toHaveLength(2);
    });

    it('shares its reads among the VMs of a MIG asking at once: 40 VMs, one read of each kind (issue 15 §1)', async () => {
      const mig = regionalMig({ recommendedSize: 39 });
      const vms = Array.from({ length: 40 }, (_, i) => member(mig, `gh-runner-presubmit-${i}`));
      // The MIG's reads wait until every request has looked up its instance, so all 40 ask while the
      // first read is still under way.
      const looked = gate();
      let lookups = 0;
      const deleter = app({
        wrapCompute: (compute) => ({
          ...compute,
          getInstance: async (...args) => {
            const found = await compute.getInstance(...args);
            if ((lookups += 1) === vms.length) looked.open();
            return found;
          },
          getMig: async (ref) => {
            await looked.opened;
            return compute.getMig(ref);
          },
        }),
      });

      const answers = await Promise.all(
        vms.map((vm) =>
          request(deleter)
            .get('/')
            .set('Authorization', `Bearer ${tokenFor(vm)}`)
            .then((res) => [res.status, res.text]),
        ),
      );

      expect(answers).toEqual(Array(40).fill([200, 'true']));
      expect(fake.controls.callsTo('GET', /\/instances\//)).toHaveLength(40);
      expect(fake.controls.callsTo('GET', `${MIGS_PATH}/gh-runner-presubmit`)).toHaveLength(1);
      expect(fake.controls.callsTo('POST', /\/listManagedInstances$/)).toHaveLength(1);
      expect(fake.controls.callsTo('GET', /autoscalers/)).toHaveLength(1);
    });

    it('answers 429 with Retry-After to a VM that asks again while its first request is in flight (issue 15 §1)', async () => {
      const mig = regionalMig({ recommendedSize: 0 });
      const vm = member(mig, 'gh-runner-presubmit-0');
      const token = tokenFor(vm);
      // The first request's lookup of its instance is held until the 39 others have been answered.
      const othersAnswered = gate();
      const deleter = app({
        wrapCompute: (compute) => ({
          ...compute,
          getInstance: async (...args) => {
            await othersAnswered.opened;
            return compute.getInstance(...args);
          },
        }),
      });
      const send = () => request(deleter).get('/').set('Authorization', `Bearer ${token}`);
      let refused = 0;

      const answers = await Promise.all(
        Array.from({ length: 40 }, () =>
          send().then((res) => {
            if (res.status === 429 && (refused += 1) === 39) othersAnswered.open();
            return res;
          }),
        ),
      );

      const served = answers.filter((res) => res.status === 200);
      const busy = answers.filter((res) => res.status === 429);
      expect(served.map((res) => res.text)).toEqual(['true']);
      expect(busy).toHaveLength(39);
      expect(new Set(busy.map((res) => res.headers['retry-after']))).toEqual(new Set(['5']));
      expect(new Set(busy.map((res) => res.body.error))).toEqual(
        new Set([
          'instance gh-runner-presubmit-0 already has a request in progress at the instance deleter; ask again once it is answered',
        ]),
      );
      // One request's worth of Compute calls: its instance, the MIG's members and state, the autoscaler.
      expect(fake.controls.calls).toHaveLength(4);
      // Once the first is answered, the VM is served again.
      expect((await send()).status).toBe(200);
    });

    it('reuses a read for one second, then reads again', async () => {
      const mig = regionalMig({ recommendedSize: 1 });
      const [a, b, c] = ['a', 'b', 'c'].map((name) => member(mig, `gh-runner-presubmit-${name}`));
      const deleter = app();
      const ask = (vm: FakeInstance) =>
        request(deleter)
          .get('/')
          .set('Authorization', `Bearer ${tokenFor(vm!)}`)
          .then((res) => res.text);
      const migReads = () => fake.controls.callsTo('GET', `${MIGS_PATH}/gh-runner-presubmit`).length;

      expect(await ask(a!)).toBe('true');
      clock.advance(1000);
      fake.setRecommendedSize(mig, 3);
      expect(await ask(b!)).toBe('true');
      expect(migReads()).toBe(1);
      clock.advance(1);
      expect(await ask(c!)).toBe('false');
      expect(migReads()).toBe(2);
    });

    it('shares a failed read with the requests that waited for it, then reads again', async () => {
      const mig = regionalMig({ recommendedSize: 1 });
      const vms = [0, 1, 2].map((i) => member(mig, `gh-runner-presubmit-${i}`));
      fake.controls.addFault({
        method: 'GET',
        path: `${MIGS_PATH}/gh-runner-presubmit`,
        status: 500,
        body: googleErrorBody(500, 'backend error'),
        times: 1,
      });
      const looked = gate();
      let lookups = 0;
      const deleter = app({
        wrapCompute: (compute) => ({
          ...compute,
          getInstance: async (...args) => {
            const found = await compute.getInstance(...args);
            if ((lookups += 1) === 2) looked.open();
            return found;
          },
          getMig: async (ref) => {
            await looked.opened;
            return compute.getMig(ref);
          },
        }),
      });
      const ask = (vm: FakeInstance) =>
        request(deleter)
          .get('/')
          .set('Authorization', `Bearer ${tokenFor(vm)}`);

      const failed = await Promise.all([ask(vms[0]!), ask(vms[1]!)]);
      const next = await ask(vms[2]!);

      expect(failed.map((res) => res.status)).toEqual([502, 502]);
      expect(next.status).toBe(200);
      expect(fake.controls.callsTo('GET', `${MIGS_PATH}/gh-runner-presubmit`)).toHaveLength(2);
    });
  });

  describe('DELETE /?if=scale-down', () => {
    const ifScaleDown = (vm: FakeInstance, deleter = app()) =>
      request(deleter)
        .delete('/?if=scale-down')
        .set('Authorization', `Bearer ${tokenFor(vm)}`);

    it('deletes the VM when the MIG is above its recommendation, answering JSON', async () => {
      const mig = regionalMig({ recommendedSize: 1 });
      const vm = member(mig, 'gh-runner-presubmit-0');
      member(mig, 'gh-runner-presubmit-1');

      const res = await ifScaleDown(vm);

      expect(res.status).toBe(200);
      expect(res.type).toBe('application/json');
      expect(res.body).toEqual({
        deleted: true,
        reason: 'above-recommendation',
        message:
          'MIG gh-runner-presubmit in region us-central1 is above its recommended size (target 2, recommended 1) and is deleting instance gh-runner-presubmit-0',
      });
      expect(deleteCalls().map((call) => call.body)).toEqual([
        {
          instances: [`zones/${ZONE}/instances/gh-runner-presubmit-0`],
          skipInstancesOnValidationError: false,
        },
      ]);
      expect(mig.targetSize).toBe(1);
      expect(decisions()).toEqual([
        expect.objectContaining({ outcome: 'deleting', reason: 'above-recommendation', scaleDown: true }),
      ]);
    });

    it.each([
      [2, 'not-above-recommendation', 'is not above its recommended size (target 2, recommended 2)'],
      [null, 'no-recommendation', 'has no recommended size yet'],
      [undefined, 'no-autoscaler', 'has no autoscaler'],
    ])('keeps the VM when the recommendation is %p', async (recommendedSize, reason, why) => {
      const mig = regionalMig(recommendedSize === undefined ? {} : { recommendedSize });
      const vm = member(mig, 'gh-runner-presubmit-0');
      member(mig, 'gh-runner-presubmit-1');

      const res = await ifScaleDown(vm);

      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        deleted: false,
        reason,
        message: `MIG gh-runner-presubmit in region us-central1 ${why}: keeping instance gh-runner-presubmit-0`,
      });
      expect(deleteCalls()).toHaveLength(0);
      expect(mig.members.get(vm.name)?.currentAction).toBe('NONE');
      expect(decisions()).toEqual([expect.objectContaining({ outcome: 'kept', reason, scaleDown: false })]);
    });

    it('answers "not now" at once when the MIG above its recommendation is not stable, and deletes nothing afterwards (issue 14 §5)', async () => {
      // The case: an idle VM, its MIG above its recommendation but not stable for 25 s. The
      // deleter used to wait for stability and delete 25.7 s after the VM's busy check.
      const mig = regionalMig({ recommendedSize: 1 });
      const vm = member(mig, 'gh-runner-presubmit-0');
      member(mig, 'gh-runner-presubmit-1');
      member(mig, 'gh-runner-presubmit-2');
      fake.setCurrentAction(mig, 'gh-runner-presubmit-2', 'CREATING');
      const deleter = app();

      const res = await ifScaleDown(vm, deleter);

      expect(res.body).toEqual({
        deleted: false,
        reason: 'mig-unstable',
        message:
          'MIG gh-runner-presubmit in region us-central1 is not stable (it is creating or deleting VMs): keeping instance gh-runner-presubmit-0; ask again at the next idle check',
      });
      expect(fake.controls.callsTo('GET', /autoscalers/)).toHaveLength(0);
      // The MIG becomes stable "25 s later": nothing of that request is left to delete the VM now.
      fake.setCurrentAction(mig, 'gh-runner-presubmit-2', 'NONE');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(deleteCalls()).toHaveLength(0);
      expect(mig.members.get(vm.name)?.currentAction).toBe('NONE');

      // The VM keeps itself and, after a fresh busy check, asks again at its next idle check.
      const again = await ifScaleDown(vm, deleter);
      expect(again.body).toMatchObject({ deleted: true, reason: 'above-recommendation' });
      expect(deleteCalls()).toHaveLength(1);
    });

    it('deletes right after the reads it decided on, made in the same request: no wait, no queue, nothing shared', async () => {
      const mig = regionalMig({ recommendedSize: 1 });
      const vm = member(mig, 'gh-runner-presubmit-0');
      const other = member(mig, 'gh-runner-presubmit-1');
      const deleter = app();
      // A GET a moment before leaves a shared read behind; the deletion does not decide on it.
      await request(deleter)
        .get('/')
        .set('Authorization', `Bearer ${tokenFor(other)}`);
      const before = fake.controls.calls.length;

      const res = await ifScaleDown(vm, deleter);

      expect(res.body.deleted).toBe(true);
      const sequence = fake.controls.calls.slice(before).map((call) => {
        if (call.path.endsWith('/deleteInstances')) return 'deleteInstances';
        if (call.path.endsWith('/listManagedInstances')) return 'listManagedInstances';
        if (call.path.includes('/autoscalers/')) return 'autoscalers.get';
        if (call.path.includes('/instanceGroupManagers/')) return 'instanceGroupManagers.get';
        return 'instances.get';
      });
      expect(sequence[0]).toBe('instances.get');
      expect(new Set(sequence.slice(1, 3))).toEqual(
        new Set(['listManagedInstances', 'instanceGroupManagers.get']),
      );
      expect(sequence.slice(3)).toEqual(['autoscalers.get', 'deleteInstances']);
    });

    it('answers an already-deleting VM with deleted: true, without a second deleteInstances', async () => {
      const mig = regionalMig({ recommendedSize: 0 });
      const vm = member(mig, 'gh-runner-presubmit-0');
      await del(vm);

      const res = await ifScaleDown(vm);

      expect(res.body).toEqual({
        deleted: true,
        reason: 'already-deleting',
        message:
          'MIG gh-runner-presubmit in region us-central1 is already deleting instance gh-runner-presubmit-0',
      });
      expect(deleteCalls()).toHaveLength(1);
    });

    it('refuses a VM that claims a MIG it is not a member of', async () => {
      const mig = regionalMig({ recommendedSize: 0 });
      member(mig, 'gh-runner-presubmit-0');
      const stranger = fake.addInstance({
        project: PROJECT,
        zone: ZONE,
        name: 'gh-runner-stranger',
        metadata: {
          'created-by': `projects/${PROJECT_NUMBER}/regions/${REGION}/instanceGroupManagers/${mig.name}`,
        },
      });

      const res = await ifScaleDown(stranger);

      expect(res.status).toBe(403);
      expect(deleteCalls()).toHaveLength(0);
    });

    it('answers "not now" (mig-busy) instead of queueing behind another decision on the same MIG', async () => {
      const mig = regionalMig({ recommendedSize: 0 });
      const [first, second] = [0, 1].map((i) => member(mig, `gh-runner-presubmit-${i}`));
      // The first request's read of the MIG (under the MIG's lock) is held until the second is answered.
      const firstReading = gate();
      const secondAnswered = gate();
      let migReads = 0;
      const deleter = app({
        wrapCompute: (compute) => ({
          ...compute,
          getMig: async (ref) => {
            if ((migReads += 1) === 1) {
              firstReading.open();
              await secondAnswered.opened;
            }
            return compute.getMig(ref);
          },
        }),
      });

      const firstAnswer = ifScaleDown(first!, deleter).then((res) => res);
      await firstReading.opened;
      const secondAnswer = await ifScaleDown(second!, deleter);
      secondAnswered.open();

      expect(secondAnswer.body).toEqual({
        deleted: false,
        reason: 'mig-busy',
        message:
          'MIG gh-runner-presubmit in region us-central1 is deciding on another of its VMs right now: keeping instance gh-runner-presubmit-1; ask again at the next idle check',
      });
      expect((await firstAnswer).body).toMatchObject({ deleted: true });
      expect(deleteCalls()).toHaveLength(1);
    });

    it('of ten VMs asking at once while the MIG is one above its recommendation, deletes exactly one', async () => {
      const mig = regionalMig({ recommendedSize: 9 });
      const vms = Array.from({ length: 10 }, (_, i) => member(mig, `gh-runner-presubmit-${i}`));
      const deleter = app();

      const responses = await Promise.all(vms.map((vm) => ifScaleDown(vm, deleter)));

      expect(responses.map((res) => res.status)).toEqual(Array(10).fill(200));
      const deleted = responses.filter((res) => res.body.deleted === true);
      const kept = responses.filter((res) => res.body.deleted === false);
      expect(deleted).toHaveLength(1);
      expect(kept).toHaveLength(9);
      for (const res of kept) expect(['mig-busy', 'mig-unstable']).toContain(res.body.reason);
      expect(deleteCalls()).toHaveLength(1);
      expect(mig.targetSize).toBe(9);
      expect(decisions().filter((line) => line.outcome === 'deleting')).toHaveLength(1);
    });

    it('(for contrast) ten concurrent GETs against the same MIG all answer true', async () => {
      const mig = regionalMig({ recommendedSize: 9 });
      const vms = Array.from({ length: 10 }, (_, i) => member(mig, `gh-runner-presubmit-${i}`));
      const deleter = app();

      const answers = await Promise.all(
        vms.map((vm) =>
          request(deleter)
            .get('/')
            .set('Authorization', `Bearer ${tokenFor(vm)}`)
            .then((res) => res.text),
        ),
      );

      // This is why the VM scripts use the conditional delete rather than GET, then DELETE.
      expect(answers).toEqual(Array(10).fill('true'));
    });
  });
});
