/**
 * The autoscaler's rows of `npm run bench`: the built autoscaler runs as a child process (configured from
 * its environment, Compute credentials from a fake metadata server, as on Cloud Run and as `npm run soak`
 * starts it) against a fresh fake GitHub, fake Compute Engine and fake Google issuer per row.
 *
 * - a burst: `stormSize` (1000; `--quick` 200) jobs queued at once for one pool, each a signed
 *   `workflow_job` delivery from the fake GitHub: how long until every VM was requested from Compute
 *   (createInstances accepted), the webhook's answer times, and Compute calls (batched: tens, not 1000);
 * - a redelivery sweep: N failed deliveries in the fake GitHub's delivery log (dropped on the way), then one
 *   `POST /reconcile` as Cloud Scheduler calls it: its time, its GitHub calls, the deliveries it redelivered.
 */
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeMig } from '#fakes/compute-api';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { startAutoscalerProcess } from '#sandbox/autoscaler-process';
import { latencyStats } from '#sandbox/demo/summary';
import { log, sleep } from './bench-support.js';
import type { BenchOptions } from './parse-bench-options.js';
import type { LoadRow, TargetRow } from './render-report.js';

const PROJECT = { projectId: 'runners-bench', projectNumber: '135792468024' } as const;
const AUDIENCE = 'https://autoscaler.bench.example.run.app';
const SCHEDULER = `scheduler@${PROJECT.projectId}.iam.gserviceaccount.com`;
const SECRET = 'bench-webhook-secret-0123456789';
const LABELS = ['self-hosted', 'linux', 'x64', 'cpu'];
const REPO = 'my-org/app';

/** Compute calls a burst of 1000 queued deliveries may cost (batched by BATCH_WINDOW_MS). */
export const BURST_COMPUTE_CALLS_TARGET = 50;

interface World {
  github: FakeGitHub;
  compute: FakeComputeApi;
  issuer: FakeGoogleIssuer;
  mig: FakeMig;
  url: string;
}

