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

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const demo = path.join(root, TOOL_ENTRY_POINTS.demo);

/** Runs the built demo; `npm test` builds first. */
function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (!fs.existsSync(demo)) throw new Error(`${demo} is missing: run \`npm run build\` first`);
  return new Promise((resolve) => {
    execFile(process.execPath, [demo, ...args], { cwd: root, timeout: 240_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('parseDemoOptions', () => {
  it('defaults to a fleet of 50 with 10% attackers, on free ports', () => {
    expect(parseDemoOptions([])).toEqual({
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

  it('reads every flag', () => {
    expect(
      parseDemoOptions([
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
    expect(parseDemoOptions(['--vms', '30']).attackers).toBe(3);
  });

  it.each([
    [['--vms', 'ten'], '--vms must be a whole number from 2 to 1000, not "ten"'],
    [['--vms', '1'], '--vms must be a whole number'],
    [['--concurrency', '0'], '--concurrency must be a whole number from 1'],
    [['--vms', '10', '--attackers', '6'], '--attackers must be at most the 5 presubmit VMs'],
    [['--proxy-port', '8080', '--deleter-port', '8080'], 'must differ'],
    [['--fleet'], "Unknown option '--fleet'"],
  ])('refuses %j', (argv, message) => {
    expect(() => parseDemoOptions(argv)).toThrow(DemoUsageError);
    expect(() => parseDemoOptions(argv)).toThrow(message);
  });

  it('reports every problem at once', () => {
    expect(() => parseDemoOptions(['--vms', 'x', '--job-ms=-1'])).toThrow(/--vms[^]*\n--job-ms/);
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
    const bad = await runDemo(['--vms', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--vms must be a whole number');
  });

  it('serves and deletes every VM of a small fleet and refuses every attack', async () => {
    const run = await runDemo([
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
