import { setTimeout as sleep } from 'node:timers/promises';
import { v1 } from '@google-cloud/compute';
import type { protos } from '@google-cloud/compute';
import { OAuth2Client } from 'google-auth-library';
import { COMPUTE_API_ROOT, startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeInstance, FakeMig } from '#fakes/compute-api';

type Operation = protos.google.cloud.compute.v1.IOperation;

const PROJECT = 'runners-prod';
const REGION = 'us-central1';

function bearer(): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'ya29.test' });
  return auth;
}

describe('fake Compute API: creating named members', () => {
  let fake: FakeComputeApi;
  let regional: FakeMig;
  let zonal: FakeMig;
  let regionMigs: v1.RegionInstanceGroupManagersClient;
  let zoneMigs: v1.InstanceGroupManagersClient;

  beforeEach(async () => {
    fake = await startFakeComputeApi({ bootDelayMs: Infinity, deletionDelayMs: 0 });
    fake.addProject({ projectId: PROJECT, projectNumber: '123456789012' });
    regional = fake.addMig({ project: PROJECT, region: REGION, name: 'gpu' });
    zonal = fake.addMig({ project: PROJECT, zone: 'us-east1-b', name: 'gpu-east' });
    regionMigs = new v1.RegionInstanceGroupManagersClient(fake.clientOptions(bearer()));
    zoneMigs = new v1.InstanceGroupManagersClient(fake.clientOptions(bearer()));
  });
  afterEach(() => fake.close());

  const createRegional = async (names: string[], requestId?: string): Promise<Operation> => {
    const [operation] = await regionMigs.createInstances({
      project: PROJECT,
      region: REGION,
      instanceGroupManager: 'gpu',
      regionInstanceGroupManagersCreateInstancesRequestResource: {
        instances: names.map((name) => ({ name })),
      },
      ...(requestId === undefined ? {} : { requestId }),
    });
    return operation.latestResponse as Operation;
  };
  const listRegional = async () => {
    const [members] = await regionMigs.listManagedInstances({
      project: PROJECT,
      region: REGION,
      instanceGroupManager: 'gpu',
    });
    return members;
  };

  it('adds the listed members as CREATING, grows targetSize, and starts their VMs after the boot delay', async () => {
    const created: FakeInstance[] = [];
    fake.onInstanceCreated((instance) => created.push(instance));
    const operation = await createRegional(['gpu-1', 'gpu-2', 'gpu-3']);
    expect(operation).toMatchObject({ operationType: 'createInstances', status: 'DONE' });
    expect(operation.error).toBeFalsy();
    expect(fake.controls.callsTo('POST', '/createInstances')[0]?.body).toEqual({
      instances: [{ name: 'gpu-1' }, { name: 'gpu-2' }, { name: 'gpu-3' }],
    });
    expect(regional.targetSize).toBe(3);

    const members = await listRegional();
    expect(members.map((m) => [m.name, m.currentAction])).toEqual([
      ['gpu-1', 'CREATING'],
      ['gpu-2', 'CREATING'],
      ['gpu-3', 'CREATING'],
    ]);
    // One per zone (the EVEN shape), with the URL known before the VM exists.
    expect(members.map((m) => m.instance)).toEqual(
      ['a', 'b', 'c'].map(
        (z, i) => `${COMPUTE_API_ROOT}/projects/${PROJECT}/zones/${REGION}-${z}/instances/gpu-${i + 1}`,
      ),
    );
    expect(members.every((m) => !m.instanceStatus && (m.id ?? '0') === '0')).toBe(true);
    expect(created).toEqual([]);

    fake.completeBoots();
    const running = await listRegional();
    expect(running.map((m) => [m.currentAction, m.instanceStatus])).toEqual([
      ['NONE', 'RUNNING'],
      ['NONE', 'RUNNING'],
      ['NONE', 'RUNNING'],
    ]);
    expect(running[0]?.id).toMatch(/^\d{19}$/);
    expect(created.map((i) => i.name)).toEqual(['gpu-1', 'gpu-2', 'gpu-3']);
    expect(created[0]?.metadata['created-by']).toBe(
      `projects/123456789012/regions/${REGION}/instanceGroupManagers/gpu`,
    );
  });

  it('creates in a zonal MIG, and boots by itself when the boot delay is finite', async () => {
    fake.bootDelayMs = 5;
    const [operation] = await zoneMigs.createInstances({
      project: PROJECT,
      zone: 'us-east1-b',
      instanceGroupManager: 'gpu-east',
      instanceGroupManagersCreateInstancesRequestResource: { instances: [{ name: 'east-1' }] },
    });
    expect((operation.latestResponse as Operation).status).toBe('DONE');
    expect(zonal.members.get('east-1')).toMatchObject({ zone: 'us-east1-b', currentAction: 'CREATING' });
    for (let i = 0; i < 100 && zonal.members.get('east-1')?.currentAction !== 'NONE'; i += 1) await sleep(5);
    expect(fake.getInstance(PROJECT, 'us-east1-b', 'east-1')?.status).toBe('RUNNING');
  });

  it('refuses a request listing an existing name with 409 alreadyExists, creating none of it', async () => {
    await createRegional(['gpu-1']);
    await expect(createRegional(['gpu-2', 'gpu-1'])).rejects.toMatchObject({ code: 409 });
    expect([...regional.members.keys()]).toEqual(['gpu-1']);
    expect(regional.targetSize).toBe(1);
  });

  it('can answer an existing name with a failed Operation instead', async () => {
    fake.duplicateNameAnswer = 'operation-error';
    await createRegional(['gpu-1']);
    const operation = await createRegional(['gpu-2', 'gpu-1']);
    expect(operation).toMatchObject({
      status: 'DONE',
      httpErrorStatusCode: 409,
      error: { errors: [{ code: 'RESOURCE_ALREADY_EXISTS' }] },
    });
    expect([...regional.members.keys()]).toEqual(['gpu-1']);
  });

  it.each([
    ['an invalid name', ['GPU_1']],
    ['a name listed twice', ['gpu-1', 'gpu-1']],
    ['more than 1000 names', Array.from({ length: 1001 }, (_, i) => `gpu-${i}`)],
  ])('refuses %s with 400', async (_, names) => {
    await expect(createRegional(names)).rejects.toMatchObject({ code: 400 });
    expect(regional.members.size).toBe(0);
  });

  it('keeps members CREATING with lastAttempt.errors in a zone out of capacity, and starts them when it has some', async () => {
    fake.setZoneCapacity(PROJECT, `${REGION}-a`, { remaining: 0 });
    fake.setZoneCapacity(PROJECT, `${REGION}-b`, { remaining: 0, code: 'QUOTA_EXCEEDED' });
    await createRegional(['gpu-1', 'gpu-2', 'gpu-3']);
    fake.completeBoots();
    const members = await listRegional();
    expect(
      members.map((m) => [m.name, m.currentAction, m.lastAttempt?.errors?.errors?.[0]?.code ?? null]),
    ).toEqual([
      ['gpu-1', 'CREATING', 'ZONE_RESOURCE_POOL_EXHAUSTED'],
      ['gpu-2', 'CREATING', 'QUOTA_EXCEEDED'],
      ['gpu-3', 'NONE', null],
    ]);
    const [group] = await regionMigs.get({ project: PROJECT, region: REGION, instanceGroupManager: 'gpu' });
    expect(group).toMatchObject({
      targetSize: 3,
      status: { isStable: false },
      currentActions: { creating: 2, none: 1 },
    });

    fake.setZoneCapacity(PROJECT, `${REGION}-a`, { remaining: 1 });
    expect(regional.members.get('gpu-1')).toMatchObject({
      currentAction: 'NONE',
      lastAttemptErrors: undefined,
    });
    expect(regional.members.get('gpu-2')?.currentAction).toBe('CREATING');
  });

  it('deletes a member that is still CREATING: it never starts, and targetSize shrinks', async () => {
    const created: string[] = [];
    fake.onInstanceCreated((instance) => created.push(instance.name));
    fake.setZoneCapacity(PROJECT, `${REGION}-a`, { remaining: 0 });
    await createRegional(['gpu-1', 'gpu-2']);
    fake.completeBoots();
    const [operation] = await regionMigs.deleteInstances({
      project: PROJECT,
      region: REGION,
      instanceGroupManager: 'gpu',
      regionInstanceGroupManagersDeleteInstancesRequestResource: {
        instances: [`zones/${REGION}-a/instances/gpu-1`],
        skipInstancesOnValidationError: false,
      },
    });
    expect((operation.latestResponse as Operation).error).toBeFalsy();
    expect(regional.targetSize).toBe(1);
    await sleep(5);
    fake.setZoneCapacity(PROJECT, `${REGION}-a`, undefined);
    expect([...regional.members.keys()]).toEqual(['gpu-2']);
    expect(created).toEqual(['gpu-2']);
  });

  it('answers a repeated requestId with the first Operation and creates nothing more', async () => {
    const first = await createRegional(['gpu-1'], '5bd5f0a6-0b8c-4c8f-9e9a-2f1b3a4c5d6e');
    const again = await createRegional(['gpu-1'], '5bd5f0a6-0b8c-4c8f-9e9a-2f1b3a4c5d6e');
    expect(again.name).toBe(first.name);
    expect(regional.targetSize).toBe(1);
  });
});
