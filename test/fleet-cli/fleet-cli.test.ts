import { OAuth2Client } from 'google-auth-library';
import { EXIT, runFleetCli } from '#fleet-cli';
import { COMPUTE_API_ROOT, startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeMig } from '#fakes/compute-api';

const PROJECT = 'runners-prod';
const SHA = 'c'.repeat(64);
const templateUrl = (name: string) =>
  `${COMPUTE_API_ROOT}/projects/${PROJECT}/global/instanceTemplates/${name}`;

/** The operator's credentials, as the fake Compute wants them (a Bearer access token). */
function operator(): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'ya29.operator' });
  return auth;
}

describe('npm run fleet', () => {
  let compute: FakeComputeApi;
  let migs: { cpu: FakeMig; cpuEast: FakeMig; gpuA: FakeMig; eu: FakeMig };

  beforeEach(async () => {
    compute = await startFakeComputeApi({ bootDelayMs: Infinity });
    compute.addProject({ projectId: PROJECT, projectNumber: '123456789012' });
    migs = {
      cpu: compute.addMig({ project: PROJECT, region: 'us-central1', name: 'gh-cpu' }),
      cpuEast: compute.addMig({ project: PROJECT, zone: 'us-east1-b', name: 'gh-cpu-east' }),
      gpuA: compute.addMig({ project: PROJECT, zone: 'us-central1-a', name: 'gh-gpu-a' }),
      eu: compute.addMig({ project: PROJECT, region: 'europe-west4', name: 'gh-cpu-eu' }),
    };
    const stable = compute.addInstanceTemplate({
      project: PROJECT,
      name: 'gh-runner-2-329-0',
      metadata: {
        'github-runner-version': '2.329.0',
        'github-runner-sha256': 'a'.repeat(64),
        'startup-script': '#!/bin/bash',
      },
      properties: {
        machineType: 'e2-standard-4',
        serviceAccounts: [{ email: 'gh-runner@runners-prod.iam.gserviceaccount.com', scopes: [] }],
      },
    });
    for (const mig of Object.values(migs)) compute.setInstanceTemplate(mig, stable);
    compute.addInstance({ project: PROJECT, zone: 'us-central1-a', name: 'gh-cpu-1', mig: migs.cpu });
    compute.addInstance({ project: PROJECT, zone: 'us-central1-b', name: 'gh-cpu-2', mig: migs.cpu });
  });
  afterEach(() => compute.close());

  /** Runs the CLI in process against the fake, as `npm run fleet -- …args` would with ADC. */
  const fleet = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runFleetCli(args, {
      env: { COMPUTE_API_ENDPOINT: compute.url, GOOGLE_CLOUD_PROJECT: PROJECT },
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      computeOptions: { authClient: operator() },
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const patches = () => compute.controls.callsTo('PATCH', /\/instanceGroupManagers\//);
  const addNewTemplate = () =>
    compute.addInstanceTemplate({
      project: PROJECT,
      name: 'gh-runner-2-331-0',
      metadata: { 'github-runner-version': '2.331.0' },
    });

  describe('the command line', () => {
    it('prints help and exits 0; a bare call or an unknown command is a usage error (2)', async () => {
      const help = await fleet('--help');
      expect(help.code).toBe(EXIT.ok);
      expect(help.out).toMatch(/^Usage: npm run fleet -- <command>/);
      expect(help.out).toMatch(
        /Exit codes: 0 done, 1 failed .* 2 bad command line,\s+3 a rollout is not finished/,
      );
      expect((await fleet()).code).toBe(EXIT.usage);
      const unknown = await fleet('rollout', 'sideways');
      expect(unknown).toMatchObject({
        code: EXIT.usage,
        err: expect.stringMatching(/unknown command "rollout sideways"/),
      });
    });

    it("warns in canary's help that --proactive kills running jobs", async () => {
      const help = await fleet('rollout', 'canary', '--help');
      expect(help.code).toBe(EXIT.ok);
      expect(help.out).toMatch(
        /--proactive\s+replace running VMs now\. WARNING: a VM replaced while it runs a job kills that\s+job/,
      );
    });

    it.each([
      [['rollout', 'canary', '--regions', 'us-.*', '--bogus'], /Unknown option '--bogus'/],
      [['rollout', 'status', '--template', 'x'], /rollout status takes no --template/],
      [['rollout', 'canary', '--template', 'x'], /--regions is required/],
      [['rollout', 'canary', '--regions', '(', '--template', 'x'], /--regions: invalid regular expression/],
      [
        ['rollout', 'canary', '--regions', 'us-.*', '--template', 'x', '--canary-size', '0'],
        /--canary-size must be/,
      ],
      [
        [
          'templates',
          'create',
          '--from',
          'a',
          '--name',
          'B',
          '--runner-version',
          '2.331',
          '--runner-sha256',
          'x',
        ],
        /not a Compute Engine resource name.*not a release version.*64 hex digits/,
      ],
      [['rollout', 'status', '--compute-endpoint', 'ftp://x/y'], /--compute-endpoint/],
    ])('%j is a usage error', async (args, message) => {
      const result = await fleet(...args);
      expect(result.code).toBe(EXIT.usage);
      expect(result.err).toMatch(message);
      expect(result.err).toMatch(/--help for usage/);
      expect(patches()).toHaveLength(0);
    });
  });

  describe('templates', () => {
    it('creates a template from a base with another runner release, keeping the rest', async () => {
      const result = await fleet(
        'templates',
        'create',
        '--from',
        'gh-runner-2-329-0',
        '--name',
        'gh-runner-2-331-0',
        '--runner-version',
        '2.331.0',
        '--runner-sha256',
        SHA.toUpperCase(),
      );
      expect(result.code).toBe(EXIT.ok);
      expect(result.out).toContain(
        'created instance template gh-runner-2-331-0 from gh-runner-2-329-0: actions/runner 2.331.0',
      );
      expect(result.out).toContain(templateUrl('gh-runner-2-331-0'));
      const created = compute.getInstanceTemplate(PROJECT, 'gh-runner-2-331-0')!;
      const properties = created.properties as {
        machineType: string;
        metadata: { items: Array<{ key: string; value: string }> };
        serviceAccounts: unknown[];
      };
      expect(properties.machineType).toBe('e2-standard-4');
      expect(properties.serviceAccounts).toEqual([
        { email: 'gh-runner@runners-prod.iam.gserviceaccount.com' },
      ]);
      expect(Object.fromEntries(properties.metadata.items.map((i) => [i.key, i.value]))).toEqual({
        'startup-script': '#!/bin/bash',
        'github-runner-version': '2.331.0',
        'github-runner-sha256': SHA,
      });
      expect(JSON.stringify(created.properties)).not.toMatch(/"_/);

      const list = await fleet('templates', 'list');
      expect(list.out.split('\n').map((l) => l.split('\t').slice(0, 2).join(' '))).toEqual([
        'gh-runner-2-329-0 actions/runner 2.329.0',
        'gh-runner-2-331-0 actions/runner 2.331.0',
      ]);
    });

    it('--dry-run creates nothing; a missing base fails (1)', async () => {
      const dry = await fleet(
        'templates',
        'create',
        '--from',
        'gh-runner-2-329-0',
        '--name',
        'gh-runner-2-331-0',
        '--runner-version',
        '2.331.0',
        '--runner-sha256',
        SHA,
        '--dry-run',
      );
      expect(dry).toMatchObject({
        code: EXIT.ok,
        out: expect.stringMatching(/^would create instance template gh-runner-2-331-0/),
      });
      expect(compute.controls.callsTo('POST', '/global/instanceTemplates')).toHaveLength(0);
      const missing = await fleet(
        'templates',
        'create',
        '--from',
        'nope',
        '--name',
        'x',
        '--runner-version',
        '2.331.0',
        '--runner-sha256',
        SHA,
      );
      expect(missing.code).toBe(EXIT.failure);
      expect(missing.err).toMatch(
        /reading instance template nope: The resource 'projects\/runners-prod\/global\/instanceTemplates\/nope' was not found/,
      );
    });
  });

  describe('rollouts', () => {
    it('canary: one VM per MIG of the matching regions on the new template, opportunistic, recreating by name', async () => {
      addNewTemplate();
      const result = await fleet(
        'rollout',
        'canary',
        '--template',
        'gh-runner-2-331-0',
        '--regions',
        'us-central1',
      );
      expect(result.code).toBe(EXIT.ok);
      expect(result.out).toContain(
        'changed regions/us-central1/gh-cpu: canary of 1 VM on gh-runner-2-331-0, the rest on gh-runner-2-329-0, opportunistic',
      );
      expect(result.out).toContain('changed zones/us-central1-a/gh-gpu-a: canary');
      expect(result.out).not.toMatch(/us-east1|europe/);
      expect(
        patches()
          .map((c) => c.path.split('/').slice(-3).join('/'))
          .sort(),
      ).toEqual(['us-central1-a/instanceGroupManagers/gh-gpu-a', 'us-central1/instanceGroupManagers/gh-cpu']);
      const regional = patches().find((c) => c.path.endsWith('/gh-cpu'))!.body;
      expect(regional).toEqual({
        versions: [
          { name: 'canary', instanceTemplate: templateUrl('gh-runner-2-331-0'), targetSize: { fixed: 1 } },
          { name: 'stable', instanceTemplate: templateUrl('gh-runner-2-329-0') },
        ],
        updatePolicy: {
          type: 'OPPORTUNISTIC',
          minimalAction: 'REPLACE',
          replacementMethod: 'RECREATE',
          maxSurge: { fixed: 0 },
          maxUnavailable: { fixed: 3 },
        },
      });
      const zonal = patches().find((c) => c.path.endsWith('/gh-gpu-a'))!.body as {
        updatePolicy: { maxUnavailable: unknown };
      };
      expect(zonal.updatePolicy.maxUnavailable).toEqual({ fixed: 1 });
      // Opportunistic: the running VMs keep their template.
      expect([...migs.cpu.members.values()].map((m) => m.instanceTemplate)).toEqual([
        templateUrl('gh-runner-2-329-0'),
        templateUrl('gh-runner-2-329-0'),
      ]);
      // Again: nothing to change.
      const again = await fleet(
        'rollout',
        'canary',
        '--template',
        'gh-runner-2-331-0',
        '--regions',
        'us-central1',
      );
      expect(again.out).toContain(
        'unchanged: regions/us-central1/gh-cpu already has a canary of 1 on gh-runner-2-331-0',
      );
      expect(patches()).toHaveLength(2);
    });

    it('--dry-run prints the plan and changes nothing; --group narrows it', async () => {
      addNewTemplate();
      const dry = await fleet(
        'rollout',
        'canary',
        '--template',
        'gh-runner-2-331-0',
        '--regions',
        'us-.*',
        '--group',
        'gh-cpu.*',
        '--dry-run',
      );
      expect(dry.code).toBe(EXIT.ok);
      expect(dry.out.split('\n')).toEqual([
        'would change regions/us-central1/gh-cpu: canary of 1 VM on gh-runner-2-331-0, the rest on gh-runner-2-329-0, opportunistic',
        'would change zones/us-east1-b/gh-cpu-east: canary of 1 VM on gh-runner-2-331-0, the rest on gh-runner-2-329-0, opportunistic',
        'dry run: 2 MIGs would change; nothing was changed',
      ]);
      expect(patches()).toHaveLength(0);
      expect(migs.cpu.versions).toBeUndefined();
    });

    it('fails (1) when no MIG matches, and the whole region must match', async () => {
      addNewTemplate();
      const result = await fleet(
        'rollout',
        'canary',
        '--template',
        'gh-runner-2-331-0',
        '--regions',
        'us-central',
      );
      expect(result.code).toBe(EXIT.failure);
      expect(result.err).toMatch(
        /no MIG of project runners-prod is in a region matching --regions us-central$/,
      );
    });

    it('status: templates in use by how many VMs, and exit 3 until the canary runs; then promote', async () => {
      addNewTemplate();
      await fleet(
        'rollout',
        'canary',
        '--template',
        'gh-runner-2-331-0',
        '--regions',
        'us-central1',
        '--group',
        'gh-cpu',
      );
      let status = await fleet('rollout', 'status', '--regions', 'us-central1', '--group', 'gh-cpu');
      expect(status.code).toBe(EXIT.notFinished);
      expect(status.out.split('\n')).toEqual([
        'regions/us-central1/gh-cpu  target 2  opportunistic  NOT DONE',
        '  version canary: gh-runner-2-331-0 (actions/runner 2.331.0), fixed 1 = 1 VMs',
        '  version stable: gh-runner-2-329-0 (actions/runner 2.329.0), the rest = 1 VMs',
        '  in use: gh-runner-2-329-0 (actions/runner 2.329.0) on 2 VMs',
      ]);
      expect(status.err).toMatch(/1 of 1 MIGs have not finished their update/);

      // A VM finishes its job and goes; the autoscaler's next VM is the canary.
      migs.cpu.members.delete('gh-cpu-1');
      migs.cpu.targetSize = 1;
      compute.addInstance({ project: PROJECT, zone: 'us-central1-c', name: 'gh-cpu-3', mig: migs.cpu });
      status = await fleet('rollout', 'status', '--regions', 'us-central1', '--group', 'gh-cpu', '--json');
      expect(status.code).toBe(EXIT.ok);
      expect(JSON.parse(status.out)).toMatchObject({
        project: PROJECT,
        migs: [
          {
            mig: 'regions/us-central1/gh-cpu',
            done: true,
            templatesInUse: expect.arrayContaining([
              { template: 'gh-runner-2-331-0', runnerVersion: '2.331.0', vms: 1 },
              { template: 'gh-runner-2-329-0', runnerVersion: '2.329.0', vms: 1 },
            ]),
          },
        ],
      });

      const promote = await fleet('rollout', 'promote', '--regions', 'us-central1', '--group', 'gh-cpu');
      expect(promote.code).toBe(EXIT.ok);
      expect(promote.out).toContain(
        'changed regions/us-central1/gh-cpu: gh-runner-2-331-0 becomes the template of every VM (was gh-runner-2-329-0), opportunistic',
      );
      expect(migs.cpu.versions).toEqual([
        { name: 'stable', instanceTemplate: templateUrl('gh-runner-2-331-0') },
      ]);
      expect((await fleet('rollout', 'status', '--regions', 'us-central1', '--group', 'gh-cpu')).code).toBe(
        EXIT.notFinished,
      );
      expect((await fleet('rollout', 'promote', '--regions', 'us-central1', '--group', 'gh-cpu')).code).toBe(
        EXIT.failure,
      );
    });

    it('direct-update --proactive replaces running VMs now, and says it kills their jobs', async () => {
      addNewTemplate();
      const result = await fleet(
        'rollout',
        'direct-update',
        '--template',
        templateUrl('gh-runner-2-331-0'),
        '--regions',
        'us-central1',
        '--group',
        'gh-cpu',
        '--proactive',
      );
      expect(result.code).toBe(EXIT.ok);
      expect(result.err).toMatch(
        /--proactive: running VMs are replaced now, and the jobs running on them are killed/,
      );
      expect([...migs.cpu.members.values()].map((m) => m.instanceTemplate)).toEqual([
        templateUrl('gh-runner-2-331-0'),
        templateUrl('gh-runner-2-331-0'),
      ]);
      expect(migs.cpu.updatePolicy).toMatchObject({ type: 'PROACTIVE' });
      expect((await fleet('rollout', 'status', '--regions', 'us-central1', '--group', 'gh-cpu')).code).toBe(
        EXIT.ok,
      );
    });

    it('reports a refused update (1), naming the MIG and what Compute said', async () => {
      addNewTemplate();
      compute.failNextOperation({
        httpErrorStatusCode: 403,
        code: 'PERMISSION_DENIED',
        message: "Required 'compute.instanceGroupManagers.update' permission",
      });
      const result = await fleet(
        'rollout',
        'direct-update',
        '--template',
        'gh-runner-2-331-0',
        '--regions',
        'us-central1',
        '--group',
        'gh-cpu',
      );
      expect(result.code).toBe(EXIT.failure);
      expect(result.err).toContain(
        "updating regions/us-central1/instanceGroupManagers/gh-cpu: Required 'compute.instanceGroupManagers.update' permission",
      );
      expect(result.out).toContain('0 of 1 MIGs changed');
    });

    it('refuses a template of another project', async () => {
      const result = await fleet(
        'rollout',
        'direct-update',
        '--template',
        `${COMPUTE_API_ROOT}/projects/elsewhere/global/instanceTemplates/x`,
        '--regions',
        '.*',
      );
      expect(result).toMatchObject({
        code: EXIT.usage,
        err: expect.stringMatching(/names a template of project elsewhere/),
      });
    });
  });
});
