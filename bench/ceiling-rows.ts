import path from 'node:path';
import { TOOL_ENTRY_POINTS } from '#entry-points';
import { freePort, spawnNode, waitUntilAnswering } from '#sandbox/node-process';
import { repoRoot, SANDBOX_ORG } from '#sandbox/sandbox';
import type { Sandbox } from '#sandbox/sandbox';
import {
  bearer,
  CONCURRENCIES,
  log,
  postsubmitPool,
  registerBody,
  rotation,
  timedLoad,
} from './bench-support.js';
import type { LogAudit } from './bench-support.js';
import type { BenchOptions } from './parse-bench-options.js';
import type { LoadRow } from './render-report.js';
import type { LoadResult } from './run-load.js';

/**
 * The ceiling (bench/ceiling-server.ts: a bare Express route that reads the body, verifies the RS256
 * identity token and answers JSON) at each concurrency, with the same requests as `/register`: the same
 * body, a different valid identity token of the sandbox's issuer each time, for the proxy's audience.
 * With `profileDir`, the ceiling writes a CPU profile there too (`node --cpu-prof`).
 */
export async function ceilingRows(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
  profileDir?: string,
): Promise<{ rows: LoadRow[]; byConcurrency: Map<number, LoadResult>; pid: number | undefined }> {
  const port = await freePort();
  const ceiling = spawnNode(path.join(repoRoot(), TOOL_ENTRY_POINTS['ceiling-server']), {
    PATH: process.env.PATH ?? '',
    PORT: String(port),
    ID_TOKEN_CERTS_URL: sandbox.issuer.certsUrl,
    AUTH_AUDIENCE: sandbox.proxyUrl,
    ...(profileDir === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir}` }),
  });
  const byConcurrency = new Map<number, LoadResult>();
  const rows: LoadRow[] = [];
  try {
    await waitUntilAnswering(ceiling, port, { path: '/healthz', status: 200, intervalMs: 10 });
    const pool = rotation(postsubmitPool(sandbox, audit, 256));
    for (const connections of CONCURRENCIES) {
      const { load, cpuMs } = await timedLoad(
        `http://127.0.0.1:${port}`,
        connections,
        {
          method: 'POST',
          path: '/register',
          body: registerBody(SANDBOX_ORG),
          next: () => bearer(pool.next()),
        },
        options,
        undefined,
        ceiling.child.pid,
      );
      if (load.non2xx > 0) throw new Error(`the ceiling server refused ${load.non2xx} requests`);
      byConcurrency.set(connections, load);
      rows.push({
        id: `ceiling/c${connections}`,
        scenario: 'ceiling: bare Express route, body read, RS256 token verified (node:crypto), JSON answer',
        connections,
        load,
        ...(cpuMs === undefined ? {} : { cpuMs }),
      });
      log(`ceiling c${connections}: ${load.requestsPerSecond.toFixed(0)} req/s`);
    }
  } finally {
    await ceiling.stop();
  }
  return { rows, byConcurrency, pid: ceiling.child.pid };
}
