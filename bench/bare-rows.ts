import path from 'node:path';
import { TOOL_ENTRY_POINTS } from '#entry-points';
import { freePort, spawnNode, waitUntilAnswering } from '#sandbox/node-process';
import { repoRoot, SANDBOX_ORG } from '#sandbox/sandbox';
import { bearer, CONCURRENCIES, log, registerBody, timedLoad } from './bench-support.js';
import type { BenchOptions } from './parse-bench-options.js';
import type { LoadRow } from './render-report.js';
import type { LoadResult } from './run-load.js';

/** The bare server at each concurrency, with the same request shape as `/register`. */
export async function bareRows(
  options: BenchOptions,
): Promise<{ rows: LoadRow[]; byConcurrency: Map<number, LoadResult> }> {
  const root = repoRoot();
  const port = await freePort();
  const bare = spawnNode(path.join(root, TOOL_ENTRY_POINTS['bare-server']), {
    PATH: process.env.PATH ?? '',
    PORT: String(port),
  });
  const byConcurrency = new Map<number, LoadResult>();
  const rows: LoadRow[] = [];
  try {
    await waitUntilAnswering(bare, port, { status: 200, intervalMs: 2 });
    // A token of the same length as a real identity token, so request sizes match.
    const token = `${'e'.repeat(36)}.${'p'.repeat(700)}.${'s'.repeat(342)}`;
    for (const connections of CONCURRENCIES) {
      const { load } = await timedLoad(
        `http://127.0.0.1:${port}`,
        connections,
        { method: 'POST', path: '/register', body: registerBody(SANDBOX_ORG), headers: bearer(token) },
        options,
      );
      byConcurrency.set(connections, load);
      rows.push({
        id: `bare/c${connections}`,
        scenario: 'bare node:http, constant JSON (ceiling)',
        connections,
        load,
      });
      log(`bare c${connections}: ${load.requestsPerSecond.toFixed(0)} req/s`);
    }
  } finally {
    await bare.stop();
  }
  return { rows, byConcurrency };
}
