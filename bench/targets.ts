import type { JitStorm } from './jit-storm.js';
import { cpuMsPerRequest, median, perThousand } from './render-report.js';
import type { LoadRow, ProcessRow, TargetRow } from './render-report.js';

/** The storm rows' ids and how the targets table names them. */
const STORMS: Record<string, string> = {
  'storm/installation-looked-up': 'installation looked up',
  'storm/installation-id-set': 'installation id set',
};

/** The concurrency the request-path targets are judged at: a boot storm's 64 connections. */
const TARGET_CONNECTIONS = 64;

/** What each service must reach after start and after the load. */
const PROCESS_TARGETS: Record<string, { coldStartMs: number; rssMB: number }> = {
  'token proxy': { coldStartMs: 500, rssMB: 100 },
  // What a 128 MB function needs: the memory the deleter is to fit.
  'instance deleter': { coldStartMs: 500, rssMB: 128 },
};

/** The performance targets, measured on the rows (found by id), the processes and the JIT storms of one run. */
export function measureTargets(
  rows: readonly LoadRow[],
  processes: readonly ProcessRow[],
  stormSize: number,
  jitStorms: readonly JitStorm[] = [],
): TargetRow[] {
  const find = (id: string) => rows.find((row) => row.id === id);
  const register = rows.filter((row) => row.id.startsWith('register/reuse-on/'));
  const reuseOn = [...register, ...rows.filter((row) => row.id in STORMS)];
  const perK = (row: LoadRow) => ((row.upstreamCalls ?? 0) * 1000) / Math.max(1, row.load.requests);
  const name = (row: LoadRow) =>
    row.id in STORMS ? `storm of ${stormSize}, ${STORMS[row.id]}` : `c${row.connections}`;
  const ours = find(`register/reuse-on/c${TARGET_CONNECTIONS}`);
  const ceiling = find(`ceiling/c${TARGET_CONNECTIONS}`);
  const upstream = find(`register/upstream/c${TARGET_CONNECTIONS}`);
  const targets: TargetRow[] = [];
  if (ours && ceiling) {
    const share = (100 * ours.load.requestsPerSecond) / ceiling.load.requestsPerSecond;
    const cpu = (row: LoadRow) => cpuMsPerRequest(row)?.toFixed(3) ?? '–';
    targets.push(
      {
        target: `/register, reuse on, a distinct verified token per request, c${TARGET_CONNECTIONS}: throughput ≥ 80% of the ceiling (bare Express route verifying the token)`,
        measured: `${share.toFixed(1)}% (${ours.load.requestsPerSecond.toFixed(0)} / ${ceiling.load.requestsPerSecond.toFixed(0)} req/s); CPU ms per request: ours ${cpu(ours)}, ceiling ${cpu(ceiling)}${upstream ? `, upstream ${cpu(upstream)}` : ''}`,
        met: share >= 80,
      },
      {
        target: `/register, reuse on, c${TARGET_CONNECTIONS}: p99 ≤ 50 ms`,
        measured: `${ours.load.p99} ms (ceiling ${ceiling.load.p99} ms)`,
        met: ours.load.p99 <= 50,
      },
    );
  }
  if (ours && upstream) {
    const ratio = ours.load.requestsPerSecond / upstream.load.requestsPerSecond;
    targets.push({
      target: `/register, c${TARGET_CONNECTIONS}: ours / upstream Go proxy ≥ 3`,
      measured: `${ratio.toFixed(2)} (${ours.load.requestsPerSecond.toFixed(0)} / ${upstream.load.requestsPerSecond.toFixed(0)} req/s)`,
      met: ratio >= 3,
    });
  }
  if (reuseOn.length > 0) {
    targets.push({
      target: 'GitHub calls per 1000 same-scope registrations ≤ 2, reuse on',
      measured: reuseOn.map((row) => `${name(row)}: ${perThousand(row.upstreamCalls, row.load)}`).join(', '),
      met: reuseOn.every((row) => perK(row) <= 2),
    });
  }
  if (jitStorms.length > 0) {
    targets.push({
      target:
        "JIT boot storms stay within GitHub's secondary limits (no 403/429 from GitHub) and every VM gets its config",
      measured: jitStorms
        .map(
          (storm) =>
            `${storm.row.connections} VMs: ${storm.githubLimitHits} GitHub limit hits, ${storm.gaveUp} gave up, ${storm.row.load.durationSeconds.toFixed(0)} s`,
        )
        .join('; '),
      met: jitStorms.every((storm) => storm.githubLimitHits === 0 && storm.gaveUp === 0),
    });
  }
  for (const p of processes) {
    const goal = PROCESS_TARGETS[p.service];
    if (!goal) continue;
    targets.push(
      {
        target: `${p.service}: cold start ≤ ${goal.coldStartMs} ms (median)`,
        measured: `${median(p.coldStartsMs).toFixed(0)} ms`,
        met: median(p.coldStartsMs) <= goal.coldStartMs,
      },
      {
        target: `${p.service}: RSS ≤ ${goal.rssMB} MB after the load`,
        measured: `${p.loadedRssMB?.toFixed(1) ?? '–'} MB`,
        met: p.loadedRssMB !== undefined && p.loadedRssMB <= goal.rssMB,
      },
    );
  }
  return targets;
}
