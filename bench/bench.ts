/**
 * `npm run bench`: how fast and how frugal the services are, measured on loopback against the fakes.
 *
 * Both services run as in production: the sandbox starts them from `dist/` as child processes, with the
 * fake GitHub (with an added latency standing in for the real round trip), the fake Compute API and the
 * fake Google issuer. autocannon loads them from this process with real, rotating identity tokens, so
 * every request is verified. A bare `node:http` server, also a child process, is the ceiling.
 * Prints a Markdown report and writes it to `--out` (default bench/results/latest.md; with `--quick`,
 * whose numbers mean nothing, only to a file `--out` names).
 */
import fs from 'node:fs';
import path from 'node:path';
import { SANDBOX_ORG } from '#sandbox/sandbox';
import { autoscalerRows, autoscalerTargets } from './autoscaler-rows.js';
import { bareRows } from './bare-rows.js';
import {
  bearer,
  DEFAULT_WRITE_INTERVAL_MS,
  mb,
  postsubmitPool,
  registerBody,
  rotation,
  withSandbox,
} from './bench-support.js';
import type { LogAudit } from './bench-support.js';
import { processRows, serviceColdStarts } from './cold-starts.js';
import { deleterRows } from './deleter-rows.js';
import { BENCH_USAGE, BenchUsageError, parseBenchOptions } from './parse-bench-options.js';
import type { BenchOptions } from './parse-bench-options.js';
import { jitRow, registerRows, stormRow } from './proxy-rows.js';
import { renderReport } from './render-report.js';
import { reportMeta } from './report-meta.js';
import type { LoadRow } from './render-report.js';
import { runLoad } from './run-load.js';
import { upstreamRatioNote, upstreamRow } from './upstream-rows.js';
import { residentMemoryMiB } from './resident-memory.js';
import { measureTargets } from './targets.js';

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof BenchUsageError) {
      process.stderr.write(`${error.message}\n\n${BENCH_USAGE}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (options.help) {
    process.stdout.write(`${BENCH_USAGE}\n`);
    return;
  }
  const audit: LogAudit = { lines: [], secrets: new Set() };
  const notes: string[] = [];
  const started = Date.now();

  // Cold starts first, while the machine is quiet.
  const cold = await serviceColdStarts(options.coldStarts);

  const bare = await bareRows(options);
  const rows: LoadRow[] = [...bare.rows];
  let proxyRss: number | undefined;
  let deleterRss: number | undefined;

  // Sandbox 1: the defaults (reuse on, writes spaced 350 ms).
  await withSandbox(options, audit, {}, async (sandbox) => {
    // Warm up: certificates, JIT, the installation token of the org scope.
    const warm = rotation(postsubmitPool(sandbox, audit, 64));
    await runLoad({
      url: sandbox.proxyUrl,
      connections: 16,
      durationSeconds: 1,
      ...(options.maxRequestsPerRun === undefined ? {} : { maxRequests: options.maxRequestsPerRun }),
      request: {
        method: 'POST',
        path: '/register',
        body: registerBody(SANDBOX_ORG),
        next: () => bearer(warm.next()),
      },
    });
    rows.push(
      ...(await registerRows(
        sandbox,
        options,
        audit,
        { id: 'reuse-on', label: 'reuse on' },
        bare.byConcurrency,
        undefined,
      )),
    );
    if (options.upstreamBin !== undefined)
      rows.push(await upstreamRow(sandbox, options, options.upstreamBin));
    rows.push(
      await stormRow(sandbox, options, audit, bare.byConcurrency, {
        id: 'installation-looked-up',
        label: 'installation looked up',
      }),
    );
    const jit = await jitRow(
      sandbox,
      options,
      audit,
      { id: 'default-interval', label: `GITHUB_WRITE_INTERVAL_MS=${DEFAULT_WRITE_INTERVAL_MS} (default)` },
      1000 / DEFAULT_WRITE_INTERVAL_MS,
      bare.byConcurrency,
    );
    rows.push(jit.row);
    if (jit.wrapped > 0)
      notes.push(
        `/jitconfig (default interval): the pool of ${jit.vms} VMs ran out; ${jit.wrapped} rounds reused names.`,
      );
    const deleter = await deleterRows(sandbox, options, audit, bare.byConcurrency);
    rows.push(...deleter.rows);
    notes.push(...deleter.notes);
    proxyRss = mb(residentMemoryMiB(sandbox.servicePids.tokenProxy));
    deleterRss = mb(residentMemoryMiB(sandbox.servicePids.instanceDeleter));
  });

  // Sandbox 1b: as 1, with the installation id configured, so no scope needs an installation lookup.
  await withSandbox(options, audit, { GITHUB_INSTALLATION_ID: '1' }, async (sandbox) => {
    // The fake numbers installations from 1, and the sandbox installs the App on its org only.
    const jwt = sandbox.github.signAppJwt();
    const res = await fetch(`${sandbox.github.baseUrl}/app/installations/1`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    const account = ((await res.json()) as { account?: { login?: string } }).account?.login;
    if (account !== SANDBOX_ORG) throw new Error(`installation 1 of the fake GitHub is not ${SANDBOX_ORG}'s`);
    const storm = await stormRow(sandbox, options, audit, bare.byConcurrency, {
      id: 'installation-id-set',
      label: 'GITHUB_INSTALLATION_ID set',
    });
    const first = rows.findIndex((row) => row.id === 'storm/installation-looked-up');
    rows.splice(first + 1, 0, storm);
  });

  // Sandbox 2: reuse off, writes spaced as by default: every registration is one spaced GitHub POST.
  await withSandbox(options, audit, { TOKEN_REUSE_MIN_REMAINING_SECONDS: '0' }, async (sandbox) => {
    rows.push(
      ...(await registerRows(
        sandbox,
        options,
        audit,
        {
          id: 'reuse-off-default-interval',
          label: `reuse off, GITHUB_WRITE_INTERVAL_MS=${DEFAULT_WRITE_INTERVAL_MS} (default)`,
        },
        bare.byConcurrency,
        options.quick ? undefined : DEFAULT_WRITE_INTERVAL_MS + 500,
      )),
    );
  });

  // Sandbox 3: reuse off and no write spacing: what every request costs when nothing is shared or paced.
  await withSandbox(
    options,
    audit,
    { TOKEN_REUSE_MIN_REMAINING_SECONDS: '0', GITHUB_WRITE_INTERVAL_MS: '0' },
    async (sandbox) => {
      const noReuse = await registerRows(
        sandbox,
        options,
        audit,
        { id: 'reuse-off-no-interval', label: 'reuse off, GITHUB_WRITE_INTERVAL_MS=0' },
        bare.byConcurrency,
        undefined,
      );
      rows.push(...noReuse);
      const expected = noReuse.find((row) => row.id === 'register/reuse-off-no-interval/c16')!.load
        .requestsPerSecond;
      const jit = await jitRow(
        sandbox,
        options,
        audit,
        { id: 'no-interval', label: 'GITHUB_WRITE_INTERVAL_MS=0' },
        expected,
        bare.byConcurrency,
      );
      // Keep the two /jitconfig rows together.
      const firstJit = rows.findIndex((row) => row.id === 'jit/default-interval');
      rows.splice(firstJit + 1, 0, jit.row);
      if (jit.wrapped > 0)
        notes.push(
          `/jitconfig (interval 0): the pool of ${jit.vms} VMs ran out; ${jit.wrapped} rounds reused names.`,
        );
    },
  );

  // The autoscaler's rows: fakes and the built autoscaler of their own, no sandbox.
  const autoscaler = await autoscalerRows(options);
  rows.push(...autoscaler.rows);
  notes.push(...autoscaler.notes);

  const ratio = upstreamRatioNote(rows);
  if (ratio !== undefined) notes.push(ratio);

  const processes = processRows(cold, { proxy: proxyRss, deleter: deleterRss });

  const targets = [
    ...measureTargets(rows, processes, options.stormSize),
    ...autoscalerTargets(autoscaler.burst),
  ];

  const report = renderReport(
    reportMeta(options, { started, auditLines: audit.lines.length, notes }),
    rows,
    processes,
    targets,
  );
  if (options.out === undefined) {
    process.stdout.write(`${report}\nNot written to a file (--quick); --out FILE keeps it.\n`);
    return;
  }
  // A relative --out is where the user is: npm runs scripts in the package root and says where in INIT_CWD.
  const here = process.env.INIT_CWD ?? process.cwd();
  const out = path.resolve(here, options.out);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, report);
  process.stdout.write(`${report}\nWritten to ${path.relative(here, out) || out}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
