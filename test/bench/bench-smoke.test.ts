/**
 * Runs the built benchmark with `--quick` (every row, at most 200 requests each) and checks the report:
 * every row is there and answered without errors, the targets table is filled in, and the bench's own
 * audit found no secret in the services' logs. `npm test` builds first; run `npm run build` before
 * running this file on its own.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchUsageError, parseBenchOptions } from '#bench/parse-bench-options';
import { TOOL_ENTRY_POINTS } from '#entry-points';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const entry = path.join(root, TOOL_ENTRY_POINTS.bench);

/** Benchmarks still running when the file ends (a failed test), stopped in `afterAll`. */
const running = new Set<ChildProcess>();

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.on('exit', () => running.delete(child));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('parseBenchOptions', () => {
  it.each([
    [
      [],
      {
        durationSeconds: 5,
        githubLatencyMs: 20,
        quick: false,
        help: false,
        out: 'bench/results/latest.md',
        coldStarts: 7,
        stormSize: 1000,
      },
    ],
    [
      ['--duration', '10', '--github-latency-ms=50', '--out', 'x.md'],
      { durationSeconds: 10, githubLatencyMs: 50, out: 'x.md' },
    ],
    [['--quick'], { quick: true, durationSeconds: 1, maxRequestsPerRun: 200, coldStarts: 1, stormSize: 200 }],
    [['--quick', '--out', 'quick.md'], { quick: true, out: 'quick.md' }],
    [['--help'], { help: true }],
    [['-h'], { help: true }],
    [['--upstream-bin', '/opt/proxy'], { upstreamBin: '/opt/proxy' }],
    [['--upstream-bin=/opt/proxy'], { upstreamBin: '/opt/proxy' }],
    [[], { registerOnly: false, jitStorms: [100] }],
    [['--register-only', '--cpu-prof', 'prof'], { registerOnly: true, cpuProfDir: 'prof' }],
    [['--storm-1000'], { jitStorms: [100, 1000] }],
    [[], { stormOnly: false }],
    [['--storm-only', '--storm-1000'], { stormOnly: true, jitStorms: [100, 1000] }],
  ])('parses %j', (argv, expected) => {
    expect(parseBenchOptions(argv)).toMatchObject(expected);
  });

  it('writes a --quick report nowhere but stdout unless --out names a file', () => {
    // Its numbers mean nothing: they must not replace the committed bench/results/latest.md.
    expect(parseBenchOptions(['--quick'])).not.toHaveProperty('out');
  });

  it('runs no upstream proxy unless --upstream-bin names one', () => {
    expect(parseBenchOptions([])).not.toHaveProperty('upstreamBin');
  });

  it.each([
    [['--duration', 'x']],
    [['--duration', '0']],
    [['--github-latency-ms', '-1']],
    [['--out']],
    [['--upstream-bin']],
    [['--upstream-bin=']],
    [['--quick=1']],
    [['--help=yes']],
    [['--cpu-prof']],
    [['--storm-1000=1']],
    [['--storm-only=yes']],
    [['extra']],
  ])('refuses %j', (argv) => {
    expect(() => parseBenchOptions(argv)).toThrow(BenchUsageError);
  });
});

