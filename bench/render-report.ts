import type { LoadResult } from './run-load.js';

/** One line of the load table. */
export interface LoadRow {
  /** Stable id the bench finds the row by (`register/reuse-on/c16`, `storm/installation-id-set`, …). */
  id: string;
  /** What the report shows. */
  scenario: string;
  connections: number;
  load: LoadResult;
  /** The ceiling server's result at the same concurrency, for the "% of ceiling" column. */
  ceiling?: LoadResult;
  /** GitHub (or Compute) calls the fake received while the row ran; undefined where not counted. */
  upstreamCalls?: number;
  /** CPU time (user + system, ms) the serving process used during the row; undefined where not measured. */
  cpuMs?: number;
}

/** Cold start and memory of one service. */
export interface ProcessRow {
  service: string;
  /** Milliseconds from spawn to the first answer, one per spawn. */
  coldStartsMs: number[];
  /** What "first answer" means for this service. */
  readyWhen: string;
  idleRssMB: number | undefined;
  loadedRssMB: number | undefined;
}

/** A performance target, and whether the run met it. */
export interface TargetRow {
  target: string;
  measured: string;
  met: boolean;
}

export interface ReportMeta {
  title: string;
  environment: string[];
  notes: string[];
}

const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function failures(load: LoadResult): string {
  const parts = [`${load.errors} / ${load.non2xx}`];
  const odd = Object.entries(load.statusCounts).filter(([status]) => !status.startsWith('2'));
  if (odd.length > 0) parts.push(`(${odd.map(([status, count]) => `${count}×${status}`).join(', ')})`);
  return parts.join(' ');
}

/** CPU milliseconds per answered request, or – where not measured. */
export function cpuMsPerRequest(row: LoadRow): number | undefined {
  return row.cpuMs === undefined || row.load.requests === 0 ? undefined : row.cpuMs / row.load.requests;
}

function cpuPerRequest(row: LoadRow): string {
  const value = cpuMsPerRequest(row);
  if (value === undefined) return '–';
  return value < 10 ? value.toFixed(3) : value.toFixed(0);
}

/** Upstream calls per 1000 answered requests. */
export function perThousand(calls: number | undefined, load: LoadResult): string {
  if (calls === undefined) return '–';
  if (load.requests === 0) return calls === 0 ? '0' : '∞';
  const value = (calls * 1000) / load.requests;
  return value < 10 ? value.toFixed(2) : value.toFixed(0);
}

/** The Markdown report: the load table, cold start and memory, targets, notes. */
export function renderReport(
  meta: ReportMeta,
  rows: LoadRow[],
  processes: ProcessRow[],
  targets: TargetRow[],
): string {
  const lines = [`# ${meta.title}`, '', ...meta.environment.map((line) => `- ${line}`), ''];
  lines.push(
    '| Scenario | Conc. | Requests | Req/s | % of ceiling | p50 ms | p99 ms | CPU ms / req | Upstream calls | Calls / 1000 req | Errors / non-2xx |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
  );
  for (const row of rows) {
    const { load } = row;
    const share =
      row.ceiling && row.ceiling.requestsPerSecond > 0
        ? `${fixed((100 * load.requestsPerSecond) / row.ceiling.requestsPerSecond, 1)}%`
        : '–';
    lines.push(
      `| ${row.scenario} | ${row.connections} | ${load.requests} | ${fixed(load.requestsPerSecond, load.requestsPerSecond < 10 ? 1 : 0)} | ${share} | ${fixed(load.p50)} | ${fixed(load.p99)} | ${cpuPerRequest(row)} | ${row.upstreamCalls ?? '–'} | ${perThousand(row.upstreamCalls, load)} | ${failures(load)} |`,
    );
  }
  lines.push(
    '',
    '| Service | Cold start, median (min–max, n) | Ready when | RSS idle after start | RSS after the load |',
    '|---|---|---|--:|--:|',
  );
  for (const p of processes) {
    const mb = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(1)} MB`);
    lines.push(
      `| ${p.service} | ${fixed(median(p.coldStartsMs))} ms (${fixed(Math.min(...p.coldStartsMs))}–${fixed(Math.max(...p.coldStartsMs))}, n=${p.coldStartsMs.length}) | ${p.readyWhen} | ${mb(p.idleRssMB)} | ${mb(p.loadedRssMB)} |`,
    );
  }
  lines.push('', '| Target | Measured | Met |', '|---|---|---|');
  for (const t of targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  lines.push('', ...meta.notes.map((note) => `- ${note}`), '');
  return lines.join('\n');
}
