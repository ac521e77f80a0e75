import os from 'node:os';
import { DEFAULT_WRITE_INTERVAL_MS } from './bench-support.js';
import type { BenchOptions } from './parse-bench-options.js';
import type { ReportMeta } from './render-report.js';

/** What one run adds to the report's header: when it started, the audited log lines, its own notes. */
export interface RunFacts {
  started: number;
  /** The machine's 1-minute load average when the run started (os.loadavg), 0 where unknown. */
  loadAtStart: number;
  auditLines: number;
  notes: readonly string[];
}

/** The report's title, environment and notes: what the numbers mean and how they were taken. */
export function reportMeta(options: BenchOptions, run: RunFacts): ReportMeta {
  const cpus = os.cpus();
  return {
    title: `Benchmark${options.quick ? ' (--quick: smoke run, numbers not meaningful)' : ''}`,
    environment: [
      `${new Date().toISOString()}, Node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} CPU(s) (${cpus[0]?.model.trim() ?? 'unknown'})`,
      `${options.quick ? `--quick: at most ${options.maxRequestsPerRun} requests or ${options.durationSeconds} s per run` : `${options.durationSeconds} s per run`} (DELETE rows: a fixed number of VMs); fake GitHub adds ${options.githubLatencyMs} ms per request; services from dist/ as child processes at LOG_LEVEL=warn; autocannon in the bench process, which also hosts the fakes`,
      'Every request carries a different valid identity token from a pre-minted pool, so RS256 verification runs on each.',
      `Total bench time ${((Date.now() - run.started) / 1000).toFixed(0)} s; service log audit: ${run.auditLines} lines, no token, key or identity token found.`,
      `Machine load (1-minute load average, ${cpus.length} CPUs): ${run.loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end. Other work on the machine takes CPU from every row alike, so compare rows of one run (the ratios), not runs.`,
    ],
    notes: [
      'Upstream calls: REST calls the fake GitHub (proxy rows) or fake Compute API (deleter rows) received during the row. /register rows count the calls of the row’s own scope (a fresh repository per row, so the first request of each row is a cold miss: one installation token and one registration token). Calls / 1000 req is per answered request.',
      '% of ceiling: requests per second against the ceiling at the same concurrency, measured in the same run: a bare Express 5 route on the same Node (bench/ceiling-server.ts) that reads the JSON body, verifies the RS256 identity token with node:crypto (signature by key id, iss, aud, exp; keys fetched once from the same fake issuer) and answers JSON, the work no token proxy can skip.',
      'CPU ms / req: user + system CPU time of the serving process (all its threads, from /proc/<pid>/stat) over the row, divided by the answered requests: what Cloud Run bills a busy instance for. The bench process (autocannon and the fakes) is not counted. Resolution 10 ms per row.',
      `/register with reuse off and the default GITHUB_WRITE_INTERVAL_MS=${DEFAULT_WRITE_INTERVAL_MS}: every registration is a POST to GitHub, and the proxy spaces POSTs ${DEFAULT_WRITE_INTERVAL_MS} ms apart (Bottleneck, one at a time) to stay clear of GitHub’s secondary rate limits, so throughput is capped near ${(1000 / DEFAULT_WRITE_INTERVAL_MS).toFixed(1)} req/s whatever the concurrency, and latency grows with the queue. Requests still queued when a row ends are left to drain before the next row.`,
      `/jitconfig: every request is a generate-jitconfig POST for a new runner (named after a fresh VM), which no cache can share. With the default interval it is capped near ${(1000 / DEFAULT_WRITE_INTERVAL_MS).toFixed(1)} req/s by the same write spacing; with GITHUB_WRITE_INTERVAL_MS=0 it shows the proxy’s own cost. Token reuse does not apply to JIT configs.`,
      'Deleter DELETE rows take the fresh-delete path (instances.get, listManagedInstances, deleteInstances: the operation is DONE at once), not the repeated-delete path. Deletions of one MIG are serialised by the deleter’s per-MIG lock, so the one-MIG row shows that lock; listManagedInstances also returns every member, so its cost grows with the MIG.',
      'Deleter GET /: instances.get per request; the MIG’s members, the MIG and its autoscaler are read once a second at most, shared by every request about that MIG (64 VMs asking in turn, one request in flight each).',
      'Latencies are those of the 2xx answers received within the run (autocannon); requests still in flight when a run ends are not counted, which flatters the rows capped by the write spacing (at c64 most requests were still queued).',
      `Boot storm rows: exactly ${options.stormSize} registrations for a scope nobody asked for before. With the installation looked up (the sandbox default, no GITHUB_INSTALLATION_ID) the first one costs three GitHub calls; with GITHUB_INSTALLATION_ID set, two. After that, the scope costs one registration-token call per ${(3600 - 900) / 60} minutes (tokens live an hour and are refreshed with 15 minutes left).`,
      ...run.notes,
    ],
  };
}
