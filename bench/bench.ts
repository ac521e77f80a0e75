/**
 * `npm run bench`: how fast and how frugal the services are, measured on loopback against the fakes.
 *
 * Both services run as in production: the sandbox starts them from `dist/` as child processes, with the
 * fake GitHub (with an added latency standing in for the real round trip), the fake Compute API and the
 * fake Google issuer. autocannon loads them from this process with real, rotating identity tokens, so
 * every request is verified. A bare `node:http` server, also a child process, is the ceiling.
 * Prints a Markdown table and writes it to `--out` (default bench/results/latest.md).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoRoot, SANDBOX_ORG, SANDBOX_PROJECT, SERVICE_ACCOUNTS, startSandbox } from '#sandbox/sandbox';
import { SERVICE_ENTRY_POINTS, TOOL_ENTRY_POINTS } from '#entry-points';
import type { Sandbox } from '#sandbox/sandbox';
import type { FakeMig } from '#fakes/compute-api';
import { BENCH_USAGE, BenchUsageError, parseBenchOptions } from './parse-bench-options.js';
import type { BenchOptions } from './parse-bench-options.js';
import { median, perThousand, renderReport } from './render-report.js';
import type { LoadRow, ProcessRow, TargetRow } from './render-report.js';
import { runLoad } from './run-load.js';
import type { LoadRequest, LoadResult } from './run-load.js';
import { freePort } from '#sandbox/node-process';
import { residentMemoryMiB, spawnNode, waitForAnswer } from './service-process.js';

const CONCURRENCIES = [1, 16, 64] as const;
/** The proxy's default spacing of GitHub writes (GITHUB_WRITE_INTERVAL_MS). */
const DEFAULT_WRITE_INTERVAL_MS = 350;
/** VMs per MIG when the DELETE benchmark spreads its VMs over several MIGs. */
const VMS_PER_MIG = 25;
/** Zones of the zonal MIGs the DELETE benchmark spreads its VMs over (each holds a `gh-runner-postsubmit`). */
const SPREAD_ZONES = [
  'us-east1',
  'us-east4',
  'us-west1',
  'us-west2',
  'europe-west1',
  'europe-west4',
  'asia-east1',
  'asia-south1',
].flatMap((region) => ['a', 'b', 'c', 'd'].map((letter) => `${region}-${letter}`));

const benchStarted = Date.now();
const log = (message: string) =>
  process.stderr.write(
    `[bench ${((Date.now() - benchStarted) / 1000).toFixed(1).padStart(5)} s] ${message}\n`,
  );
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (mib: number | undefined) => (mib === undefined ? undefined : (mib * 1024 * 1024) / 1e6);
const hex = () => crypto.randomBytes(4).toString('hex');

/** Hands out the next entry of a list, round and round; counts how often it wrapped. */
function rotation<T>(items: readonly T[]): { next(): T; readonly wrapped: number } {
  let index = 0;
  return {
    next: () => items[index++ % items.length]!,
    get wrapped() {
      return Math.max(0, Math.floor((index - 1) / items.length));
    },
  };
}

interface VmIdentity {
  zone: string;
  instanceId: string;
  instanceName: string;
}

/** A pool of valid identity tokens, `perVm` per VM (different `iat`, so every token differs). */
function mintPool(
  sandbox: Sandbox,
  audience: string,
  email: string,
  vms: readonly VmIdentity[],
  perVm: number,
): string[] {
  const now = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let i = 0; i < perVm; i += 1) {
    for (const vm of vms) {
      tokens.push(
        sandbox.issuer.mintIdentityToken({
          audience,
          email,
          iat: now - i,
          compute: { ...SANDBOX_PROJECT, ...vm },
        }),
      );
    }
  }
  return tokens;
}

