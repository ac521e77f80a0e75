import request from 'supertest';
import type { StatusView } from '#fleet-status';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import {
  AUDIENCE as AUTOSCALER_AUDIENCE,
  buildAutoscaler,
  jobId,
  PROJECT as AUTOSCALER_PROJECT,
  registerRunner,
  startAutoscalerFakes,
  workflowJob,
} from '../autoscaler/harness.js';
import type { Autoscaler, AutoscalerFakes } from '../autoscaler/harness.js';
import {
  addTemplates,
  buildStatus,
  DAY_MS,
  runnerReleases,
  startCanary,
  startStatusSide,
  STATUS_ACCOUNT,
  TEMPLATES,
  templateUrl,
} from './harness.js';
import type { StatusSide, StatusUnderTest } from './harness.js';

const HEADER = 'x-goog-iap-jwt-assertion';

/**
 * The status service against the real autoscaler (in process, its fakes of GitHub and Compute), reading
 * `GET /fleet` with its own identity token from its metadata server, Compute with its access token, and the
 * releases from the fake GitHub: what the page shows with today's fleet view.
 */
describe('fleet status service against the autoscaler', () => {
  let fakes: AutoscalerFakes;
  let side: StatusSide;
  let autoscaler: Autoscaler;
  let served: ServedApp;
  let status: StatusUnderTest;
  let cpuJob: number;

  beforeAll(async () => {
    expect(AUTOSCALER_PROJECT.projectId).toBe('runners-prod');
    fakes = await startAutoscalerFakes();
    fakes.github.runnerReleases = runnerReleases(Date.now());
    const urls = addTemplates(fakes.compute, Object.values(fakes.migs));
    startCanary(fakes.migs.cpu, urls);
    side = await startStatusSide(fakes.issuer);
    autoscaler = buildAutoscaler(fakes, { env: { FLEET_VIEWERS: STATUS_ACCOUNT } });
    served = await serveApp(autoscaler.app);
    status = buildStatus({
      autoscalerUrl: served.url,
      autoscalerAudience: AUTOSCALER_AUDIENCE,
      compute: fakes.compute,
      github: fakes.github,
      side,
      env: { SNAPSHOT_TTL_SECONDS: '0' },
    });
    // Two jobs: the first VM of gh-cpu is the canary, the second stable (the MIG's versions decide).
    cpuJob = jobId();
    for (const id of [cpuJob, jobId()]) {
      const res = await autoscaler.deliver(workflowJob({ id, installationId: fakes.installationId }));
      expect(res.status).toBe(200);
    }
  });
  afterAll(async () => {
    await served.close();
    await side.close();
    await fakes.close();
  });

  const statusJson = async (): Promise<StatusView> => {
    const res = await request(status.app).get('/status.json').set(HEADER, status.assertion());
    expect(res.status).toBe(200);
    return res.body as StatusView;
  };

  it('shows each pool with its MIGs, templates (canary and stable), VMs and decisions', async () => {
    const view = await statusJson();
    expect(view.autoscaler.error).toBeNull();
    expect(view.pools.map((p) => p.name)).toEqual(['linux-cpu', 'linux-gpu']);
    const cpu = view.pools[0]!;
    const gh = cpu.migs.find((m) => m.name === 'gh-cpu')!;
    expect(gh).toMatchObject({
      location: 'regions/us-central1',
      targetSize: 2,
      updateType: 'OPPORTUNISTIC',
      isReached: true,
      error: null,
    });
    expect(gh.templates).toEqual([
      {
        url: templateUrl(TEMPLATES.canary.name),
        name: TEMPLATES.canary.name,
        role: 'canary',
        runnerVersion: '2.331.0',
        target: 1,
        members: 1,
      },
      {
        url: templateUrl(TEMPLATES.stable.name),
        name: TEMPLATES.stable.name,
        role: 'stable',
        runnerVersion: '2.329.0',
        target: 1,
        members: 1,
      },
    ]);
    expect(cpu.vms.map((vm) => [vm.instance, vm.currentAction, vm.templateVersion]).sort()).toEqual([
      [`gh-cpu-${cpuJob}`, 'CREATING', '2.331.0'],
      [`gh-cpu-${cpuJob + 1}`, 'CREATING', '2.329.0'],
    ]);
    expect(cpu.recentDecisions.map((d) => d.outcome)).toEqual(['created', 'created']);
    // The autoscaler's fleet view carries its join of VMs and runners (the reaper's), and the page shows it.
    expect(cpu.hasJoin).toBe(true);
  });

  it("judges each pool's oldest reported runner version against the releases: 2.330.0 came out 20 days ago", async () => {
    // Before any runner connected: judged on the templates, what new VMs get (canary 2.331.0, stable 2.329.0).
    const before = (await statusJson()).pools[0]!;
    expect(before.runnerVersion).toMatchObject({
      version: '2.329.0',
      level: 'warn',
      versions: [],
      templateVersions: ['2.329.0', '2.331.0'],
      fromTemplatesOnly: true,
    });

    // The VMs boot and their runners connect, each with the release its template installed: the canary
    // reports 2.331.0, the stable VM 2.330.0 (what GitHub's runner object says, whatever the template asked).
    fakes.compute.completeBoots();
    const cpuVms = (await statusJson()).pools[0]!.vms;
    for (const vm of cpuVms) {
      registerRunner(fakes, vm.instance, ['self-hosted', 'linux', 'x64', 'cpu'], {
        version: vm.templateVersion === '2.331.0' ? '2.331.0' : '2.330.0',
      });
    }
    expect((await autoscaler.reconcile()).status).toBe(200);

    const [cpu, gpu] = (await statusJson()).pools;
    expect(cpu!.runnerVersion).toMatchObject({
      version: '2.330.0',
      level: 'ok',
      firstNewer: { version: '2.331.0' },
      daysSince: 5,
      daysLeft: 25,
      versions: [
        { version: '2.330.0', runners: 1 },
        { version: '2.331.0', runners: 1 },
      ],
      templateVersions: ['2.329.0', '2.331.0'],
      fromTemplatesOnly: false,
    });
    expect(cpu!.vms.map((vm) => vm.runner?.version).sort()).toEqual(['2.330.0', '2.331.0']);
    expect(cpu!.scaleUpBlockedReason).toBeNull();
    // No runner in the GPU pool: judged by the template its new VMs would get.
    expect(gpu!.runnerVersion).toMatchObject({ version: '2.329.0', level: 'warn', fromTemplatesOnly: true });
    // The page's text says where the versions come from.
    const page = await request(status.app).get('/status').set(HEADER, status.assertion());
    expect(page.text).toMatch(/Runners report: 2\.330\.0: 1 runner, 2\.331\.0: 1 runner/);
    expect(page.text).toContain('the version each runner reported to GitHub when it connected');
  });

  it('renders the page: escaped HTML, refresh, strict CSP, no script', async () => {
    const res = await request(status.app).get('/status').set(HEADER, status.assertion());
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['content-security-policy']).toMatch(
      /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; /,
    );
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toMatch(/<meta http-equiv="refresh" content="30"/);
    expect(res.text).toContain(`gh-cpu-${cpuJob}`);
    expect(res.text).toContain('linux-gpu');
    expect(res.text).toContain('signed in as alice@example.com');
    expect(res.text).not.toMatch(/<script/i);
  });

  it('reads the fleet with its own identity token (from its metadata server), not a key', async () => {
    const identity = side.metadata.controls.callsTo('GET', '/identity');
    expect(identity.length).toBeGreaterThan(0);
    expect(identity[0]?.query.audience).toBe(AUTOSCALER_AUDIENCE);
    // The token is cached by google-auth-library: reads do not each fetch one.
    const before = side.metadata.controls.callsTo('GET', '/identity').length;
    await statusJson();
    await statusJson();
    expect(side.metadata.controls.callsTo('GET', '/identity').length).toBe(before);
  });

  it('reads the releases once, without a token, however often the page is built', async () => {
    await statusJson();
    const calls = fakes.github.controls
      .callsTo('GET', '/repos/actions/runner/releases')
      .filter((call) => String(call.headers['user-agent']).startsWith('gce-github-runners-fleet-status'));
    expect(calls).toHaveLength(1);
    expect(calls[0]?.headers.authorization).toBeUndefined();
  });

  it('answers 401 without IAP, to a VM identity token, and 403 to a person outside STATUS_VIEWERS', async () => {
    expect((await request(status.app).get('/status')).status).toBe(401);
    const vmToken = fakes.issuer.mintIdentityToken({
      audience: AUTOSCALER_AUDIENCE,
      email: 'runner@runners-prod.iam.gserviceaccount.com',
      compute: {
        projectId: 'runners-prod',
        projectNumber: 123456789012,
        zone: 'us-central1-a',
        instanceId: '9223372036854775809',
        instanceName: `gh-cpu-${cpuJob}`,
      },
    });
    const withVmToken = await request(status.app)
      .get('/status.json')
      .set('Authorization', `Bearer ${vmToken}`)
      .set(HEADER, vmToken);
    expect(withVmToken.status).toBe(401);
    const outsider = await request(status.app)
      .get('/status')
      .set(HEADER, status.assertion('eve@other.example', null));
    expect(outsider.status).toBe(403);
  });

  it('shows one MIG Compute cannot read, and the others', async () => {
    fakes.compute.controls.addFault({
      path: '/instanceGroupManagers/gh-gpu-a',
      status: 503,
      body: { error: { code: 503, message: 'backend unavailable' } },
      times: 2,
    });
    const gpu = (await statusJson()).pools[1]!;
    expect(gpu.migs.find((m) => m.name === 'gh-gpu-a')?.error).toMatch(/backend unavailable/);
    expect(gpu.migs.find((m) => m.name === 'gh-gpu-b')?.error).toBeNull();
    fakes.compute.controls.clearFaults();
  });

  it('says why when the autoscaler refuses its identity (not in FLEET_VIEWERS)', async () => {
    const other = buildAutoscaler(fakes, {
      env: { FLEET_VIEWERS: 'someone-else@runners-prod.iam.gserviceaccount.com' },
    });
    const otherServed = await serveApp(other.app);
    try {
      const refused = buildStatus({
        autoscalerUrl: otherServed.url,
        autoscalerAudience: AUTOSCALER_AUDIENCE,
        compute: fakes.compute,
        github: fakes.github,
        side,
      });
      const res = await request(refused.app).get('/status.json').set(HEADER, refused.assertion());
      expect(res.status).toBe(200);
      expect(res.body.autoscaler.error).toBe('GET /fleet answered 403: this caller may not use GET /fleet');
      const page = await request(refused.app).get('/status').set(HEADER, refused.assertion());
      expect(page.text).toContain('could not be read: GET /fleet answered 403');
    } finally {
      await otherServed.close();
    }
  });

  it('keeps nothing secret in its logs', () => {
    expect(status.logs.text()).not.toMatch(/ya29\.|eyJ/);
    expect(DAY_MS).toBe(86_400_000);
  });
});
