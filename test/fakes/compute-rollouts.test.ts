import { v1 } from '@google-cloud/compute';
import type { protos } from '@google-cloud/compute';
import { OAuth2Client } from 'google-auth-library';
import { COMPUTE_API_ROOT, startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeMig } from '#fakes/compute-api';

type Operation = protos.google.cloud.compute.v1.IOperation;

const PROJECT = 'runners-prod';
const REGION = 'us-central1';
const ZONE = 'us-east1-b';
const templateUrl = (name: string) =>
  `${COMPUTE_API_ROOT}/projects/${PROJECT}/global/instanceTemplates/${name}`;

function bearer(): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'ya29.test' });
  return auth;
}

describe('fake Compute API: instance templates and rollouts', () => {
  let fake: FakeComputeApi;
  let regional: FakeMig;
  let zonal: FakeMig;
  let templates: v1.InstanceTemplatesClient;
  let globalOperations: v1.GlobalOperationsClient;
  let regionMigs: v1.RegionInstanceGroupManagersClient;
  let zoneMigs: v1.InstanceGroupManagersClient;

  beforeEach(async () => {
    fake = await startFakeComputeApi({ bootDelayMs: Infinity, deletionDelayMs: 0 });
    fake.addProject({ projectId: PROJECT, projectNumber: '123456789012' });
    regional = fake.addMig({ project: PROJECT, region: REGION, name: 'gh-cpu' });
    zonal = fake.addMig({ project: PROJECT, zone: ZONE, name: 'gh-cpu-east' });
    const stable = fake.addInstanceTemplate({
      project: PROJECT,
      name: 'runner-2-330-0',
      metadata: { 'github-runner-version': '2.330.0', 'github-runner-sha256': 'a'.repeat(64) },
      properties: { machineType: 'e2-standard-4' },
    });
    fake.setInstanceTemplate(regional, stable);
    fake.setInstanceTemplate(zonal, stable);
    const options = fake.clientOptions(bearer());
    templates = new v1.InstanceTemplatesClient(options);
    globalOperations = new v1.GlobalOperationsClient(options);
    regionMigs = new v1.RegionInstanceGroupManagersClient(options);
    zoneMigs = new v1.InstanceGroupManagersClient(options);
  });
  afterEach(() => fake.close());

  const createRegional = (names: string[]) =>
    regionMigs.createInstances({
      project: PROJECT,
      region: REGION,
      instanceGroupManager: 'gh-cpu',
      regionInstanceGroupManagersCreateInstancesRequestResource: {
        instances: names.map((name) => ({ name })),
      },
    });
  const regionalMembers = async () => {
    const [members] = await regionMigs.listManagedInstances({
      project: PROJECT,
      region: REGION,
      instanceGroupManager: 'gh-cpu',
    });
    return members.map((m) => [m.name, m.version?.instanceTemplate, m.version?.name ?? '']);
  };
  const getRegional = async () =>
    (await regionMigs.get({ project: PROJECT, region: REGION, instanceGroupManager: 'gh-cpu' }))[0];
  const patchRegional = async (resource: protos.google.cloud.compute.v1.IInstanceGroupManager) => {
    const [started] = await regionMigs.patch({
      project: PROJECT,
      region: REGION,
      instanceGroupManager: 'gh-cpu',
      instanceGroupManagerResource: resource,
    });
    return started.latestResponse as Operation;
  };

  it('inserts a template (a global Operation), gets it with its metadata, and lists templates', async () => {
    const [base] = await templates.get({ project: PROJECT, instanceTemplate: 'runner-2-330-0' });
    expect(base.properties?.metadata?.items?.map(({ key, value }) => ({ key, value }))).toEqual([
      { key: 'github-runner-version', value: '2.330.0' },
      { key: 'github-runner-sha256', value: 'a'.repeat(64) },
    ]);
    const [started] = await templates.insert({
      project: PROJECT,
      instanceTemplateResource: {
        name: 'runner-2-331-0',
        properties: {
          machineType: 'e2-standard-4',
          metadata: { items: [{ key: 'github-runner-version', value: '2.331.0' }] },
        },
      },
    });
    const operation = started.latestResponse as Operation;
    expect(operation).toMatchObject({
      operationType: 'insert',
      status: 'DONE',
      targetLink: templateUrl('runner-2-331-0'),
    });
    const [waited] = await globalOperations.wait({ project: PROJECT, operation: operation.name! });
    expect(waited.status).toBe('DONE');
    const [created] = await templates.get({ project: PROJECT, instanceTemplate: 'runner-2-331-0' });
    expect(created.properties?.machineType).toBe('e2-standard-4');
    expect(created.selfLink).toBe(templateUrl('runner-2-331-0'));
    const [list] = await templates.list({ project: PROJECT });
    expect(list.map((t) => t.name)).toEqual(['runner-2-330-0', 'runner-2-331-0']);
  });

  it('refuses an existing template name with 409 and a missing one with 404', async () => {
    await expect(
      templates.insert({
        project: PROJECT,
        instanceTemplateResource: { name: 'runner-2-330-0', properties: {} },
      }),
    ).rejects.toMatchObject({ code: 409 });
    await expect(templates.get({ project: PROJECT, instanceTemplate: 'nope' })).rejects.toMatchObject({
      code: 404,
    });
  });

  it('gives new members the MIG template, and reports it on the MIG and each member', async () => {
    await createRegional(['gh-cpu-1', 'gh-cpu-2']);
    expect(await regionalMembers()).toEqual([
      ['gh-cpu-1', templateUrl('runner-2-330-0'), ''],
      ['gh-cpu-2', templateUrl('runner-2-330-0'), ''],
    ]);
    const mig = await getRegional();
    expect(mig.instanceTemplate).toBe(templateUrl('runner-2-330-0'));
    expect(mig.versions).toEqual([
      expect.objectContaining({
        instanceTemplate: templateUrl('runner-2-330-0'),
        targetSize: expect.objectContaining({ calculated: 2 }),
      }),
    ]);
    expect(mig.status?.versionTarget?.isReached).toBe(true);
    expect(mig.distributionPolicy?.zones?.map((z) => z.zone)).toEqual(
      ['a', 'b', 'c'].map((z) => `${COMPUTE_API_ROOT}/projects/${PROJECT}/zones/${REGION}-${z}`),
    );
  });

  it('a canary version with a fixed size: new members fill the canary first, the rest stay stable (opportunistic)', async () => {
    fake.addInstanceTemplate({
      project: PROJECT,
      name: 'runner-2-331-0',
      metadata: { 'github-runner-version': '2.331.0' },
    });
    await createRegional(['gh-cpu-1', 'gh-cpu-2']);
    const op = await patchRegional({
      versions: [
        {
          name: 'canary',
          instanceTemplate: 'global/instanceTemplates/runner-2-331-0',
          targetSize: { fixed: 1 },
        },
        { name: 'stable', instanceTemplate: templateUrl('runner-2-330-0') },
      ],
      updatePolicy: { type: 'OPPORTUNISTIC' },
    });
    expect(op).toMatchObject({ operationType: 'patch', status: 'DONE' });
    expect(op.error).toBeFalsy();
    // Opportunistic: nothing running changes, so the target is not reached yet.
    let mig = await getRegional();
    expect(mig.status?.versionTarget?.isReached).toBe(false);
    expect(mig.updatePolicy?.type).toBe('OPPORTUNISTIC');
    expect(mig.versions?.map((v) => [v.name, v.targetSize?.calculated])).toEqual([
      ['canary', 1],
      ['stable', 1],
    ]);
    // Two VMs delete themselves after their jobs; the next two created: one canary, one stable.
    await regionMigs.deleteInstances({
      project: PROJECT,
      region: REGION,
      instanceGroupManager: 'gh-cpu',
      regionInstanceGroupManagersDeleteInstancesRequestResource: {
        instances: [...regional.members.values()].map((m) => `zones/${m.zone}/instances/${m.name}`),
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 10)); // deletionDelayMs 0: gone on the next turn
    expect(regional.members.size).toBe(0);
    await createRegional(['gh-cpu-3', 'gh-cpu-4']);
    expect(await regionalMembers()).toEqual([
      ['gh-cpu-3', templateUrl('runner-2-331-0'), 'canary'],
      ['gh-cpu-4', templateUrl('runner-2-330-0'), 'stable'],
    ]);
    mig = await getRegional();
    expect(mig.status?.versionTarget?.isReached).toBe(true);
    expect(fake.controls.callsTo('PATCH', '/instanceGroupManagers/gh-cpu')[0]?.body).toMatchObject({
      versions: [
        expect.objectContaining({ name: 'canary', targetSize: { fixed: 1 } }),
        expect.objectContaining({ name: 'stable' }),
      ],
    });
  });

  it('a proactive update replaces running members at once', async () => {
    fake.addInstanceTemplate({ project: PROJECT, name: 'runner-2-331-0' });
    await createRegional(['gh-cpu-1', 'gh-cpu-2', 'gh-cpu-3']);
    await patchRegional({
      versions: [
        { name: 'canary', instanceTemplate: templateUrl('runner-2-331-0'), targetSize: { fixed: 1 } },
        { name: 'stable', instanceTemplate: templateUrl('runner-2-330-0') },
      ],
      updatePolicy: { type: 'PROACTIVE', minimalAction: 'REPLACE', replacementMethod: 'RECREATE' },
    });
    expect((await regionalMembers()).map((m) => m[2]).sort()).toEqual(['canary', 'stable', 'stable']);
    expect((await getRegional()).status?.versionTarget?.isReached).toBe(true);
  });

  it('setInstanceTemplate on a zonal MIG: one version again, for new members', async () => {
    const next = fake.addInstanceTemplate({ project: PROJECT, name: 'runner-2-331-0' });
    const [started] = await zoneMigs.setInstanceTemplate({
      project: PROJECT,
      zone: ZONE,
      instanceGroupManager: 'gh-cpu-east',
      instanceGroupManagersSetInstanceTemplateRequestResource: { instanceTemplate: next },
    });
    expect((started.latestResponse as Operation).operationType).toBe('setInstanceTemplate');
    const [mig] = await zoneMigs.get({ project: PROJECT, zone: ZONE, instanceGroupManager: 'gh-cpu-east' });
    expect(mig.instanceTemplate).toBe(next);
    expect(mig.versions?.map((v) => v.instanceTemplate)).toEqual([next]);
    expect(zonal.versions).toBeUndefined();
  });

  it('refuses versions naming a missing template (404) or two without a target (400), changing nothing', async () => {
    await expect(
      patchRegional({ versions: [{ name: 'x', instanceTemplate: templateUrl('missing') }] }),
    ).rejects.toMatchObject({ code: 404 });
    await expect(
      patchRegional({
        versions: [
          { name: 'a', instanceTemplate: templateUrl('runner-2-330-0') },
          { name: 'b', instanceTemplate: templateUrl('runner-2-330-0') },
        ],
      }),
    ).rejects.toMatchObject({ code: 400 });
    await expect(patchRegional({ updatePolicy: { type: 'SOMETIMES' } })).rejects.toMatchObject({ code: 400 });
    expect(regional.versions).toBeUndefined();
    expect(regional.updatePolicy).toBeUndefined();
  });

  it('lists zonal and regional MIGs in one aggregated list, paged', async () => {
    const seen: Array<[string, string[]]> = [];
    for await (const [scope, list] of zoneMigs.aggregatedListAsync({ project: PROJECT, maxResults: 1 })) {
      if (list.instanceGroupManagers?.length)
        seen.push([scope, list.instanceGroupManagers.map((m) => m.name ?? '')]);
    }
    expect(seen.sort()).toEqual([
      [`regions/${REGION}`, ['gh-cpu']],
      [`zones/${ZONE}`, ['gh-cpu-east']],
    ]);
    expect(fake.controls.callsTo('GET', '/aggregated/instanceGroupManagers').length).toBe(2);
  });
});
