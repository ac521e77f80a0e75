import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOOL_ENTRY_POINTS } from '#entry-points';
import { ATTACK_DESCRIPTIONS } from '#sandbox/demo/attacks';
import { planFleet } from '#sandbox/demo/fleet';
import { DemoUsageError, parseDemoOptions } from '#sandbox/demo/options';
import { formatSummary, githubCallKind, latencyStats } from '#sandbox/demo/summary';
import type { DemoSummary } from '#sandbox/demo/summary';
import {
  brokenVmFates,
  deliveryOutcomes,
  formatWorkloadReport,
  workloadCallKind,
  WORKLOAD_LABELS,
} from '#sandbox/demo/workload';
import type { WorkloadReport } from '#sandbox/demo/workload';
import type { FakeHookDelivery } from '#fakes/github-api';
import { RUNNER_LABELS } from '#sandbox/sandbox';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const demo = path.join(root, TOOL_ENTRY_POINTS.demo);

/** Runs the built demo; `npm test` builds first. */
function runDemo(
  args: string[],
  timeout = 240_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (!fs.existsSync(demo)) throw new Error(`${demo} is missing: run \`npm run build\` first`);
  return new Promise((resolve) => {
    execFile(process.execPath, [demo, ...args], { cwd: root, timeout }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('parseDemoOptions', () => {
  it('defaults to the workload: 240 jobs in 8 bursts, 10% of deliveries dropped, on free ports', () => {
    expect(parseDemoOptions([])).toMatchObject({
      mode: 'workload',
      jobs: 240,
      bursts: 8,
      burstEveryMs: 5000,
      dropPercent: 10,
      brokenPercent: 3,
      reconcileEveryMs: 5000,
      drainTimeoutMs: 360_000,
      seed: 1,
      jobMs: 1000,
      githubLatencyMs: 0,
      proxyPort: 0,
      deleterPort: 0,
      json: false,
    });
  });

  it('with --attacks, defaults to a fleet of 50 with 10% attackers, on free ports', () => {
    expect(parseDemoOptions(['--attacks'])).toMatchObject({
      mode: 'attacks',
      vms: 50,
      concurrency: 10,
      attackers: 5,
      jobMs: 1000,
      githubLatencyMs: 100,
      proxyPort: 0,
      deleterPort: 0,
      json: false,
      verbose: false,
      help: false,
    });
  });

  it('reads every flag of the workload', () => {
    expect(
      parseDemoOptions([
        '--jobs=300',
        '--bursts',
        '10',
        '--burst-every-ms=2000',
        '--drop-percent=25',
        '--broken-percent=0',
        '--reconcile-every-ms=3000',
        '--drain-timeout-ms=60000',
        '--seed=7',
        '--job-ms=500',
      ]),
    ).toMatchObject({
      mode: 'workload',
      jobs: 300,
      bursts: 10,
      burstEveryMs: 2000,
      dropPercent: 25,
      brokenPercent: 0,
      reconcileEveryMs: 3000,
      drainTimeoutMs: 60_000,
      seed: 7,
      jobMs: 500,
    });
  });

  it('reads every flag of --attacks', () => {
    expect(
      parseDemoOptions([
        '--attacks',
        '--vms=12',
        '--concurrency',
        '6',
        '--attackers=4',
        '--job-ms=200',
        '--github-latency-ms=0',
        '--proxy-port=9090',
        '--deleter-port=9091',
        '--json',
      ]),
    ).toMatchObject({ vms: 12, concurrency: 6, attackers: 4, jobMs: 200, githubLatencyMs: 0, json: true });
    expect(parseDemoOptions(['--attacks', '--vms', '30']).attackers).toBe(3);
  });

  it.each([
    [['--attacks', '--vms', 'ten'], '--vms must be a whole number from 2 to 1000, not "ten"'],
    [['--attacks', '--vms', '1'], '--vms must be a whole number'],
    [['--attacks', '--concurrency', '0'], '--concurrency must be a whole number from 1'],
    [['--attacks', '--vms', '10', '--attackers', '6'], '--attackers must be at most the 5 presubmit VMs'],
    [['--vms', '10'], '--vms needs --attacks'],
    [['--attacks', '--jobs', '10'], '--jobs is a flag of the workload, not of --attacks'],
    [['--jobs', '0'], '--jobs must be a whole number from 1'],
    [['--drop-percent', '95'], '--drop-percent must be a whole number from 0 to 90'],
    [['--broken-percent', '60'], '--broken-percent must be a whole number from 0 to 50'],
    [['--attacks', '--broken-percent', '5'], '--broken-percent is a flag of the workload'],
    [['--jobs', '5', '--bursts', '6'], '--bursts must be at most --jobs (5)'],
    [['--proxy-port', '8080', '--deleter-port', '8080'], 'must differ'],
    [['--fleet'], "Unknown option '--fleet'"],
  ])('refuses %j', (argv, message) => {
    expect(() => parseDemoOptions(argv)).toThrow(DemoUsageError);
    expect(() => parseDemoOptions(argv)).toThrow(message);
  });

  it('reports every problem at once', () => {
    expect(() => parseDemoOptions(['--attacks', '--vms', 'x', '--job-ms=-1'])).toThrow(/--vms[^]*\n--job-ms/);
  });
});

describe('planFleet', () => {
  it('splits the fleet between the MIGs and spreads attackers over presubmit VMs', () => {
    const plan = planFleet({ vms: 12, attackers: 4 });
    expect(plan.filter((vm) => vm.kind === 'presubmit')).toHaveLength(6);
    expect(plan.filter((vm) => vm.attacker).every((vm) => vm.kind === 'presubmit')).toBe(true);
    expect(plan.filter((vm) => vm.attacker)).toHaveLength(4);
    expect(plan.filter((vm) => vm.mode === 'token').every((vm) => vm.kind === 'postsubmit')).toBe(true);
    expect(plan.some((vm) => vm.mode === 'token')).toBe(true);
    expect(plan.some((vm) => vm.idle)).toBe(true);
  });

  it('makes every presubmit VM an attacker when asked to', () => {
    expect(planFleet({ vms: 7, attackers: 4 }).filter((vm) => vm.attacker)).toHaveLength(4);
  });
});

describe('githubCallKind', () => {
  it.each([
    ['POST', '/app/installations/1/access_tokens', 'installation token'],
    ['GET', '/orgs/my-org/installation', 'installation lookup'],
    ['POST', '/orgs/my-org/actions/runners/registration-token', 'registration token'],
    ['POST', '/repos/my-org/app/actions/runners/generate-jitconfig', 'jitconfig'],
    ['GET', '/orgs/my-org/actions/runner-groups', 'runner groups'],
    ['GET', '/orgs/my-org/actions/runners', 'runners list'],
    ['DELETE', '/orgs/my-org/actions/runners/7', 'runner delete'],
    ['POST', '/_sandbox/runners/jit', 'runner service'],
  ])('%s %s is %s', (method, path, kind) => {
    expect(githubCallKind({ method, path })).toBe(kind);
  });
});

describe('the workload', () => {
  it('asks for the labels of both pools, full sets and subsets, each within its pool', () => {
    expect(new Set(WORKLOAD_LABELS.map((l) => l.pool))).toEqual(new Set(['presubmit', 'postsubmit']));
    for (const { pool, labels } of WORKLOAD_LABELS) {
      for (const label of labels) expect(RUNNER_LABELS[pool]).toContain(label);
    }
    expect(WORKLOAD_LABELS.some(({ pool, labels }) => labels.length < RUNNER_LABELS[pool].length)).toBe(true);
  });

  it.each([
    ['GET', '/app/hook/deliveries', 'delivery log'],
    ['GET', '/app/hook/deliveries/90000000001', 'delivery get'],
    ['POST', '/app/hook/deliveries/90000000001/attempts', 'redelivery'],
    ['GET', '/repos/my-org/app/actions/jobs/7', 'job get'],
    ['POST', '/repos/my-org/app/actions/runners/generate-jitconfig', 'jitconfig'],
  ])('names %s %s a %s call', (method, path, kind) => {
    expect(workloadCallKind({ method, path })).toBe(kind);
  });

  it.each([
    [3, 100, [34, 67, 100]],
    [10, 25, [10, 20]],
    [50, 4, [2, 4]],
    [0, 50, []],
  ])('makes %i%% of the VMs never register: of %i, the ones numbered %j', (percent, vms, broken) => {
    const fate = brokenVmFates(percent);
    const fates = Array.from({ length: vms }, () => fate());
    expect(fates.flatMap((f, i) => (f === 'never-registers' ? [i + 1] : []))).toEqual(broken);
    expect(fates.filter((f) => f === 'works')).toHaveLength(vms - broken.length);
  });

  it('counts a dropped event as recovered once a later attempt delivered it', () => {
    const attempt = (guid: string, status: string, dropped: boolean, redelivery: boolean) =>
      ({ guid, status, dropped, redelivery }) as FakeHookDelivery;
    expect(
      deliveryOutcomes([
        attempt('a', 'OK', false, false),
        attempt('b', 'failed to connect to host', true, false),
        attempt('b', 'OK', false, true),
        attempt('c', 'failed to connect to host', true, false),
        attempt('c', 'failed to connect to host', true, true),
        attempt('d', 'Invalid HTTP Response: 503', false, false),
      ]),
    ).toEqual({ attempts: 6, dropped: 3, recovered: 1, redeliveries: 2, stillFailed: 2 });
  });
});

describe('latencyStats', () => {
  it('takes nearest-rank percentiles', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(latencyStats(samples)).toEqual({ count: 100, p50: 50, p90: 90, p99: 99, max: 100 });
    expect(latencyStats([])).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });
});

describe('npm run demo', () => {
  it('prints its usage for --help, and exits 2 on a bad flag', async () => {
    const help = await runDemo(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run demo/);
    expect(help.stdout).toContain('--drop-percent');
    expect(help.stdout).toContain('--broken-percent');
    expect(help.stdout).toContain('--attacks');
    const bad = await runDemo(['--attacks', '--vms', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--vms must be a whole number');
  });

  it('runs a small workload end to end: every job run, none lost, the broken VMs reaped, the fleet back to zero', async () => {
    const run = await runDemo(
      [
        '--jobs',
        '20',
        '--bursts',
        '2',
        '--burst-every-ms',
        '1000',
        '--drop-percent',
        '30',
        '--broken-percent',
        '10',
        '--reconcile-every-ms',
        '2000',
        '--job-ms',
        '300',
        // A few VMs wait for JIT configs, so the least boot timeout reaps only the broken ones, a minute on.
        '--boot-timeout-s',
        '60',
        '--json',
      ],
      480_000,
    );
    expect(run.stderr).not.toContain('Demo failed');
    const report = JSON.parse(run.stdout) as WorkloadReport;
    expect({ code: run.code, ok: report.ok, failed: report.vms.failed }).toEqual({
      code: 0,
      ok: true,
      failed: [],
    });
    expect(report.jobs).toMatchObject({ queued: 20, run: 20, lost: 0 });
    expect(Object.keys(report.jobs.byPool).sort()).toEqual(['postsubmit', 'presubmit']);
    expect(report.vms.left).toBe(0);
    // Every job got a VM (spares too, when a redelivery and the reconciler's count both asked).
    expect(report.vms.created).toBeGreaterThanOrEqual(20);
    expect(report.vms.requested).toBeGreaterThanOrEqual(report.vms.created);
    expect(report.vms.peak).toBeGreaterThan(0);
    // The full zone creates nothing: the postsubmit pool's VMs came from its second MIG only.
    expect(report.vms.createdByMig['gh-runner-postsubmit']).toBeUndefined();
    expect(report.vms.createdByMig['gh-runner-postsubmit-c']).toBeGreaterThan(0);
    expect(report.waitSeconds.p50).toBeLessThanOrEqual(report.waitSeconds.p99);
    // A share of the deliveries was dropped, and every event was delivered in the end.
    expect(report.deliveries.dropped).toBeGreaterThan(0);
    expect(report.deliveries.redeliveries).toBeGreaterThan(0);
    expect(report.deliveries.recovered).toBeGreaterThan(0);
    expect(report.deliveries.stillFailed).toBe(0);
    expect(report.reconciliations.runs).toBeGreaterThanOrEqual(1);
    // Cloud Scheduler's token is accepted and no step of a run failed (the App may read jobs, for one).
    expect(report.reconciliations.problems).toEqual([]);
    expect(report.calls.github.byKind['delivery log']).toBeGreaterThanOrEqual(report.reconciliations.runs);
    expect(report.calls.github.perJob).toBeGreaterThan(0);
    expect(report.calls.compute.createInstances).toBeGreaterThan(0);
    // Of the 20 or more VMs that booted, every tenth never registered: the reaper deleted each past the
    // boot timeout (nothing else deleted them, and none is left), and their jobs ran on new VMs.
    expect(report.vms.neverRegistered).toBeGreaterThanOrEqual(2);
    expect(report.reaped.unregistered).toBeGreaterThanOrEqual(report.vms.neverRegistered);
    expect(Object.keys(report.reaped).sort()).toEqual(['idle', 'lost', 'runner-left', 'unregistered']);
    expect(report.idleVmMinutes).toBeGreaterThanOrEqual(0);
    const table = formatWorkloadReport(report);
    for (const label of [
      'jobs run / lost',
      'VMs left at the end',
      'job wait',
      'GitHub calls',
      'Compute calls',
      'deliveries',
      'reaped',
      'never registered',
      'idle VM-minutes',
    ]) {
      expect(table).toContain(label);
    }
    expect(table).toContain('| 20 / 0 |');
    expect(table).toContain(`unregistered ${report.reaped.unregistered},`);
  }, 540_000);

  it('serves and deletes every VM of a small fleet and refuses every attack', async () => {
    const run = await runDemo([
      '--attacks',
      '--vms',
      '12',
      '--concurrency',
      '6',
      '--attackers',
      '4',
      '--job-ms',
      '300',
      '--json',
    ]);
    expect(run.stderr).not.toContain('Demo failed');
    const summary = JSON.parse(run.stdout) as DemoSummary;
    expect(summary.vms.failed).toEqual([]);
    expect(run.code).toBe(0);
    expect(summary.ok).toBe(true);

    expect(summary.vms).toMatchObject({ total: 12, served: 12, attackers: 4 });
    expect(summary.issued.jitConfigs + summary.issued.registrationTokens).toBe(12);
    expect(summary.deletions).toMatchObject({
      total: 12,
      byMig: { 'gh-runner-presubmit': 6, 'gh-runner-postsubmit': 6 },
      left: { 'gh-runner-presubmit': 0, 'gh-runner-postsubmit': 0 },
    });
    expect(summary.deletions.afterJob + summary.deletions.idleScaleDown).toBe(12);

    // Every attack, by every attacker, refused as the caller's fault.
    const attacks = Object.keys(ATTACK_DESCRIPTIONS);
    expect(Object.keys(summary.attacks.byAttack).sort()).toEqual([...attacks].sort());
    expect(summary.attacks.attempted).toBe(4 * attacks.length);
    expect(summary.attacks.refused).toBe(summary.attacks.attempted);
    expect(summary.attacks.notRefused).toEqual([]);
    for (const [attack, result] of Object.entries(summary.attacks.byAttack)) {
      expect({ attack, attempted: result.attempted }).toEqual({ attack, attempted: 4 });
      for (const status of result.statuses) expect(status).toBeGreaterThanOrEqual(400);
      for (const status of result.statuses) expect(status).toBeLessThan(500);
    }
    expect(summary.attacks.byAttack['forged token']!.statuses).toEqual([401]);
    expect(summary.attacks.byAttack['postsubmit group']!.statuses).toEqual([403]);

    // The proxy caches what it can: one registration token and one installation token for the fleet.
    expect(summary.issued.registrationTokens).toBeGreaterThanOrEqual(3);
    expect(summary.github.byKind['registration token']).toBe(1);
    expect(summary.github.byKind['installation token']).toBe(1);
    expect(summary.github.byKind.jitconfig).toBe(summary.issued.jitConfigs);

    expect(Object.keys(summary.latencyMs)).toEqual(
      expect.arrayContaining(['proxy: POST /jitconfig', 'proxy: DELETE /runner', 'deleter: DELETE /']),
    );
    expect(formatSummary(summary)).toContain(
      `Attacks: ${summary.attacks.attempted} of ${summary.attacks.attempted} refused`,
    );
    // A sandbox and a fleet of processes: minutes on a busy machine, never a timing assertion.
  }, 300_000);
});
