import { v1 } from '@google-cloud/compute';
import type { protos } from '@google-cloud/compute';
import { OAuth2Client, PassThroughClient } from 'google-auth-library';
import { COMPUTE_API_ROOT, startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeComputeApiOptions, FakeMig } from '#fakes/compute-api';

const PROJECT = 'runners-prod';
const PROJECT_NUMBER = '123456789012';
/** 2^63 + 1: `Number()` would round it to ...808, so it must survive as a string end to end. */
const BIG_ID = '9223372036854775809';
const REGION = 'us-central1';
const ZONE = 'us-central1-a';

function bearer(): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'ya29.test' });
  return auth;
}

describe('fake Compute API', () => {
  let fake: FakeComputeApi;
  let regional: FakeMig;
  let zonal: FakeMig;

  /** A regional MIG with an autoscaler and two VMs, and a zonal MIG with one VM. */
  async function start(options: FakeComputeApiOptions = { deletionDelayMs: Infinity }): Promise<void> {
    fake = await startFakeComputeApi(options);
    fake.addProject({ projectId: PROJECT, projectNumber: PROJECT_NUMBER });
    regional = fake.addMig({
      project: PROJECT,
      region: REGION,
      name: 'runners',
      autoscaler: { name: 'runners-as', recommendedSize: 2, mode: 'ONLY_SCALE_OUT' },
    });
    zonal = fake.addMig({ project: PROJECT, zone: 'us-central1-b', name: 'zonal', autoscaler: {} });
    fake.addInstance({ project: PROJECT, zone: ZONE, name: 'runner-1', id: BIG_ID, mig: regional });
    fake.addInstance({ project: PROJECT, zone: 'us-central1-c', name: 'runner-2', mig: regional });
    fake.addInstance({ project: PROJECT, zone: 'us-central1-b', name: 'zonal-1', mig: zonal });
  }
  afterEach(() => fake.close());

  const instancesClient = (): v1.InstancesClient => new v1.InstancesClient(fake.clientOptions(bearer()));
  const regionMigs = (): v1.RegionInstanceGroupManagersClient =>
    new v1.RegionInstanceGroupManagersClient(fake.clientOptions(bearer()));
  const zoneMigs = (): v1.InstanceGroupManagersClient =>
    new v1.InstanceGroupManagersClient(fake.clientOptions(bearer()));
  const regionOps = (): v1.RegionOperationsClient =>
    new v1.RegionOperationsClient(fake.clientOptions(bearer()));
  const migRequest = { project: PROJECT, region: REGION, instanceGroupManager: 'runners' };

  async function deleteFromRegional(instances: string[], skipInstancesOnValidationError?: boolean) {
    const [operation] = await regionMigs().deleteInstances({
      ...migRequest,
      regionInstanceGroupManagersDeleteInstancesRequestResource: {
        instances,
        ...(skipInstancesOnValidationError === undefined ? {} : { skipInstancesOnValidationError }),
      },
    });
    return operation.latestResponse as protos.google.cloud.compute.v1.IOperation;
  }

  it('serves an instance with its 19-digit id as the exact string, by project id or number', async () => {
    await start();
    expect(String(Number(BIG_ID))).not.toBe(BIG_ID);

    const [instance] = await instancesClient().get({ project: PROJECT, zone: ZONE, instance: 'runner-1' });
    expect(instance).toMatchObject({
      kind: 'compute#instance',
      id: BIG_ID,
      name: 'runner-1',
      status: 'RUNNING',
      zone: `${COMPUTE_API_ROOT}/projects/${PROJECT}/zones/${ZONE}`,
      selfLink: `${COMPUTE_API_ROOT}/projects/${PROJECT}/zones/${ZONE}/instances/runner-1`,
      metadata: {
        kind: 'compute#metadata',
        items: [
          {
            key: 'created-by',
            value: `projects/${PROJECT_NUMBER}/regions/${REGION}/instanceGroupManagers/runners`,
          },
        ],
      },
    });
    expect(fake.controls.calls[0]?.headers.authorization).toBe('Bearer ya29.test');

    const [byNumber] = await instancesClient().get({
      project: PROJECT_NUMBER,
      zone: ZONE,
      instance: 'runner-1',
    });
    expect(byNumber.id).toBe(BIG_ID);
  });

  it('serves regional and zonal MIGs', async () => {
    await start();
    const [group] = await regionMigs().get(migRequest);
    expect(group).toMatchObject({
      kind: 'compute#instanceGroupManager',
      name: 'runners',
      targetSize: 2,
      region: `${COMPUTE_API_ROOT}/projects/${PROJECT}/regions/${REGION}`,
      selfLink: regional.selfLink,
      status: {
        isStable: true,
        autoscaler: `${COMPUTE_API_ROOT}/projects/${PROJECT}/regions/${REGION}/autoscalers/runners-as`,
      },
      currentActions: { none: 2, deleting: 0, creating: 0 },
    });

    fake.setCurrentAction(zonal, 'zonal-1', 'CREATING_WITHOUT_RETRIES');
    const [zonalGroup] = await zoneMigs().get({
      project: PROJECT,
      zone: 'us-central1-b',
      instanceGroupManager: 'zonal',
    });
    expect(zonalGroup).toMatchObject({
      zone: `${COMPUTE_API_ROOT}/projects/${PROJECT}/zones/us-central1-b`,
      targetSize: 1,
      status: { isStable: false },
      currentActions: { none: 0, creatingWithoutRetries: 1 },
    });

    fake.setStable(zonal, true);
    const [forced] = await zoneMigs().get({
      project: PROJECT,
      zone: 'us-central1-b',
      instanceGroupManager: 'zonal',
    });
    expect(forced.status?.isStable).toBe(true);
  });

  it('deleteInstances marks the VM DELETING and lowers targetSize at once; later the VM is gone', async () => {
    await start();
    const deleted: string[] = [];
    fake.onInstanceDeleted((instance) => deleted.push(instance.id));

    const operation = await deleteFromRegional([`zones/${ZONE}/instances/runner-1`], true);
    expect(operation).toMatchObject({
      kind: 'compute#operation',
      operationType: 'deleteInstances',
      status: 'DONE',
      targetLink: regional.selfLink,
      region: `${COMPUTE_API_ROOT}/projects/${PROJECT}/regions/${REGION}`,
    });
    expect(operation.error).toBeFalsy();
    const [call] = fake.controls.callsTo('POST', '/instanceGroupManagers/runners/deleteInstances');
    expect(call?.body).toEqual({
      instances: [`zones/${ZONE}/instances/runner-1`],
      skipInstancesOnValidationError: true,
    });

    const [managed] = await regionMigs().listManagedInstances(migRequest);
    expect(fake.controls.callsTo('POST', '/listManagedInstances')[0]?.rawBody).toBe('""');
    expect(managed).toEqual([
      expect.objectContaining({
        instance: `${COMPUTE_API_ROOT}/projects/${PROJECT}/zones/${ZONE}/instances/runner-1`,
        id: BIG_ID,
        name: 'runner-1',
        currentAction: 'DELETING',
        instanceStatus: 'RUNNING',
      }),
      expect.objectContaining({ name: 'runner-2', currentAction: 'NONE' }),
    ]);
    const [during] = await regionMigs().get(migRequest);
    expect(during).toMatchObject({
      targetSize: 1,
      status: { isStable: false },
      currentActions: { deleting: 1 },
    });

    fake.completeDeletions();
    expect(deleted).toEqual([BIG_ID]);
    await expect(
      instancesClient().get({ project: PROJECT, zone: ZONE, instance: 'runner-1' }),
    ).rejects.toMatchObject({ code: 404, status: 404 });
    const [after] = await regionMigs().get(migRequest);
    expect(after).toMatchObject({ targetSize: 1, status: { isStable: true }, currentActions: { none: 1 } });
  });

  it('finishes a zonal deletion by itself after deletionDelayMs', async () => {
    await start({ deletionDelayMs: 50 });
    const gone = new Promise<string>((resolve) =>
      fake.onInstanceDeleted((instance) => resolve(instance.name)),
    );
    const [operation] = await zoneMigs().deleteInstances({
      project: PROJECT,
      zone: 'us-central1-b',
      instanceGroupManager: 'zonal',
      instanceGroupManagersDeleteInstancesRequestResource: {
        instances: [`${COMPUTE_API_ROOT}/projects/${PROJECT}/zones/us-central1-b/instances/zonal-1`],
      },
    });
    expect(operation.latestResponse).toMatchObject({
      status: 'DONE',
      zone: `${COMPUTE_API_ROOT}/projects/${PROJECT}/zones/us-central1-b`,
    });
    expect(fake.getMig({ project: PROJECT, zone: 'us-central1-b', name: 'zonal' })?.targetSize).toBe(0);
    expect(fake.getInstance(PROJECT, 'us-central1-b', 'zonal-1')).toBeDefined();
    await expect(gone).resolves.toBe('zonal-1');
    expect(fake.getInstance(PROJECT, 'us-central1-b', 'zonal-1')).toBeUndefined();
  });

  it.each([
    ['a malformed URL', 'instances/runner-1'],
    ['an instance outside the region', 'zones/europe-west1-b/instances/runner-1'],
    ['an instance in another project', `projects/someone-else/zones/${ZONE}/instances/runner-1`],
  ])('deleteInstances answers 400 for %s', async (_, url) => {
    await start();
    await expect(deleteFromRegional([url], true)).rejects.toMatchObject({ code: 400, status: 400 });
    expect(regional.targetSize).toBe(2);
  });

  it('deleteInstances fails the operation for a non-member unless told to skip it', async () => {
    await start();
    const refused = await deleteFromRegional([
      `zones/${ZONE}/instances/runner-1`,
      `zones/${ZONE}/instances/stranger`,
    ]);
    expect(refused).toMatchObject({
      status: 'DONE',
      httpErrorStatusCode: 400,
      error: { errors: [expect.objectContaining({ code: 'CONDITION_NOT_MET' })] },
    });
    expect(regional.members.get('runner-1')?.currentAction).toBe('NONE');

    const skipped = await deleteFromRegional(
      [`zones/${ZONE}/instances/runner-1`, `zones/${ZONE}/instances/stranger`],
      true,
    );
    expect(skipped.error).toBeFalsy();
    expect(regional.members.get('runner-1')?.currentAction).toBe('DELETING');
    expect(regional.targetSize).toBe(1);
  });

  it('serves operations by name and by id through get and wait, including a failed one', async () => {
    await start();
    const operation = await deleteFromRegional([`zones/${ZONE}/instances/runner-1`]);
    const [byName] = await regionOps().get({
      project: PROJECT,
      region: REGION,
      operation: operation.name ?? '',
    });
    // The client's LRO object names the operation by its id ({ name: latestResponse.id }). The typings say
    // uint64 is `number | Long | string`, but it is decoded as a string (longs: String).
    const [byId] = await regionOps().wait({
      project: PROJECT,
      region: REGION,
      operation: String(operation.id),
    });
    expect(byName).toMatchObject({ name: operation.name, status: 'DONE' });
    expect(byId).toMatchObject({ name: operation.name, status: 'DONE' });

    fake.failNextOperation({ httpErrorStatusCode: 404, code: 'RESOURCE_NOT_FOUND', message: 'gone already' });
    const failed = await deleteFromRegional([`zones/us-central1-c/instances/runner-2`]);
    const [waited] = await regionOps().wait({
      project: PROJECT,
      region: REGION,
      operation: failed.name ?? '',
    });
    for (const op of [failed, waited]) {
      expect(op).toMatchObject({
        status: 'DONE',
        httpErrorStatusCode: 404,
        httpErrorMessage: 'NOT FOUND',
        error: { errors: [expect.objectContaining({ code: 'RESOURCE_NOT_FOUND', message: 'gone already' })] },
      });
    }
    expect(regional.members.get('runner-2')?.currentAction).toBe('NONE');
  });

  it('can make an operation RUNNING until it has been polled enough times', async () => {
    await start();
    fake.operationsPendingPolls = 2;
    const [operation] = await zoneMigs().deleteInstances({
      project: PROJECT,
      zone: 'us-central1-b',
      instanceGroupManager: 'zonal',
      instanceGroupManagersDeleteInstancesRequestResource: {
        instances: ['zones/us-central1-b/instances/zonal-1'],
      },
    });
    expect(operation.latestResponse).toMatchObject({ status: 'RUNNING' });
    const ops = new v1.ZoneOperationsClient(fake.clientOptions(bearer()));
    const request = { project: PROJECT, zone: 'us-central1-b', operation: operation.name ?? '' };
    const [first] = await ops.get(request);
    const [second] = await ops.wait(request);
    expect([first.status, second.status]).toEqual(['RUNNING', 'DONE']);
  });

  it('serves autoscalers with and without recommendedSize', async () => {
    await start();
    const regionAutoscalers = new v1.RegionAutoscalersClient(fake.clientOptions(bearer()));
    const [autoscaler] = await regionAutoscalers.get({
      project: PROJECT,
      region: REGION,
      autoscaler: 'runners-as',
    });
    expect(autoscaler).toMatchObject({
      kind: 'compute#autoscaler',
      name: 'runners-as',
      target: regional.selfLink,
      recommendedSize: 2,
      status: 'ACTIVE',
      autoscalingPolicy: { mode: 'ONLY_SCALE_OUT' },
    });

    fake.setRecommendedSize(regional, null);
    const [withoutSize] = await regionAutoscalers.get({
      project: PROJECT,
      region: REGION,
      autoscaler: 'runners-as',
    });
    expect(withoutSize.recommendedSize).toBeUndefined();
    // The client cannot tell an omitted field from `null`; the wire can.
    const raw = await fetch(
      `${fake.url}/compute/v1/projects/${PROJECT}/regions/${REGION}/autoscalers/runners-as`,
      {
        headers: { authorization: 'Bearer ya29.test' },
      },
    );
    expect(await raw.json()).not.toHaveProperty('recommendedSize');

    const zoneAutoscalers = new v1.AutoscalersClient(fake.clientOptions(bearer()));
    const [zonalAutoscaler] = await zoneAutoscalers.get({
      project: PROJECT,
      zone: 'us-central1-b',
      autoscaler: 'zonal',
    });
    expect(zonalAutoscaler).toMatchObject({ target: zonal.selfLink, autoscalingPolicy: { mode: 'ON' } });
    expect(zonalAutoscaler.recommendedSize).toBeUndefined();
  });

  it.each([
    ['instance', () => instancesClient().get({ project: PROJECT, zone: ZONE, instance: 'nope' })],
    ['project', () => instancesClient().get({ project: 'nope', zone: ZONE, instance: 'runner-1' })],
    ['MIG', () => regionMigs().get({ ...migRequest, instanceGroupManager: 'nope' })],
    ['operation', () => regionOps().get({ project: PROJECT, region: REGION, operation: 'operation-1' })],
  ])('answers an unknown %s with a Google-shaped 404', async (_, call) => {
    await start();
    const error: unknown = await call().catch((e: unknown) => e);
    // GaxiosError: .code and .status carry the HTTP status; .message is the raw response body.
    expect(error).toMatchObject({ code: 404, status: 404 });
    expect(JSON.parse((error as Error).message)).toMatchObject({
      error: { code: 404, status: 'NOT_FOUND', errors: [{ domain: 'global', reason: 'notFound' }] },
    });
  });

  it('passes an injected 500 to the client once, without a retry', async () => {
    await start();
    fake.controls.addFault({ path: '/instances/runner-1', status: 500, times: 1 });
    const request = { project: PROJECT, zone: ZONE, instance: 'runner-1' };
    await expect(instancesClient().get(request)).rejects.toMatchObject({ code: 500, status: 500 });
    expect(fake.controls.callsTo('GET', '/instances/runner-1')).toHaveLength(1);
    await expect(instancesClient().get(request)).resolves.toBeDefined();
  });

  it('answers 401 to a request without a bearer token, unless requireAuth is false', async () => {
    await start();
    const anonymous = new v1.InstancesClient(fake.clientOptions(new PassThroughClient()));
    const error: unknown = await anonymous
      .get({ project: PROJECT, zone: ZONE, instance: 'runner-1' })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 401, status: 401 });
    expect(JSON.parse((error as Error).message)).toMatchObject({ error: { status: 'UNAUTHENTICATED' } });
    expect(fake.controls.calls[0]?.headers.authorization).toBeUndefined();
    await fake.close();

    await start({ requireAuth: false });
    const open = new v1.InstancesClient(fake.clientOptions(new PassThroughClient()));
    const [instance] = await open.get({ project: PROJECT, zone: ZONE, instance: 'runner-1' });
    expect(instance.id).toBe(BIG_ID);
  });
});
