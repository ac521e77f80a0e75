import { v1 } from '@google-cloud/compute';
import { OAuth2Client } from 'google-auth-library';
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi } from '#fakes/compute-api';

const PROJECT = 'runners-prod';

function bearer(): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'ya29.test' });
  return auth;
}

describe('fake Compute API: instance labels and instances.aggregatedList', () => {
  let fake: FakeComputeApi;
  beforeEach(async () => {
    fake = await startFakeComputeApi({ bootDelayMs: Infinity });
    fake.addProject({ projectId: PROJECT, projectNumber: '123456789012' });
    const mig = fake.addMig({ project: PROJECT, region: 'us-central1', name: 'runners' });
    fake.addInstance({
      project: PROJECT,
      zone: 'us-central1-a',
      name: 'kept-1',
      mig,
      labels: { 'github-runner-keep': 'true' },
    });
    fake.addInstance({ project: PROJECT, zone: 'us-central1-b', name: 'plain-1', mig });
    fake.addInstance({
      project: PROJECT,
      zone: 'us-east1-b',
      name: 'kept-2',
      labels: { 'github-runner-keep': 'true', team: 'ci' },
    });
    fake.addInstance({
      project: PROJECT,
      zone: 'us-east1-b',
      name: 'not-kept',
      labels: { 'github-runner-keep': 'false' },
    });
  });
  afterEach(() => fake.close());

  const client = () => new v1.InstancesClient(fake.clientOptions(bearer()));

  async function list(filter?: string, maxResults?: number): Promise<string[]> {
    const names: string[] = [];
    const request = {
      project: PROJECT,
      ...(filter !== undefined && { filter }),
      ...(maxResults !== undefined && { maxResults }),
    };
    for await (const [scope, scoped] of client().aggregatedListAsync(request)) {
      for (const instance of scoped.instances ?? []) names.push(`${scope}/${instance.name}`);
    }
    return names.sort();
  }

  it('serves labels on instances.get', async () => {
    const [instance] = await client().get({ project: PROJECT, zone: 'us-east1-b', instance: 'kept-2' });
    expect(instance.labels).toEqual({ 'github-runner-keep': 'true', team: 'ci' });
    expect(instance.labelFingerprint).toEqual(expect.any(String));
  });

  it.each([
    ['labels.github-runner-keep = "true"', ['zones/us-central1-a/kept-1', 'zones/us-east1-b/kept-2']],
    ['labels.github-runner-keep=true', ['zones/us-central1-a/kept-1', 'zones/us-east1-b/kept-2']],
    ['labels.github-runner-keep != "true"', ['zones/us-central1-b/plain-1', 'zones/us-east1-b/not-kept']],
    ['labels.team:*', ['zones/us-east1-b/kept-2']],
    ['(labels.github-runner-keep = "true") AND (zone = "us-east1-b")', ['zones/us-east1-b/kept-2']],
    ['(labels.github-runner-keep = "true") (name = kept-1)', ['zones/us-central1-a/kept-1']],
  ])('lists the instances matching %s, across zones, through the real client', async (filter, names) => {
    expect(await list(filter)).toEqual(names);
    const [call] = fake.controls.callsTo('GET', `/compute/v1/projects/${PROJECT}/aggregated/instances`);
    expect(call?.query.filter).toBe(filter);
  });

  it('pages by maxResults, and the client follows nextPageToken', async () => {
    expect(await list(undefined, 1)).toHaveLength(4);
    expect(fake.controls.callsTo('GET', /\/aggregated\/instances$/)).toHaveLength(4);
  });

  it.each(['labels.github-runner-keep eq true', 'cpuPlatform = "Intel"', '(a = 1) OR (b = 2)'])(
    'refuses the filter %s with 400, as the fake does not understand it',
    async (filter) => {
      await expect(list(filter)).rejects.toMatchObject({ code: 400 });
    },
  );
});
