import {
  derivedLabels,
  instanceIdLabel,
  instanceIdOfLabels,
  isBoundToInstance,
  isReservedLabel,
  parseDerivedLabel,
  parsePolicy,
  regionOfZone,
} from '#token-proxy';

const instance = {
  projectId: 'runners-prod',
  projectNumber: '123456789012',
  zone: 'europe-west4-b',
  instanceId: '4567890123456789012',
  instanceName: 'gh-runner-presubmit-x7k2',
};

describe('derived runner labels', () => {
  it('always start with the instance-id label, then the keys asked for, in one gce-<key>-<value> form', () => {
    expect(derivedLabels(instance)).toEqual(['gce-instance-id-4567890123456789012']);
    expect(derivedLabels(instance, ['zone', 'region', 'project', 'instance-name'])).toEqual([
      'gce-instance-id-4567890123456789012',
      'gce-zone-europe-west4-b',
      'gce-region-europe-west4',
      'gce-project-runners-prod',
      'gce-instance-name-gh-runner-presubmit-x7k2',
    ]);
    expect(derivedLabels(instance, ['zone', 'zone', 'instance-id'])).toEqual([
      'gce-instance-id-4567890123456789012',
      'gce-zone-europe-west4-b',
    ]);
  });

  it('use only characters GitHub itself uses in labels, within 100 characters', () => {
    const longest = derivedLabels({ ...instance, instanceName: `a${'b'.repeat(61)}c` }, ['instance-name']);
    for (const label of longest) expect(label).toMatch(/^[a-z0-9][a-z0-9.-]{0,99}$/);
  });

  it.each([
    ['us-central1-a', 'us-central1'],
    ['europe-west4-b', 'europe-west4'],
    ['me-central2-c', 'me-central2'],
  ])('take the region of zone %s by dropping its last -x: %s', (zone, region) => {
    expect(regionOfZone(zone)).toBe(region);
  });

  it("write a legacy domain-scoped project's colon as a dot", () => {
    expect(derivedLabels({ ...instance, projectId: 'example.com:runners' }, ['project'])).toEqual([
      'gce-instance-id-4567890123456789012',
      'gce-project-example.com.runners',
    ]);
  });

  it('refuse a claim no Compute Engine name has rather than make a label of it', () => {
    expect(() =>
      derivedLabels({ ...instance, instanceName: 'gh runner,postsubmit' }, ['instance-name']),
    ).toThrow('cannot be a runner label');
  });

  it('read back with parseDerivedLabel, whatever the case; other labels are not derived', () => {
    expect(parseDerivedLabel('gce-instance-id-4567890123456789012')).toEqual({
      key: 'instance-id',
      value: '4567890123456789012',
    });
    expect(parseDerivedLabel('GCE-Instance-Name-gh-runner-id-1')).toEqual({
      key: 'instance-name',
      value: 'gh-runner-id-1',
    });
    expect(parseDerivedLabel('gce-region-us-central1')).toEqual({ key: 'region', value: 'us-central1' });
    expect(parseDerivedLabel('self-hosted')).toBeUndefined();
    expect(parseDerivedLabel('gce-zone-')).toBeUndefined();
  });

  it.each([
    ['gce-instance-id-1', true],
    ['GCE-INSTANCE-ID-1', true],
    ['gce-zone-us-central1-a', true],
    ['gce-region-x', true],
    ['gce-project-x', true],
    ['gce-instance-name-x', true],
    ['gce-instance-id-', true],
    ['gce-large', false],
    ['gce-instance', false],
    ['my-gce-zone-x', false],
    ['self-hosted', false],
  ])('treat %s as reserved: %s', (label, reserved) => {
    expect(isReservedLabel(label)).toBe(reserved);
  });

  it('bind a runner to exactly one instance id, or to none', () => {
    const mine = ['self-hosted', instanceIdLabel(instance.instanceId)];
    expect(instanceIdOfLabels(mine)).toBe(instance.instanceId);
    expect(isBoundToInstance(mine, instance.instanceId)).toBe(true);
    expect(isBoundToInstance(mine, '1234567890123456789')).toBe(false);
    expect(instanceIdOfLabels(['self-hosted'])).toBeUndefined();
    expect(instanceIdOfLabels([...mine, instanceIdLabel('1234567890123456789')])).toBeUndefined();
    expect(instanceIdOfLabels(['gce-instance-id-not-a-number'])).toBeUndefined();
  });
});

describe('policy derivedLabels', () => {
  const rule = {
    name: 'presubmit',
    callers: { serviceAccounts: ['runner-presubmit@runners-prod.iam.gserviceaccount.com'] },
    scopes: ['my-org'],
  };

  it('compiles the keys a rule asks for, each once', () => {
    const policy = parsePolicy(
      JSON.stringify({ rules: [{ ...rule, derivedLabels: ['zone', 'region', 'zone', 'instance-name'] }] }),
    );
    expect(policy.rules[0]!.derivedLabels).toEqual(['zone', 'region', 'instance-name']);
    expect(parsePolicy(JSON.stringify({ rules: [rule] })).rules[0]!.derivedLabels).toBeUndefined();
  });

  it.each([
    ['an unknown key', ['hostname']],
    ['instance-id, which is always added', ['instance-id']],
  ])('refuses %s', (_, derivedLabels) => {
    expect(() => parsePolicy(JSON.stringify({ rules: [{ ...rule, derivedLabels }] }))).toThrow(
      /rules\[0\]\.derivedLabels\[0\]: must be one of "zone", "region", "project", "instance-name" \(instance-id is always added\)/,
    );
  });

  it('refuses default labels in the reserved form', () => {
    expect(() =>
      parsePolicy(
        JSON.stringify({ rules: [{ ...rule, defaultLabels: ['linux', 'gce-zone-us-central1-a'] }] }),
      ),
    ).toThrow('rules[0].defaultLabels[1]: "gce-zone-us-central1-a" is reserved for derived labels');
  });
});
