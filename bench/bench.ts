/**
 * `npm run bench`: how fast and how frugal the services are, measured on loopback against the fakes.
 *
 * Both services run as in production: the sandbox starts them from `dist/` as child processes, with the
 * fake GitHub (with an added latency standing in for the real round trip), the fake Compute API and the
 * fake Google issuer. autocannon loads them from this process with real, rotating identity tokens, so
 * every request is verified. The ceiling is a bare Express route that only reads the body, verifies the
 * token and answers (bench/ceiling-server.ts), also a child process.
 * Prints a Markdown report and writes it to `--out` (default bench/results/latest.md; with `--quick`,
 * whose numbers mean nothing, only to a file `--out` names).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SANDBOX_ORG } from '#sandbox/sandbox';
import { autoscalerRows, autoscalerTargets } from './autoscaler-rows.js';
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
import { ceilingRows } from './ceiling-rows.js';
import { deleterRows } from './deleter-rows.js';
import { jitStorm, jitStormNotes } from './jit-storm.js';
import type { JitStorm } from './jit-storm.js';
import { BENCH_USAGE, BenchUsageError, parseBenchOptions } from './parse-bench-options.js';
import type { BenchOptions } from './parse-bench-options.js';
import { jitRow, registerRows, stormRow } from './proxy-rows.js';
import { renderReport } from './render-report.js';
import { reportMeta } from './report-meta.js';
import type { LoadRow } from './render-report.js';
import { runLoad } from './run-load.js';
import type { LoadResult } from './run-load.js';
import { upstreamRatioNote, upstreamRow } from './upstream-rows.js';
import { residentMemoryMiB } from './resident-memory.js';
import { measureTargets } from './targets.js';
import { keepProfileOf, profilesIn, removeNewProfiles } from './cpu-profile.js';

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
  if (options.stormOnly) {
    // As sandbox 4 below: the defaults, fresh, GitHub's points budget enforced. No report file.
    const storms: JitStorm[] = [];
    await withSandbox(options, audit, {}, async (sandbox) => {
      for (const vms of options.jitStorms) storms.push(await jitStorm(sandbox, audit, vms));
    });
    process.stdout.write(`${jitStormNotes(storms, options).join('\n')}\n`);
    return;
  }
  const started = Date.now();
  const loadAtStart = os.loadavg()[0]!;
  const here = process.env.INIT_CWD ?? process.cwd();
  const profileDir = options.cpuProfDir === undefined ? undefined : path.resolve(here, options.cpuProfDir);

  // Cold starts first, while the machine is quiet.
  const cold = options.registerOnly ? undefined : await serviceColdStarts(options.coldStarts);

  const rows: LoadRow[] = [];
  let ceiling = new Map<number, LoadResult>();
  let proxyRss: number | undefined;
  let deleterRss: number | undefined;
  const storms: JitStorm[] = [];

  // Sandbox 1: the defaults (reuse on, writes spaced 350 ms).
  const profiling =
    profileDir === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir}` };
  let proxyPid: number | undefined;
  let ceilingPid: number | undefined;
  const profilesBefore = new Set(profileDir === undefined ? [] : profilesIn(profileDir));
  await withSandbox(options, audit, profiling, async (sandbox) => {
    proxyPid = sandbox.servicePids.tokenProxy;
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
    const ceilings = await ceilingRows(sandbox, options, audit, profileDir);
    ceiling = ceilings.byConcurrency;
    ceilingPid = ceilings.pid;
    rows.push(...ceilings.rows);
    rows.push(
      ...(await registerRows(
        sandbox,
        options,
        audit,
        { id: 'reuse-on', label: 'reuse on' },
        ceiling,
        undefined,
      )),
    );
    if (options.upstreamBin !== undefined)
      rows.push(await upstreamRow(sandbox, options, options.upstreamBin));
    if (options.registerOnly) return;
    rows.push(
      await stormRow(sandbox, options, audit, ceiling, {
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
    );
    rows.push(jit.row);
    if (jit.wrapped > 0)
      notes.push(
        `/jitconfig (default interval): the pool of ${jit.vms} VMs ran out; ${jit.wrapped} rounds reused names.`,
      );
    const deleter = await deleterRows(sandbox, options, audit);
    rows.push(...deleter.rows);
    notes.push(...deleter.notes);
    proxyRss = mb(residentMemoryMiB(sandbox.servicePids.tokenProxy));
    deleterRss = mb(residentMemoryMiB(sandbox.servicePids.instanceDeleter));
  });
  if (profileDir !== undefined && proxyPid !== undefined) {
    notes.push(
      `CPU profile of the token proxy: ${keepProfileOf(profileDir, proxyPid, 'token-proxy') ?? 'not written'}.`,
    );
    if (ceilingPid !== undefined)
      notes.push(
        `CPU profile of the ceiling: ${keepProfileOf(profileDir, ceilingPid, 'ceiling') ?? 'not written'}.`,
      );
    removeNewProfiles(profileDir, profilesBefore);
  }

  if (!options.registerOnly) {
    // Sandbox 1b: as 1, with the installation id configured, so no scope needs an installation lookup.
    await withSandbox(options, audit, { GITHUB_INSTALLATION_ID: '1' }, async (sandbox) => {
      // The fake numbers installations from 1, and the sandbox installs the App on its org only.
      const jwt = sandbox.github.signAppJwt();
      const res = await fetch(`${sandbox.github.baseUrl}/app/installations/1`, {
        headers: { authorization: `Bearer ${jwt}` },
      });
      const account = ((await res.json()) as { account?: { login?: string } }).account?.login;
      if (account !== SANDBOX_ORG)
        throw new Error(`installation 1 of the fake GitHub is not ${SANDBOX_ORG}'s`);
      const storm = await stormRow(sandbox, options, audit, ceiling, {
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
          ceiling,
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
          ceiling,
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

    // Sandbox 4: the defaults again, fresh, for JIT boot storms with GitHub's points budget enforced.
    await withSandbox(options, audit, {}, async (sandbox) => {
      for (const vms of options.jitStorms) storms.push(await jitStorm(sandbox, audit, vms));
    });
    const after = rows.findIndex((row) => row.id === 'jit/no-interval');
    rows.splice(after + 1, 0, ...storms.map((storm) => storm.row));
    notes.push(...jitStormNotes(storms, options));
  }

  // The autoscaler's rows: fakes and the built autoscaler of their own, no sandbox.
  const autoscaler = options.registerOnly ? undefined : await autoscalerRows(options);
  if (autoscaler) {
    rows.push(...autoscaler.rows);
    notes.push(...autoscaler.notes);
  }

  const ratio = upstreamRatioNote(rows);
  if (ratio !== undefined) notes.push(ratio);

  const processes = cold ? processRows(cold, { proxy: proxyRss, deleter: deleterRss }) : [];

  const targets = [
    ...measureTargets(rows, processes, options.stormSize, storms),
    ...(autoscaler ? autoscalerTargets(autoscaler.burst) : []),
  ];

  const report = renderReport(
    reportMeta(options, { started, loadAtStart, auditLines: audit.lines.length, notes }),
    rows,
    processes,
    targets,
  );
  if (options.out === undefined) {
    process.stdout.write(`${report}\nNot written to a file (--quick); --out FILE keeps it.\n`);
    return;
  }
  // A relative --out is where the user is: npm runs scripts in the package root and says where in INIT_CWD.
  const out = path.resolve(here, options.out);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, report);
  process.stdout.write(`${report}\nWritten to ${path.relative(here, out) || out}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
