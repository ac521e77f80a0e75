import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SERVICE_ENTRY_POINTS } from '#entry-points';
import { freePort, spawnNode, waitUntilAnswering } from '#sandbox/node-process';
import { repoRoot, SANDBOX_ORG } from '#sandbox/sandbox';
import { log, mb, sleep } from './bench-support.js';
import type { ProcessRow } from './render-report.js';
import { residentMemoryMiB } from './resident-memory.js';

/** Spawns a built service `runs` times, timing spawn → first answer, and its RSS once it is idle. */
async function coldStarts(
  name: string,
  entry: string,
  env: (port: number) => Record<string, string>,
  readyPath: string,
  readyStatus: number | undefined,
  runs: number,
): Promise<{ times: number[]; idleRss: number | undefined }> {
  const times: number[] = [];
  let idleRss: number | undefined;
  for (let i = 0; i < runs; i += 1) {
    const port = await freePort();
    const started = performance.now();
    const spawned = spawnNode(entry, env(port));
    try {
      await waitUntilAnswering(spawned, port, {
        path: readyPath,
        ...(readyStatus === undefined ? {} : { status: readyStatus }),
        intervalMs: 2,
      });
      times.push(performance.now() - started);
      if (i === runs - 1) {
        await sleep(500);
        idleRss = residentMemoryMiB(spawned.child.pid!);
      }
    } finally {
      await spawned.stop();
    }
  }
  log(`${name}: cold start ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
  return { times, idleRss: mb(idleRss) };
}

/** Cold starts of one service: spawn → first answer times, and idle RSS in MB. */
export interface ColdStarts {
  times: number[];
  idleRss: number | undefined;
}

/** Cold starts of both built services, `runs` each, in a minimal production environment. */
export async function serviceColdStarts(runs: number): Promise<{ proxy: ColdStarts; deleter: ColdStarts }> {
  const root = repoRoot();
  const minimal = (port: number) => ({
    PATH: process.env.PATH ?? '',
    PORT: String(port),
    AUTH_AUDIENCE: `http://127.0.0.1:${port}`,
    LOG_LEVEL: 'warn',
  });
  const proxy = await coldStarts(
    'token proxy',
    path.join(root, SERVICE_ENTRY_POINTS['token-proxy'].main),
    (port) => ({
      ...minimal(port),
      GITHUB_TOKEN: 'ghp_benchmarkColdStartOnly',
      ALLOWED_SCOPES: SANDBOX_ORG,
      POLICY: 'open',
    }),
    '/healthz',
    200,
    runs,
  );
  const deleter = await coldStarts(
    'instance deleter',
    path.join(root, SERVICE_ENTRY_POINTS['instance-deleter'].main),
    (port) => ({ ...minimal(port), ALLOWED_MIG_PATTERN: 'gh-runner-.*' }),
    '/',
    undefined,
    runs,
  );
  return { proxy, deleter };
}

/** The report's process rows: cold starts, idle RSS, and RSS after the load (MB). */
export function processRows(
  cold: { proxy: ColdStarts; deleter: ColdStarts },
  loadedRss: { proxy: number | undefined; deleter: number | undefined },
): ProcessRow[] {
  return [
    {
      service: 'token proxy',
      coldStartsMs: cold.proxy.times,
      readyWhen: 'first 200 on GET /healthz',
      idleRssMB: cold.proxy.idleRss,
      loadedRssMB: loadedRss.proxy,
    },
    {
      service: 'instance deleter',
      coldStartsMs: cold.deleter.times,
      readyWhen: 'first HTTP answer (401 on GET /)',
      idleRssMB: cold.deleter.idleRss,
      loadedRssMB: loadedRss.deleter,
    },
  ];
}
