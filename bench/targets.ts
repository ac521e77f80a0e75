import { median, perThousand } from './render-report.js';
import type { LoadRow, ProcessRow, TargetRow } from './render-report.js';

/** The storm rows' ids and how the targets table names them. */
const STORMS: Record<string, string> = {
  'storm/installation-looked-up': 'installation looked up',
  'storm/installation-id-set': 'installation id set',
};

/** The performance targets, measured on the rows (found by id) and the processes of one run. */
export function measureTargets(
  rows: readonly LoadRow[],
  processes: readonly ProcessRow[],
  stormSize: number,
): TargetRow[] {
  const register = rows.filter((row) => row.id.startsWith('register/reuse-on/'));
  const reuseOn = [...register, ...rows.filter((row) => row.id in STORMS)];
  const regShare = (row: LoadRow) =>
    (100 * row.load.requestsPerSecond) / (row.bare?.requestsPerSecond ?? Number.NaN);
  const perK = (row: LoadRow) => ((row.upstreamCalls ?? 0) * 1000) / Math.max(1, row.load.requests);
  const name = (row: LoadRow) =>
    row.id in STORMS ? `storm of ${stormSize}, ${STORMS[row.id]}` : `c${row.connections}`;
  return [
    {
      target: 'GitHub calls per 1000 same-scope registrations ≤ 2, reuse on',
      measured: reuseOn.map((row) => `${name(row)}: ${perThousand(row.upstreamCalls, row.load)}`).join(', '),
      met: reuseOn.every((row) => perK(row) <= 2),
    },
    {
      target: '/register throughput with verification ≥ 50% of bare',
      measured: register.map((row) => `c${row.connections}: ${regShare(row).toFixed(1)}%`).join(', '),
      met: register.every((row) => regShare(row) >= 50),
    },
    {
      target: 'cold start ≤ 500 ms (median)',
      measured: processes.map((p) => `${p.service} ${median(p.coldStartsMs).toFixed(0)} ms`).join(', '),
      met: processes.every((p) => median(p.coldStartsMs) <= 500),
    },
    {
      target: 'RSS ≤ 100 MB after the load',
      measured: processes.map((p) => `${p.service} ${p.loadedRssMB?.toFixed(1) ?? '–'} MB`).join(', '),
      met: processes.every((p) => p.loadedRssMB !== undefined && p.loadedRssMB <= 100),
    },
  ];
}
