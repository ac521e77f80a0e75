import { formatMigRef, parseCreatedBy, parseResourceUrl } from '#instance-deleter';

describe('created-by', () => {
  it.each([
    [
      'a regional MIG by project number',
      'projects/794014424711/regions/us-central1/instanceGroupManagers/gh-runner-presubmit',
      { project: '794014424711', scope: 'regions', location: 'us-central1', name: 'gh-runner-presubmit' },
    ],
    [
      'a zonal MIG by project id',
      'projects/runners-prod/zones/us-central1-a/instanceGroupManagers/gh-runner-nightly',
      { project: 'runners-prod', scope: 'zones', location: 'us-central1-a', name: 'gh-runner-nightly' },
    ],
    [
      'a full URL',
      'https://www.googleapis.com/compute/v1/projects/runners-prod/regions/europe-west4/instanceGroupManagers/pool',
      { project: 'runners-prod', scope: 'regions', location: 'europe-west4', name: 'pool' },
    ],
    [
      'a domain-scoped project',
      'projects/example.com:runners/zones/us-east1-b/instanceGroupManagers/pool',
      { project: 'example.com:runners', scope: 'zones', location: 'us-east1-b', name: 'pool' },
    ],
  ])('parses %s', (_, value, mig) => {
    expect(parseCreatedBy(value)).toEqual(mig);
    expect(parseCreatedBy(value) && formatMigRef(parseCreatedBy(value)!)).toBe(
      value.replace(/^https:\/\/[^/]+\/compute\/v1\//, ''),
    );
  });

  it.each([
    ['an instance URL', 'projects/p/zones/us-central1-a/instances/vm-1'],
    ['a global resource', 'projects/p/global/instanceGroupManagers/pool'],
    ['a missing project', 'zones/us-central1-a/instanceGroupManagers/pool'],
    ['extra segments', 'projects/p/zones/z/instanceGroupManagers/pool/listManagedInstances'],
    ['an upper-case name', 'projects/p/zones/us-central1-a/instanceGroupManagers/Pool'],
    ['a name with a slash', 'projects/p/zones/us-central1-a/instanceGroupManagers/pool%2Fx'],
    ['another host scheme', 'http://evil.example/compute/v1/projects/p/zones/z/instanceGroupManagers/pool'],
    ['nothing', ''],
  ])('refuses %s', (_, value) => {
    expect(parseCreatedBy(value)).toBeUndefined();
  });
});

describe('parseResourceUrl', () => {
  it('parses the autoscaler URL a MIG reports', () => {
    expect(
      parseResourceUrl(
        'https://www.googleapis.com/compute/v1/projects/runners-prod/regions/us-central1/autoscalers/gh-runner-as',
        'autoscalers',
      ),
    ).toEqual({ project: 'runners-prod', scope: 'regions', location: 'us-central1', name: 'gh-runner-as' });
  });

  it('checks the collection', () => {
    expect(
      parseResourceUrl('projects/p/regions/us-central1/instanceGroupManagers/pool', 'autoscalers'),
    ).toBeUndefined();
  });
});