/** Fakes, one pool of one regional MIG, and the built autoscaler as a child process with the defaults. */
async function withAutoscaler<T>(maxRunners: number, body: (world: World) => Promise<T>): Promise<T> {
  const [github, compute, issuer] = await Promise.all([
    startFakeGitHub(),
    // VMs are requested, never booted: the row measures the autoscaler, not a fleet.
    startFakeComputeApi({ bootDelayMs: Infinity, deletionDelayMs: 0 }),
    startFakeGoogleIssuer(),
  ]);
  const cleanups: Array<() => Promise<void>> = [
    () => Promise.all([github.close(), compute.close(), issuer.close()]).then(() => {}),
  ];
  try {
    github.addOrg('my-org', { runnerGroups: ['linux'] });
    github.addRepo(REPO);
    github.addInstallation({
      account: 'my-org',
      permissions: { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' },
    });
    compute.addProject(PROJECT);
    const mig = compute.addMig({ project: PROJECT.projectId, region: 'us-central1', name: 'gh-cpu' });
    const pools = {
      pools: [
        {
          name: 'linux-cpu',
          scopes: ['my-org'],
          labels: LABELS,
          migs: [`projects/${PROJECT.projectId}/regions/us-central1/instanceGroupManagers/gh-cpu`],
          runnerScope: 'my-org',
          runnerGroup: 'linux',
          maxRunners,
          instanceNamePrefix: 'gh-cpu',
        },
      ],
    };
    const autoscaler = await startAutoscalerProcess({
      issuer,
      project: PROJECT,
      instanceId: '4000000000000000007',
      env: {
        AUTH_AUDIENCE: AUDIENCE,
        ID_TOKEN_CERTS_URL: issuer.certsUrl,
        GITHUB_API_URL: github.baseUrl,
        GITHUB_APP_ID: String(github.app.id),
        GITHUB_APP_PRIVATE_KEY: github.app.privateKeyPkcs1Pem,
        GITHUB_WEBHOOK_SECRET: SECRET,
        POOLS: JSON.stringify(pools),
        COMPUTE_API_ENDPOINT: compute.url,
        RECONCILE_CALLERS: SCHEDULER,
        // BATCH_WINDOW_MS and MAX_REDELIVERIES_PER_RUN keep their defaults: the rows measure those.
      },
    });
    cleanups.push(() => autoscaler.close());
    const url = autoscaler.url;
    github.setWebhook({ url: `${url}/webhook`, secret: SECRET });
    return await body({ github, compute, issuer, mig, url });
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}

/** A row of the load table from webhook answer times (ms) and the time the whole thing took. */
function loadOf(answersMs: number[], totalMs: number, statuses: number[]): LoadRow['load'] {
  const stats = latencyStats(answersMs);
  const statusCounts: Record<string, number> = {};
  for (const status of statuses) statusCounts[String(status)] = (statusCounts[String(status)] ?? 0) + 1;
  return {
    requests: answersMs.length,
    durationSeconds: totalMs / 1000,
    requestsPerSecond: (answersMs.length * 1000) / Math.max(1, totalMs),
    p50: stats.p50,
    p99: stats.p99,
    errors: statuses.filter((s) => s === 0).length,
    non2xx: statuses.filter((s) => s !== 0 && (s < 200 || s >= 300)).length,
    statusCounts,
  };
}

/** What the burst row measured, besides its load figures. */
export interface BurstFigures {
  deliveries: number;
  /** From the first delivery sent until the MIG listed every requested VM. */
  allRequestedMs: number;
  computeCalls: number;
  createInstancesCalls: number;
}

async function burstRow(size: number): Promise<{ row: LoadRow; figures: BurstFigures }> {
  return withAutoscaler(size + 100, async ({ github, compute, mig }) => {
    // Warm up the autoscaler's clients (App JWT, Compute token, the first MIG read) with one job.
    github.queueJob({ repository: REPO, labels: LABELS });
    await github.deliveriesSettled();
    const before = mig.members.size;
    const callsBefore = compute.controls.calls.length;
    const createsBefore = compute.controls.callsTo('POST', /\/createInstances$/).length;
    const sentBefore = github.deliveries.length;

    const start = performance.now();
    let allRequestedMs = Number.NaN;
    const watch = setInterval(() => {
      if (Number.isNaN(allRequestedMs) && mig.members.size >= before + size)
        allRequestedMs = performance.now() - start;
    }, 5);
    try {
      for (let i = 0; i < size; i += 1) github.queueJob({ repository: REPO, labels: LABELS });
      await github.deliveriesSettled();
      const deadline = performance.now() + 60_000;
      while (Number.isNaN(allRequestedMs) && performance.now() < deadline) await sleep(5);
    } finally {
      clearInterval(watch);
    }
    const totalMs = performance.now() - start;
    const sent = github.deliveries.slice(sentBefore);
    const figures: BurstFigures = {
      deliveries: size,
      allRequestedMs,
      computeCalls: compute.controls.calls.length - callsBefore,
      createInstancesCalls: compute.controls.callsTo('POST', /\/createInstances$/).length - createsBefore,
    };
    const requested = Number.isFinite(allRequestedMs)
      ? `every VM requested after ${allRequestedMs.toFixed(0)} ms`
      : `only ${mig.members.size - before} of ${size} VMs requested within a minute`;
    return {
      figures,
      row: {
        id: 'autoscaler/queued-burst',
        scenario: `autoscaler: ${size} queued deliveries at once, one pool (${requested}; ${figures.createInstancesCalls} createInstances calls); upstream = Compute`,
        connections: size,
        load: loadOf(
          sent.map((d) => d.duration * 1000),
          Number.isFinite(allRequestedMs) ? allRequestedMs : totalMs,
          sent.map((d) => d.status_code),
        ),
        upstreamCalls: figures.computeCalls,
      },
    };
  });
}

async function sweepRow(failed: number): Promise<LoadRow> {
  return withAutoscaler(failed + 100, async ({ github, issuer, url }) => {
    github.dropNextDeliveries(failed);
    for (let i = 0; i < failed; i += 1) github.queueJob({ repository: REPO, labels: LABELS });
    await github.deliveriesSettled();
    const callsBefore = github.controls.calls.length;
    const token = issuer.mintIdentityToken({ audience: AUDIENCE, email: SCHEDULER });
    const start = performance.now();
    const answer = await fetch(`${url}/reconcile`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(120_000),
    });
    const body = (await answer.json()) as { deliveries?: { redelivered?: unknown[] } };
    const ms = performance.now() - start;
    const githubCalls = github.controls.calls.length - callsBefore;
    await github.deliveriesSettled();
    const redelivered = body.deliveries?.redelivered?.length ?? 0;
    return {
      id: 'autoscaler/redelivery-sweep',
      scenario: `autoscaler: POST /reconcile with ${failed} failed deliveries in the log (${redelivered} redelivered, MAX_REDELIVERIES_PER_RUN default); upstream = GitHub`,
      connections: 1,
      load: loadOf([ms], ms, [answer.status]),
      upstreamCalls: githubCalls,
    };
  });
}

/** The autoscaler's rows (a burst of `stormSize` deliveries, a redelivery sweep) and what they let be checked. */
export async function autoscalerRows(
  options: BenchOptions,
): Promise<{ rows: LoadRow[]; burst: BurstFigures; notes: string[] }> {
  log(`autoscaler: ${options.stormSize} queued deliveries at once`);
  const burst = await burstRow(options.stormSize);
  const failed = options.quick ? 20 : 100;
  log(`autoscaler: a redelivery sweep over ${failed} failed deliveries`);
  const sweep = await sweepRow(failed);
  const notes = [
    `autoscaler rows: the built autoscaler as a child process with its defaults (BATCH_WINDOW_MS 1000, MAX_REDELIVERIES_PER_RUN 50) against the fakes; p50/p99 of the burst are the webhook's answer times as the fake GitHub measured them, its Req/s is deliveries over the time until every VM was requested.`,
  ];
  return { rows: [burst.row, sweep], burst: burst.figures, notes };
}

/** The burst's target: Compute calls for `stormSize` queued deliveries. */
export function autoscalerTargets(burst: BurstFigures): TargetRow[] {
  return [
    {
      target: `Compute calls for ${burst.deliveries} queued deliveries of one pool ≤ ${BURST_COMPUTE_CALLS_TARGET}`,
      measured: `${burst.computeCalls} for ${burst.deliveries} (${burst.createInstancesCalls} createInstances), every VM requested after ${Number.isFinite(burst.allRequestedMs) ? `${burst.allRequestedMs.toFixed(0)} ms` : 'more than a minute'}`,
      met: burst.computeCalls <= BURST_COMPUTE_CALLS_TARGET && Number.isFinite(burst.allRequestedMs),
    },
  ];
}