describe('npm run bench -- --quick', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
  });
  afterAll(() => {
    for (const child of running) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses unknown flags with the usage (exit 2), and prints it for --help (exit 0)', async () => {
    expect(fs.existsSync(entry)).toBe(true);
    const res = await run(['--fast']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/unknown argument "--fast"/);
    expect(res.stderr).toMatch(/Usage: npm run bench/);
    const help = await run(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: npm run bench/);
    expect(help.stdout).toContain('--quick');
  }, 120_000);

  it('produces every row of the report, without errors', async () => {
    const out = path.join(dir, 'quick.md');
    const res = await run(['--quick', '--out', out]);
    expect({ code: res.code, stderr: res.code === 0 ? '' : res.stderr }).toEqual({ code: 0, stderr: '' });
    const report = fs.readFileSync(out, 'utf8');
    expect(res.stdout).toContain(report);

    // Nothing in it refers to this project's issue tracker, which means nothing to a reader elsewhere.
    expect(report).not.toMatch(/issue #?\d/i);
    const headers = ['| Scenario |', '| Service |', '| Target |'];
    const rows = report
      .split('\n')
      .filter((line) => line.startsWith('| ') && !headers.some((h) => line.startsWith(h)));
    const row = (scenario: string, connections?: number) =>
      rows.filter(
        (line) =>
          line.startsWith(`| ${scenario}`) &&
          (connections === undefined || line.split('|')[2]!.trim() === String(connections)),
      );
    for (const connections of [1, 16, 64]) {
      expect(row('ceiling: bare Express route', connections)).toHaveLength(1);
      expect(row('/register, reuse on |', connections)).toHaveLength(1);
      expect(row('/register, reuse off, GITHUB_WRITE_INTERVAL_MS=350 (default)', connections)).toHaveLength(
        1,
      );
      expect(row('/register, reuse off, GITHUB_WRITE_INTERVAL_MS=0', connections)).toHaveLength(1);
    }
    expect(row('/register, reuse on: boot storm', 64)).toHaveLength(2);
    expect(row('/jitconfig, GITHUB_WRITE_INTERVAL_MS=350 (default)', 16)).toHaveLength(1);
    expect(row('/jitconfig, GITHUB_WRITE_INTERVAL_MS=0', 16)).toHaveLength(1);
    expect(row('/jitconfig boot storm: 20 VMs', 20)).toHaveLength(1);
    expect(row('deleter GET /', 16)).toHaveLength(1);
    expect(row('deleter DELETE /, fresh VM each', 16)).toHaveLength(2);
    expect(row('token proxy |')).toHaveLength(1);
    expect(row('instance deleter |')).toHaveLength(1);
    // The autoscaler: a burst of queued deliveries (--quick: 200) and one redelivery sweep (--quick: 20).
    expect(row('autoscaler: 200 queued deliveries at once', 200)).toHaveLength(1);
    expect(row('autoscaler: 200 queued deliveries at once')[0]).toContain('every VM requested after');
    expect(
      row('autoscaler: POST /reconcile with 20 failed deliveries in the log (20 redelivered', 1),
    ).toHaveLength(1);
    for (const [target, count] of [
      ['GitHub calls per 1000', 1],
      ['/register, reuse on, a distinct verified token per request, c64: throughput ≥ 80% of the ceiling', 1],
      ['/register, reuse on, c64: p99 ≤ 50 ms', 1],
      ["JIT boot storms stay within GitHub's secondary limits", 1],
      ['token proxy: cold start ≤', 1],
      ['instance deleter: RSS ≤ 128 MB', 1],
      ['Compute calls for 200 queued deliveries', 1],
    ] as const) {
      expect(row(target)).toHaveLength(count);
      expect(row(target)[0]).toMatch(/\| (yes|\*\*no\*\*) \|$/);
    }

    // No connection errors and no non-2xx answers anywhere in the load table.
    const failures = rows.filter((line) => /\| \d+ \/ \d+/.test(line) && !/\| 0 \/ 0 \|$/.test(line));
    expect(failures).toEqual([]);
    // Reuse on: a scope costs its cold miss only: installation lookup (unless configured), installation
    // token, registration token.
    const isTarget = (line: string) => /\| (yes|\*\*no\*\*) \|$/.test(line);
    for (const line of row('/register, reuse on').filter((line) => !isTarget(line))) {
      expect(line.split('|')[9]!.trim()).toBe(line.includes('GITHUB_INSTALLATION_ID set') ? '2' : '3');
    }
    // CPU time per request is measured for ours and the ceiling (on Linux, where /proc is).
    if (process.platform === 'linux') {
      for (const line of [...row('ceiling: bare Express route'), ...row('/register, reuse on |')]) {
        expect(line.split('|')[8]!.trim()).toMatch(/^\d+(\.\d+)?$/);
      }
    }
    expect(report).toMatch(/service log audit: \d+ lines, no token, key or identity token found/);
    // Several sandboxes, cold starts and loads: minutes on a busy machine, never a timing assertion.
  }, 600_000);
});
