import { SANDBOX_ORG, SANDBOX_PROJECT, SERVICE_ACCOUNTS } from '#sandbox/sandbox';
import type { Sandbox } from '#sandbox/sandbox';
import {
  bearer,
  CONCURRENCIES,
  drain,
  forRepo,
  githubCallsBetween,
  hex,
  log,
  mintPool,
  postsubmitPool,
  registerBody,
  remember,
  rotation,
  timedLoad,
  withCeiling,
} from './bench-support.js';
import type { LogAudit, VmIdentity } from './bench-support.js';
import type { BenchOptions } from './parse-bench-options.js';
import type { LoadRow } from './render-report.js';
import type { LoadResult } from './run-load.js';

/** Which configuration a row measures: a stable id for finding it, a label for the report. */
export interface RowVariant {
  id: string;
  label: string;
}

/** `/register` rows at each concurrency, one fresh repository scope per row (so each starts cold). */
export async function registerRows(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
  { id, label }: RowVariant,
  ceiling: Map<number, LoadResult>,
  drainMs: number | undefined,
): Promise<LoadRow[]> {
  const pool = rotation(postsubmitPool(sandbox, audit, 256));
  const rows: LoadRow[] = [];
  for (const connections of CONCURRENCIES) {
    const repo = `bench-${label.replace(/[^a-z0-9]+/g, '-')}-c${connections}-${hex()}`;
    sandbox.github.addRepo(`${SANDBOX_ORG}/${repo}`);
    const { load, from, to, cpuMs } = await timedLoad(
      sandbox.proxyUrl,
      connections,
      {
        method: 'POST',
        path: '/register',
        body: registerBody(`${SANDBOX_ORG}/${repo}`),
        next: () => bearer(pool.next()),
      },
      options,
      undefined,
      sandbox.servicePids.tokenProxy,
    );
    const upstreamCalls = githubCallsBetween(sandbox, from, to, forRepo(repo));
    log(
      `/register ${label} c${connections}: ${load.requestsPerSecond.toFixed(0)} req/s, ${upstreamCalls} GitHub calls`,
    );
    rows.push({
      id: `register/${id}/c${connections}`,
      scenario: `/register, ${label}`,
      connections,
      load,
      upstreamCalls,
      ...(cpuMs === undefined ? {} : { cpuMs }),
      ...withCeiling(ceiling, connections),
    });
    // Requests autocannon gave up on at the end of the run are still queued for GitHub; let them finish
    // so they do not slow the next row.
    if (drainMs !== undefined) await drain(sandbox, forRepo(repo), drainMs, 60_000);
  }
  return rows;
}

/** A boot storm: exactly `stormSize` (1000) registrations for one cold scope at concurrency 64. */
export async function stormRow(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
  ceiling: Map<number, LoadResult>,
  { id, label }: RowVariant,
): Promise<LoadRow> {
  const pool = rotation(postsubmitPool(sandbox, audit, 256));
  const repo = `bench-storm-${hex()}`;
  sandbox.github.addRepo(`${SANDBOX_ORG}/${repo}`);
  const { load, from, to, cpuMs } = await timedLoad(
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
    sandbox.servicePids.tokenProxy,
  );
  const calls = sandbox.github.controls.calls.filter(
    (call) => call.time >= from && call.time <= to && forRepo(repo)(call),
  );
  const kinds = calls.map((call) => call.path.replace(/^.*\//, '')).join(', ');
  log(`boot storm, ${label}: ${load.requests} registrations, ${calls.length} GitHub calls (${kinds})`);
  return {
    id: `storm/${id}`,
    scenario: `/register, reuse on: boot storm of ${options.stormSize} for one cold scope, ${label} (GitHub: ${kinds})`,
    connections: 64,
    load,
    upstreamCalls: calls.length,
    ...(cpuMs === undefined ? {} : { cpuMs }),
    ...withCeiling(ceiling, 64),
  };
}

/**
 * `count` fresh presubmit VMs (a JIT runner is named after its VM, so each needs its own) and one identity
 * token for each, in the same order.
 */
export function presubmitVmTokens(sandbox: Sandbox, audit: LogAudit, count: number): string[] {
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
  return tokens;
}

/** `/jitconfig` at concurrency 16: one presubmit VM per request, since a JIT runner is named after its VM. */
export async function jitRow(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
  { id, label }: RowVariant,
  expectedRps: number,
): Promise<{ row: LoadRow; wrapped: number; vms: number }> {
  const count = Math.ceil(expectedRps * options.durationSeconds * 1.5) + 64;
  const pool = rotation(presubmitVmTokens(sandbox, audit, count));
  const { load, from, to, cpuMs } = await timedLoad(
    sandbox.proxyUrl,
    16,
    { method: 'POST', path: '/jitconfig', body: registerBody(SANDBOX_ORG), next: () => bearer(pool.next()) },
    options,
    undefined,
    sandbox.servicePids.tokenProxy,
  );
  const upstreamCalls = githubCallsBetween(sandbox, from, to);
  log(`/jitconfig ${label}: ${load.requestsPerSecond.toFixed(0)} req/s, ${upstreamCalls} GitHub calls`);
  return {
    row: {
      id: `jit/${id}`,
      scenario: `/jitconfig, ${label}`,
      connections: 16,
      load,
      upstreamCalls,
      ...(cpuMs === undefined ? {} : { cpuMs }),
    },
    wrapped: pool.wrapped,
    vms: count,
  };
}