const identityOf = (vm: { zone: string; instanceId: string; name: string }): VmIdentity => ({
  zone: vm.zone,
  instanceId: vm.instanceId,
  instanceName: vm.name,
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** REST calls the fake GitHub received between `from` and `to` (ms) that `filter` keeps. */
function githubCallsBetween(
  sandbox: Sandbox,
  from: number,
  to: number,
  filter: (call: { path: string; body: unknown }) => boolean = () => true,
): number {
  return sandbox.github.controls.calls.filter(
    (call) => call.time >= from && call.time <= to && !call.path.startsWith('/_sandbox') && filter(call),
  ).length;
}

/** Calls made for repository `my-org/<repo>`: its runner endpoints and its installation tokens. */
const forRepo = (repo: string) => (call: { path: string; body: unknown }) =>
  call.path.startsWith(`/repos/${SANDBOX_ORG}/${repo}/`) ||
  (call.path.endsWith('/access_tokens') &&
    ((call.body as { repositories?: string[] } | undefined)?.repositories ?? []).includes(repo));

/** Runs one load and times it, so upstream calls can be counted inside its window. */
async function timedLoad(
  url: string,
  connections: number,
  request: LoadRequest,
  options: BenchOptions,
  amount?: number,
): Promise<{ load: LoadResult; from: number; to: number }> {
  const from = Date.now();
  const load = await runLoad({
    url,
    connections,
    request,
    durationSeconds: options.durationSeconds,
    ...(amount === undefined ? {} : { amount }),
    ...(options.maxRequestsPerRun === undefined ? {} : { maxRequests: options.maxRequestsPerRun }),
  });
  return { load, from, to: Date.now() };
}

/** Waits until the fake stops receiving calls that `filter` keeps (queued writes draining), at most `capMs`. */
async function drain(
  sandbox: Sandbox,
  filter: (call: { path: string; body: unknown }) => boolean,
  quietMs: number,
  capMs: number,
) {
  const deadline = Date.now() + capMs;
  let count = -1;
  while (Date.now() < deadline) {
    const now = sandbox.github.controls.calls.filter((call) => filter(call)).length;
    if (now === count) return;
    count = now;
    await sleep(quietMs);
  }
}

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
    const spawned = spawnNode(entry, env(port), port);
    try {
      await waitForAnswer(spawned, readyPath, readyStatus);
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

/** Lines the services printed, and the secrets none of them may contain. */
interface LogAudit {
  lines: string[];
  secrets: Set<string>;
}

function auditFindings(audit: LogAudit, sandbox: Sandbox): string[] {
  const secrets = new Set(audit.secrets);
  for (const issued of sandbox.github.issuedTokens.runner) secrets.add(issued.token);
  for (const issued of sandbox.github.issuedTokens.installation) secrets.add(issued.token);
  secrets.add(sandbox.github.app.privateKeyPkcs1Pem.split('\n')[1]!);
  const text = audit.lines.join('\n');
  return [...secrets]
    .filter((secret) => secret.length >= 8 && text.includes(secret))
    .map((s) => `${s.slice(0, 6)}…`);
}

/** Records the identity tokens of a pool for the log audit (their signatures are unique per token). */
function remember(audit: LogAudit, tokens: readonly string[]): void {
  for (const token of tokens) {
    audit.secrets.add(token.split('.')[2]!);
    audit.secrets.add(token.split('.')[1]!);
  }
}

async function withSandbox<T>(
  options: BenchOptions,
  audit: LogAudit,
  serviceEnv: Record<string, string>,
  work: (sandbox: Sandbox) => Promise<T>,
): Promise<T> {
  const sandbox = await startSandbox({
    proxyPort: 0,
    deleterPort: 0,
    githubLatencyMs: options.githubLatencyMs,
    vms: { presubmit: 1, postsubmit: 4 },
    serviceEnv: { LOG_LEVEL: 'warn', ...serviceEnv },
    onServiceLog: (service, line) => audit.lines.push(`[${service}] ${line}`),
  });
  try {
    const result = await work(sandbox);
    const leaks = auditFindings(audit, sandbox);
    if (leaks.length > 0) throw new Error(`log audit: service logs contain secrets: ${leaks.join(', ')}`);
    return result;
  } finally {
    await sandbox.stop();
  }
}

const registerBody = (scope: string) => JSON.stringify({ scope });

/** The postsubmit VMs of a sandbox: they may have registration tokens (presubmit ones are jitOnly). */
function postsubmitPool(sandbox: Sandbox, audit: LogAudit, size: number): string[] {
  const vms = sandbox
    .vms()
    .filter((vm) => vm.kind === 'postsubmit')
    .map(identityOf);
  const tokens = mintPool(
    sandbox,
    sandbox.proxyUrl,
    SERVICE_ACCOUNTS.postsubmit,
    vms,
    Math.ceil(size / vms.length),
  );
  remember(audit, tokens);
  return tokens;
}

/** `/register` rows at each concurrency, one fresh repository scope per row (so each starts cold). */
async function registerRows(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
  label: string,
  bare: Map<number, LoadResult>,
  drainMs: number | undefined,
): Promise<LoadRow[]> {
  const pool = rotation(postsubmitPool(sandbox, audit, 256));
  const rows: LoadRow[] = [];
  for (const connections of CONCURRENCIES) {
    const repo = `bench-${label.replace(/[^a-z0-9]+/g, '-')}-c${connections}-${hex()}`;
    sandbox.github.addRepo(`${SANDBOX_ORG}/${repo}`);
    const { load, from, to } = await timedLoad(
      sandbox.proxyUrl,
      connections,
      {
        method: 'POST',
        path: '/register',
        body: registerBody(`${SANDBOX_ORG}/${repo}`),
        next: () => bearer(pool.next()),
      },
      options,
    );
    const upstreamCalls = githubCallsBetween(sandbox, from, to, forRepo(repo));
    log(
      `/register ${label} c${connections}: ${load.requestsPerSecond.toFixed(0)} req/s, ${upstreamCalls} GitHub calls`,
    );
    rows.push({
      scenario: `/register, ${label}`,
      connections,
      load,
      upstreamCalls,
      ...withBare(bare, connections),
    });
    // Requests autocannon gave up on at the end of the run are still queued for GitHub; let them finish
    // so they do not slow the next row.
    if (drainMs !== undefined) await drain(sandbox, forRepo(repo), drainMs, 60_000);
  }
  return rows;
}

/** A boot storm: exactly `stormSize` (1000) registrations for one cold scope at concurrency 64. */
async function stormRow(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
  bare: Map<number, LoadResult>,
  label: string,
): Promise<LoadRow> {
  const pool = rotation(postsubmitPool(sandbox, audit, 256));
  const repo = `bench-storm-${hex()}`;
  sandbox.github.addRepo(`${SANDBOX_ORG}/${repo}`);
  const { load, from, to } = await timedLoad(
    sandbox.proxyUrl,
    64,
    {
      method: 'POST',
      path: '/register',
      body: registerBody(`${SANDBOX_ORG}/${repo}`),
      next: () => bearer(pool.next()),
    },
    options,
    options.stormSize,
  );
  const calls = sandbox.github.controls.calls.filter(
    (call) => call.time >= from && call.time <= to && forRepo(repo)(call),
  );
  const kinds = calls.map((call) => call.path.replace(/^.*\//, '')).join(', ');
  log(`boot storm, ${label}: ${load.requests} registrations, ${calls.length} GitHub calls (${kinds})`);
  return {
    scenario: `/register, reuse on: boot storm of ${options.stormSize} for one cold scope, ${label} (GitHub: ${kinds})`,
    connections: 64,
    load,
    upstreamCalls: calls.length,
    ...withBare(bare, 64),
  };
}

const withBare = (bare: Map<number, LoadResult>, connections: number) => {
  const result = bare.get(connections);
  return result ? { bare: result } : {};
};

/** `/jitconfig` at concurrency 16: one presubmit VM per request, since a JIT runner is named after its VM. */
async function jitRow(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
  label: string,
  expectedRps: number,
  bare: Map<number, LoadResult>,
): Promise<{ row: LoadRow; wrapped: number; vms: number }> {
  const count = Math.ceil(expectedRps * options.durationSeconds * 1.5) + 64;
  const mig = sandbox.migs.presubmit;
  const zones = [`${mig.location}-a`, `${mig.location}-b`];
  const vms: VmIdentity[] = [];
  for (let i = 0; i < count; i += 1) {
    const instance = sandbox.compute.addInstance({
      project: SANDBOX_PROJECT.projectId,
      zone: zones[i % zones.length]!,
      name: `gh-runner-presubmit-${hex()}${i.toString(36)}`,
      mig,
    });
    vms.push({ zone: instance.zone, instanceId: instance.id, instanceName: instance.name });
  }
  const tokens = mintPool(sandbox, sandbox.proxyUrl, SERVICE_ACCOUNTS.presubmit, vms, 1);
  remember(audit, tokens);
  const pool = rotation(tokens);
  const { load, from, to } = await timedLoad(
    sandbox.proxyUrl,
    16,
    { method: 'POST', path: '/jitconfig', body: registerBody(SANDBOX_ORG), next: () => bearer(pool.next()) },
    options,
  );
  const upstreamCalls = githubCallsBetween(sandbox, from, to);
  log(`/jitconfig ${label}: ${load.requestsPerSecond.toFixed(0)} req/s, ${upstreamCalls} GitHub calls`);
  return {
    row: { scenario: `/jitconfig, ${label}`, connections: 16, load, upstreamCalls, ...withBare(bare, 16) },
    wrapped: pool.wrapped,
    vms: count,
  };
}

/** Adds `count` VMs to MIGs named `gh-runner-postsubmit`: spread over zonal MIGs, or all in one regional MIG. */
function deleterVms(sandbox: Sandbox, count: number, layout: 'spread' | 'one-mig'): VmIdentity[] {
  const project = SANDBOX_PROJECT.projectId;
  const vms: VmIdentity[] = [];
  const add = (mig: FakeMig, zone: string) => {
    const instance = sandbox.compute.addInstance({
      project,
      zone,
      name: `gh-runner-postsubmit-${hex()}${vms.length.toString(36)}`,
      mig,
    });
    vms.push({ zone: instance.zone, instanceId: instance.id, instanceName: instance.name });
  };
  if (layout === 'one-mig') {
    const region = `southamerica-east1`;
    const mig = sandbox.compute.addMig({ project, region, name: 'gh-runner-postsubmit' });
    for (let i = 0; i < count; i += 1) add(mig, `${region}-${'abc'[i % 3]}`);
    return vms;
  }

  const migCount = Math.min(SPREAD_ZONES.length, Math.ceil(count / VMS_PER_MIG));
  const migs = SPREAD_ZONES.slice(0, migCount).map((zone) => ({
    zone,
    mig: sandbox.compute.addMig({ project, zone, name: 'gh-runner-postsubmit' }),
  }));
  for (let i = 0; i < count; i += 1) {
    const { zone, mig } = migs[i % migs.length]!;
    add(mig, zone);
  }
  return vms;
}

/** The deleter's `GET /` and `DELETE /` at concurrency 16. */
async function deleterRows(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
  bare: Map<number, LoadResult>,
): Promise<{ rows: LoadRow[]; notes: string[] }> {
  const compute = sandbox.compute.controls;
  const rows: LoadRow[] = [];
  const notes: string[] = [];

  // GET /: the sandbox's zonal postsubmit MIG, stable, with a recommendation equal to its size (answer false).
  const mig = sandbox.migs.postsubmit;
  sandbox.compute.setRecommendedSize(mig, mig.targetSize);
  const members = sandbox
    .vms()
    .filter((vm) => vm.kind === 'postsubmit')
    .map(identityOf);
  const getTokens = mintPool(sandbox, sandbox.deleterUrl, SERVICE_ACCOUNTS.postsubmit, members, 64);
  remember(audit, getTokens);
  const getPool = rotation(getTokens);
  let mark = compute.calls.length;
  const get = await timedLoad(
    sandbox.deleterUrl,
    16,
    { method: 'GET', path: '/', next: () => bearer(getPool.next()) },
    options,
  );
  rows.push({
    scenario: 'deleter GET / (stable MIG, answers false)',
    connections: 16,
    load: get.load,
    upstreamCalls: compute.calls.length - mark,
    ...withBare(bare, 16),
  });
  log(`deleter GET /: ${get.load.requestsPerSecond.toFixed(0)} req/s`);

  // DELETE /: one fresh VM per request, each deleting itself once (getInstance, listManagedInstances,
  // deleteInstances). Sized from the GET rate, since both make three Compute calls.
  const amount = Math.max(
    64,
    Math.min(
      options.maxRequestsPerRun ?? 5000,
      Math.round(get.load.requestsPerSecond * options.durationSeconds),
    ),
  );
  for (const layout of ['spread', 'one-mig'] as const) {
    const vms = deleterVms(sandbox, amount, layout);
    const tokens = mintPool(sandbox, sandbox.deleterUrl, SERVICE_ACCOUNTS.postsubmit, vms, 1);
    remember(audit, tokens);
    const pool = rotation(tokens);
    mark = compute.calls.length;
    const del = await timedLoad(
      sandbox.deleterUrl,
      16,
      { method: 'DELETE', path: '/', next: () => bearer(pool.next()) },
      options,
      amount,
    );
    const deletes = compute.calls.slice(mark).filter((call) => call.path.endsWith('/deleteInstances')).length;
    const scenario =
      layout === 'spread'
        ? `deleter DELETE /, fresh VM each (${amount} VMs over ${Math.min(SPREAD_ZONES.length, Math.ceil(amount / VMS_PER_MIG))} MIGs)`
        : `deleter DELETE /, fresh VM each (${amount} VMs in one MIG)`;
    rows.push({
      scenario,
      connections: 16,
      load: del.load,
      upstreamCalls: compute.calls.length - mark,
      ...withBare(bare, 16),
    });
    log(
      `deleter DELETE / (${layout}): ${del.load.requestsPerSecond.toFixed(0)} req/s, ${deletes} deleteInstances`,
    );
    if (deletes !== del.load.requests)
      notes.push(`DELETE (${layout}): ${deletes} deleteInstances for ${del.load.requests} answers.`);
  }
  return { rows, notes };
}

/** The bare server at each concurrency, with the same request shape as `/register`. */
async function bareRows(
  options: BenchOptions,
): Promise<{ rows: LoadRow[]; byConcurrency: Map<number, LoadResult> }> {
  const root = repoRoot();
  const port = await freePort();
  const bare = spawnNode(
    path.join(root, TOOL_ENTRY_POINTS['bare-server']),
    { PATH: process.env.PATH ?? '', PORT: String(port) },
    port,
  );
  const byConcurrency = new Map<number, LoadResult>();
  const rows: LoadRow[] = [];
  try {
    await waitForAnswer(bare, '/', 200);
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
      rows.push({ scenario: 'bare node:http, constant JSON (ceiling)', connections, load });
      log(`bare c${connections}: ${load.requestsPerSecond.toFixed(0)} req/s`);
    }
  } finally {
    await bare.stop();
  }
  return { rows, byConcurrency };
}

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
  const root = repoRoot();
  const proxyEntry = SERVICE_ENTRY_POINTS['token-proxy'].main;
  const deleterEntry = SERVICE_ENTRY_POINTS['instance-deleter'].main;
  const audit: LogAudit = { lines: [], secrets: new Set() };
  const notes: string[] = [];
  const started = Date.now();

  // Cold starts first, while the machine is quiet. A minimal production environment each.
  const minimal = (port: number) => ({
    PATH: process.env.PATH ?? '',
    PORT: String(port),
    AUTH_AUDIENCE: `http://127.0.0.1:${port}`,
    LOG_LEVEL: 'warn',
  });
  const proxyCold = await coldStarts(
    'token proxy',
    path.join(root, proxyEntry),
    (port) => ({ ...minimal(port), GITHUB_TOKEN: 'ghp_benchmarkColdStartOnly', ALLOWED_SCOPES: SANDBOX_ORG }),
    '/healthz',
    200,
    options.coldStarts,
  );
  const deleterCold = await coldStarts(
    'instance deleter',
    path.join(root, deleterEntry),
    (port) => ({ ...minimal(port), ALLOWED_MIG_PATTERN: 'gh-runner-.*' }),
    '/',
    undefined,
    options.coldStarts,
  );

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
    rows.push(...(await registerRows(sandbox, options, audit, 'reuse on', bare.byConcurrency, undefined)));
    rows.push(await stormRow(sandbox, options, audit, bare.byConcurrency, 'installation looked up'));
    const jit = await jitRow(
      sandbox,
      options,
      audit,
      `GITHUB_WRITE_INTERVAL_MS=${DEFAULT_WRITE_INTERVAL_MS} (default)`,
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
    const storm = await stormRow(sandbox, options, audit, bare.byConcurrency, 'GITHUB_INSTALLATION_ID set');
    const first = rows.findIndex((row) => row.scenario.includes('boot storm'));
    rows.splice(first + 1, 0, storm);
  });

  // Sandbox 2: reuse off, writes spaced as by default: every registration is one spaced GitHub POST.
  await withSandbox(options, audit, { TOKEN_REUSE_MIN_REMAINING_SECONDS: '0' }, async (sandbox) => {
    rows.push(
      ...(await registerRows(
        sandbox,
        options,
        audit,
        `reuse off, GITHUB_WRITE_INTERVAL_MS=${DEFAULT_WRITE_INTERVAL_MS} (default)`,
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
        'reuse off, GITHUB_WRITE_INTERVAL_MS=0',
        bare.byConcurrency,
        undefined,
      );
      rows.push(...noReuse);
      const expected = noReuse.find((row) => row.connections === 16)!.load.requestsPerSecond;
      const jit = await jitRow(
        sandbox,
        options,
        audit,
        'GITHUB_WRITE_INTERVAL_MS=0',
        expected,
        bare.byConcurrency,
      );
      // Keep the two /jitconfig rows together.
      const firstJit = rows.findIndex((row) => row.scenario.startsWith('/jitconfig'));
      rows.splice(firstJit + 1, 0, jit.row);
      if (jit.wrapped > 0)
        notes.push(
          `/jitconfig (interval 0): the pool of ${jit.vms} VMs ran out; ${jit.wrapped} rounds reused names.`,
        );
    },
  );

  const processes: ProcessRow[] = [
    {
      service: 'token proxy',
      coldStartsMs: proxyCold.times,
      readyWhen: 'first 200 on GET /healthz',
      idleRssMB: proxyCold.idleRss,
      loadedRssMB: proxyRss,
    },
    {
      service: 'instance deleter',
      coldStartsMs: deleterCold.times,
      readyWhen: 'first HTTP answer (401 on GET /)',
      idleRssMB: deleterCold.idleRss,
      loadedRssMB: deleterRss,
    },
  ];

  const reuseOn = rows.filter((row) => row.scenario.startsWith('/register, reuse on'));
  const regShare = (row: LoadRow) =>
    (100 * row.load.requestsPerSecond) / (row.bare?.requestsPerSecond ?? Number.NaN);
  const perK = (row: LoadRow) => ((row.upstreamCalls ?? 0) * 1000) / Math.max(1, row.load.requests);
  const targets: TargetRow[] = [
    {
      target: 'GitHub calls per 1000 same-scope registrations ≤ 2, reuse on',
      measured: reuseOn
        .map(
          (row) =>
            `${row.scenario.includes('GITHUB_INSTALLATION_ID set') ? `storm of ${options.stormSize}, installation id set` : row.scenario.includes('boot storm') ? `storm of ${options.stormSize}, installation looked up` : `c${row.connections}`}: ${perThousand(row.upstreamCalls, row.load)}`,
        )
        .join(', '),
      met: reuseOn.every((row) => perK(row) <= 2),
    },
    {
      target: '/register throughput with verification ≥ 50% of bare',
      measured: reuseOn
        .slice(0, 3)
        .map((row) => `c${row.connections}: ${regShare(row).toFixed(1)}%`)
        .join(', '),
      met: reuseOn.slice(0, 3).every((row) => regShare(row) >= 50),
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

  const cpus = os.cpus();
  const report = renderReport(
    {
      title: `Benchmark${options.quick ? ' (--quick: smoke run, numbers not meaningful)' : ''}`,
      environment: [
        `${new Date().toISOString()}, Node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} CPU(s) (${cpus[0]?.model.trim() ?? 'unknown'})`,
        `${options.quick ? `--quick: at most ${options.maxRequestsPerRun} requests or ${options.durationSeconds} s per run` : `${options.durationSeconds} s per run`} (DELETE rows: a fixed number of VMs); fake GitHub adds ${options.githubLatencyMs} ms per request; services from dist/ as child processes at LOG_LEVEL=warn; autocannon in the bench process, which also hosts the fakes`,
        'Every request carries a different valid identity token from a pre-minted pool, so RS256 verification runs on each.',
        `Total bench time ${((Date.now() - started) / 1000).toFixed(0)} s; service log audit: ${audit.lines.length} lines, no token, key or identity token found.`,
      ],
      notes: [
        'Upstream calls: REST calls the fake GitHub (proxy rows) or fake Compute API (deleter rows) received during the row. /register rows count the calls of the row’s own scope (a fresh repository per row, so the first request of each row is a cold miss: one installation token and one registration token). Calls / 1000 req is per answered request.',
        '% of bare: requests per second against the bare node:http server at the same concurrency, measured in the same run.',
        `/register with reuse off and the default GITHUB_WRITE_INTERVAL_MS=${DEFAULT_WRITE_INTERVAL_MS}: every registration is a POST to GitHub, and the proxy spaces POSTs ${DEFAULT_WRITE_INTERVAL_MS} ms apart (Bottleneck, one at a time) to stay clear of GitHub’s secondary rate limits, so throughput is capped near ${(1000 / DEFAULT_WRITE_INTERVAL_MS).toFixed(1)} req/s whatever the concurrency, and latency grows with the queue. Requests still queued when a row ends are left to drain before the next row.`,
        `/jitconfig: every request is a generate-jitconfig POST for a new runner (named after a fresh VM), which no cache can share. With the default interval it is capped near ${(1000 / DEFAULT_WRITE_INTERVAL_MS).toFixed(1)} req/s by the same write spacing; with GITHUB_WRITE_INTERVAL_MS=0 it shows the proxy’s own cost. Token reuse does not apply to JIT configs.`,
        'Deleter DELETE rows take the fresh-delete path (instances.get, listManagedInstances, deleteInstances: the operation is DONE at once), not the repeated-delete path. Deletions of one MIG are serialised by the deleter’s per-MIG lock, so the one-MIG row shows that lock; listManagedInstances also returns every member, so its cost grows with the MIG.',
        'Deleter GET /: instances.get, MIG get and autoscaler get per request on a stable MIG.',
        'Latencies are those of the 2xx answers received within the run (autocannon); requests still in flight when a run ends are not counted, which flatters the rows capped by the write spacing (at c64 most requests were still queued).',
        `Boot storm rows: exactly ${options.stormSize} registrations for a scope nobody asked for before. With the installation looked up (the sandbox default, no GITHUB_INSTALLATION_ID) the first one costs three GitHub calls; with GITHUB_INSTALLATION_ID set, two. After that, the scope costs one registration-token call per ${(3600 - 900) / 60} minutes (tokens live an hour and are refreshed with 15 minutes left).`,
        ...notes,
      ],
    },
    rows,
    processes,
    targets,
  );
  const out = path.resolve(options.out);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, report);
  process.stdout.write(`${report}\nWritten to ${path.relative(process.cwd(), out) || out}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
