import { setTimeout as sleep } from 'node:timers/promises';
import type { FleetView, ReapKind } from '#autoscaler';
import type { FakeMig } from '../fakes/compute-api.js';
import type { RecordedCall } from '../fakes/fake-server.js';
import type { FakeHookDelivery } from '../fakes/github-api.js';
import type { AutoscaledVmFate } from '../autoscaled-vm.js';
import type { RunnerKind, Sandbox } from '../sandbox.js';
import { RUNNER_LABELS, SANDBOX_ORG, SANDBOX_PROJECT, SANDBOX_REGION } from '../sandbox.js';
import { formatMeasureTable, random as seededRandom, reaperTotals } from '../soak/fleet-simulation.js';
import { githubCallKind, latencyStats } from './summary.js';

/** How many jobs arrive, how, and what goes wrong on the way. */
export interface WorkloadOptions {
  jobs: number;
  bursts: number;
  burstEveryMs: number;
  /** Share of webhook deliveries the fake GitHub drops, in percent. */
  dropPercent: number;
  /** Share of VMs that never register a runner, in percent (the sandbox is started with {@link brokenVmFates}). */
  brokenPercent: number;
  /** Cloud Scheduler's period. */
  reconcileEveryMs: number;
  /** How long after the last burst the fleet may take to run every job and shrink to zero. */
  drainTimeoutMs: number;
  seed: number;
}

/**
 * The fates of the VMs the autoscaler creates, for the sandbox's `autoscaledVmFate`: of the first n VMs to
 * boot, ⌊n × percent / 100⌋ never register (the 34th, 67th, 100th… at 3 %), so a share is broken for sure
 * however the VMs' boots interleave; the rest work.
 */
export function brokenVmFates(percent: number): () => AutoscaledVmFate {
  let booted = 0;
  return () => {
    booted += 1;
    return Math.floor((booted * percent) / 100) > Math.floor(((booted - 1) * percent) / 100)
      ? 'never-registers'
      : 'works';
  };
}

/** The zone out of capacity: the postsubmit pool's first MIG's zone, and one of the presubmit pool's first MIG's two. */
export const FULL_ZONE = `${SANDBOX_REGION}-b`;

/**
 * The label sets jobs ask for, with their weights: each pool's full set, and subsets of it (a job matches a
 * pool when every label of the job is among the pool's).
 */
export const WORKLOAD_LABELS: ReadonlyArray<{ pool: RunnerKind; labels: string[]; weight: number }> = [
  { pool: 'presubmit', labels: RUNNER_LABELS.presubmit, weight: 4 },
  { pool: 'presubmit', labels: ['self-hosted', 'presubmit'], weight: 2 },
  { pool: 'postsubmit', labels: RUNNER_LABELS.postsubmit, weight: 3 },
  { pool: 'postsubmit', labels: ['self-hosted', 'linux', 'postsubmit'], weight: 1 },
];

/** Counters the progress line reads while the workload runs. */
export interface WorkloadProgress {
  queued: number;
  started: number;
  completed: number;
  /** VMs in the pools' MIGs now (members, CREATING ones included), and the most there were. */
  vms: number;
  peakVms: number;
  dropped: number;
  reconciliations: number;
  phase: 'arriving' | 'draining' | 'done';
}

export const createWorkloadProgress = (): WorkloadProgress => ({
  queued: 0,
  started: 0,
  completed: 0,
  vms: 0,
  peakVms: 0,
  dropped: 0,
  reconciliations: 0,
  phase: 'arriving',
});

/** What `npm run demo` (the workload) prints, as a table or with `--json`. */
export interface WorkloadReport {
  /** No job lost and no VM left. */
  ok: boolean;
  durationSeconds: number;
  jobs: { queued: number; run: number; lost: number; byPool: Record<string, number> };
  /** From queued (the demo queued it) to in progress (a runner took it), seconds. */
  waitSeconds: { p50: number; p99: number; max: number };
  vms: {
    /** Names listed in createInstances calls (a VM stuck in a full zone and moved counts twice). */
    requested: number;
    /** VMs that booted, by MIG. */
    created: number;
    createdByMig: Record<string, number>;
    peak: number;
    /** Members of the pools' MIGs (any state) and VMs alive at the end: must be 0. */
    left: number;
    /** VMs made to boot without ever registering a runner (`--broken-percent`): the reaper's to delete. */
    neverRegistered: number;
    /** Autoscaled VMs whose life failed at a step (the step and the service's answer). */
    failed: Array<{ vm: string; error: string }>;
  };
  /** VMs stuck CREATING in the full zone that the reconciler moved to their pool's next MIG. */
  stockout: { zone: string; movedToNextMig: number };
  calls: {
    /** GitHub REST calls of the autoscaler and the token proxy (the runner stand-in's are apart). */
    github: { total: number; perJob: number; byKind: Record<string, number> };
    /** Compute Engine calls of the autoscaler and the instance deleter. */
    compute: { total: number; perJob: number; createInstances: number };
  };
  deliveries: {
    /** Delivery attempts the fake GitHub made, redeliveries included. */
    attempts: number;
    dropped: number;
    /** Dropped deliveries whose event was later delivered by a redelivery the reconciler asked for. */
    recovered: number;
    redeliveries: number;
    /** Events whose every attempt failed, at the end. */
    stillFailed: number;
  };
  reconciliations: { runs: number; problems: string[] };
  reaped: Record<ReapKind, number>;
  idleVmMinutes: number;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

function pick<T extends { weight: number }>(rand: () => number, items: readonly T[]): T {
  const total = items.reduce((sum, item) => sum + item.weight, 0);
  let at = rand() * total;
  for (const item of items) {
    at -= item.weight;
    if (at < 0) return item;
  }
  return items.at(-1)!;
}

/** Dropped events (by guid) that a later attempt delivered, and events no attempt delivered. */
export function deliveryOutcomes(deliveries: readonly FakeHookDelivery[]): WorkloadReport['deliveries'] {
  const byGuid = new Map<string, FakeHookDelivery[]>();
  for (const d of deliveries) byGuid.set(d.guid, [...(byGuid.get(d.guid) ?? []), d]);
  let recovered = 0;
  let stillFailed = 0;
  for (const attempts of byGuid.values()) {
    const ok = attempts.some((d) => d.status === 'OK');
    if (!ok) stillFailed += 1;
    else if (attempts.some((d) => d.dropped)) recovered += 1;
  }
  return {
    attempts: deliveries.length,
    dropped: deliveries.filter((d) => d.dropped).length,
    recovered,
    redeliveries: deliveries.filter((d) => d.redelivery).length,
    stillFailed,
  };
}

/** GitHub REST calls by kind, the autoscaler's own kinds (delivery log, jobs API) named too. */
export function workloadCallKind(call: Pick<RecordedCall, 'method' | 'path'>): string {
  if (call.path === '/app/hook/deliveries') return 'delivery log';
  if (/^\/app\/hook\/deliveries\/\d+\/attempts$/.test(call.path)) return 'redelivery';
  if (/^\/app\/hook\/deliveries\/\d+$/.test(call.path)) return 'delivery get';
  if (/\/actions\/jobs\/\d+$/.test(call.path)) return 'job get';
  return githubCallKind(call);
}

/**
 * Runs the workload on a sandbox started with `secondMigs`: queues `jobs` jobs in bursts, with a share of
 * the deliveries dropped and {@link FULL_ZONE} out of capacity, plays Cloud
 * Scheduler (POST /reconcile with the scheduler's identity token from its metadata server), and waits
 * until every job ran and every MIG is empty again (or the drain timeout). Reads every figure at the fakes
 * and the autoscaler's `GET /fleet`.
 */
export async function runWorkload(
  sandbox: Sandbox,
  options: WorkloadOptions,
  progress: WorkloadProgress,
): Promise<WorkloadReport> {
  const started = performance.now();
  const { github, compute } = sandbox;
  const rand = seededRandom(options.seed);
  github.deliverySettings.dropShare = options.dropPercent / 100;
  github.deliverySettings.random = seededRandom(options.seed + 1);
  // No VM starts in the full zone: its members stay CREATING with ZONE_RESOURCE_POOL_EXHAUSTED, the reconciler
  // passes the MIG over for new VMs and moves them to the pool's next MIG after STUCK_CREATING_SECONDS.
  compute.setZoneCapacity(SANDBOX_PROJECT.projectId, FULL_ZONE, { remaining: 0 });

  const migs: FakeMig[] = [
    ...Object.values(sandbox.migs),
    ...Object.values(sandbox.secondMigs).filter((m): m is FakeMig => m !== undefined),
  ];
  const members = () => migs.reduce((sum, mig) => sum + mig.members.size, 0);
  const fleetEmpty = () => migs.every((mig) => mig.members.size === 0 && mig.targetSize === 0);
  const createdByMig: Record<string, number> = {};
  const unsubscribe = compute.onInstanceCreated((_instance, mig) => {
    if (mig) createdByMig[mig.name] = (createdByMig[mig.name] ?? 0) + 1;
  });

  // Jobs: when each was queued and first seen taken by a runner.
  const queuedAt = new Map<number, number>();
  const poolOf = new Map<number, RunnerKind>();
  const waits: number[] = [];
  const waiting = new Set<number>();
  const running = new Set<number>();
  const watch = setInterval(() => {
    const now = performance.now();
    for (const id of waiting) {
      const status = github.getJob(id)?.status;
      if (status === 'queued') continue;
      waiting.delete(id);
      running.add(id);
      waits.push((now - queuedAt.get(id)!) / 1000);
      progress.started += 1;
    }
    for (const id of running) {
      if (github.getJob(id)?.status !== 'completed') continue;
      running.delete(id);
      progress.completed += 1;
    }
    progress.vms = members();
    progress.peakVms = Math.max(progress.peakVms, progress.vms);
    progress.dropped = github.deliveries.filter((d) => d.dropped).length;
  }, 100);

  // Cloud Scheduler: POST /reconcile with an identity token of its service account, one run at a time.
  const schedulerToken = async (): Promise<string> => {
    const url = `http://${sandbox.schedulerMetadataHost}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(sandbox.autoscalerUrl)}&format=full`;
    const answer = await fetch(url, {
      headers: { 'Metadata-Flavor': 'Google' },
      signal: AbortSignal.timeout(10_000),
    });
    if (!answer.ok) throw new Error(`the scheduler's metadata server answered ${answer.status}`);
    return answer.text();
  };
  const problems: string[] = [];
  let moved = 0;
  const reconcile = async (): Promise<void> => {
    try {
      const answer = await fetch(`${sandbox.autoscalerUrl}/reconcile`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await schedulerToken()}` },
        signal: AbortSignal.timeout(60_000),
      });
      const body = (await answer.json()) as {
        problems?: string[];
        pools?: Record<string, { moved?: unknown[] }>;
      };
      if (answer.status !== 200) problems.push(`POST /reconcile answered ${answer.status}`);
      problems.push(...(body.problems ?? []));
      for (const pool of Object.values(body.pools ?? {})) moved += pool.moved?.length ?? 0;
    } catch (error) {
      problems.push(`POST /reconcile: ${(error as Error).message}`);
    }
    progress.reconciliations += 1;
  };
  let scheduling = true;
  const scheduler = (async () => {
    while (scheduling) {
      await sleep(options.reconcileEveryMs);
      if (scheduling) await reconcile();
    }
  })();

  try {
    // Arrivals: `bursts` bursts, the jobs spread evenly over them.
    for (let burst = 0; burst < options.bursts; burst += 1) {
      if (burst > 0) await sleep(options.burstEveryMs);
      const size =
        Math.floor(((burst + 1) * options.jobs) / options.bursts) -
        Math.floor((burst * options.jobs) / options.bursts);
      for (let i = 0; i < size; i += 1) {
        const { pool, labels } = pick(rand, WORKLOAD_LABELS);
        const job = github.queueJob({ repository: `${SANDBOX_ORG}/app`, labels });
        queuedAt.set(job.id, performance.now());
        poolOf.set(job.id, pool);
        waiting.add(job.id);
        progress.queued += 1;
      }
    }

    // Drain: every job run, every VM gone (VMs in the full zone wait out STUCK_CREATING_SECONDS first).
    progress.phase = 'draining';
    const deadline = performance.now() + options.drainTimeoutMs;
    const drained = () => waiting.size === 0 && running.size === 0 && fleetEmpty();
    while (!drained() && performance.now() < deadline) await sleep(200);
    // Last runs once the fleet is empty, until every event is delivered (a redelivery can be dropped too):
    // any VM a late redelivery brings (a spare: its job ran elsewhere) must leave again.
    scheduling = false;
    await scheduler;
    for (let run = 0; run < 5 && performance.now() < deadline; run += 1) {
      await github.deliveriesSettled();
      if (run > 0 && deliveryOutcomes(github.deliveries).stillFailed === 0) break;
      await reconcile();
    }
    await github.deliveriesSettled();
    while (!drained() && performance.now() < deadline) await sleep(200);
    const lastWait = new AbortController();
    await Promise.race([
      sandbox.autoscaledVmsSettled(),
      sleep(Math.max(0, deadline - performance.now()), undefined, { signal: lastWait.signal }).catch(
        () => {},
      ),
    ]);
    lastWait.abort();
  } finally {
    scheduling = false;
    clearInterval(watch);
    unsubscribe();
    await scheduler;
  }
  progress.phase = 'done';

  const fleetAnswer = await fetch(`${sandbox.autoscalerUrl}/fleet`, {
    headers: { authorization: `Bearer ${await schedulerToken()}` },
    signal: AbortSignal.timeout(30_000),
  });
  if (fleetAnswer.status !== 200) throw new Error(`GET /fleet answered ${fleetAnswer.status}`);
  const totals = reaperTotals((await fleetAnswer.json()) as FleetView);

  const jobs = [...queuedAt.keys()].map((id) => github.getJob(id)!);
  const run = jobs.filter((job) => job.status === 'completed' && job.conclusion === 'success').length;
  const byPool: Record<string, number> = {};
  for (const pool of poolOf.values()) byPool[pool] = (byPool[pool] ?? 0) + 1;
  const githubCalls = github.controls.calls.filter((c) => !c.path.startsWith('/_sandbox/'));
  const byKind: Record<string, number> = {};
  for (const call of githubCalls) byKind[workloadCallKind(call)] = (byKind[workloadCallKind(call)] ?? 0) + 1;
  const creates = compute.controls.callsTo('POST', /\/createInstances$/);
  const requested = creates.reduce(
    (sum, c) => sum + ((c.body as { instances?: unknown[] } | undefined)?.instances?.length ?? 0),
    0,
  );
  const wait = latencyStats(waits);
  const left = members() + sandbox.vms().length;
  const lost = jobs.length - run;
  const perJob = (n: number) => round(n / Math.max(1, jobs.length), 2);
  return {
    ok: lost === 0 && left === 0,
    durationSeconds: round((performance.now() - started) / 1000),
    jobs: { queued: jobs.length, run, lost, byPool },
    waitSeconds: { p50: round(wait.p50), p99: round(wait.p99), max: round(wait.max) },
    vms: {
      requested,
      created: Object.values(createdByMig).reduce((a, b) => a + b, 0),
      createdByMig,
      peak: progress.peakVms,
      left,
      neverRegistered: sandbox.autoscaledVms().filter((o) => o.fate === 'never-registers').length,
      failed: sandbox
        .autoscaledVms()
        .filter((o) => o.error !== undefined)
        .map((o) => ({ vm: o.name, error: o.error! })),
    },
    stockout: { zone: FULL_ZONE, movedToNextMig: moved },
    calls: {
      github: { total: githubCalls.length, perJob: perJob(githubCalls.length), byKind },
      compute: {
        total: compute.controls.calls.length,
        perJob: perJob(compute.controls.calls.length),
        createInstances: creates.length,
      },
    },
    deliveries: deliveryOutcomes(github.deliveries),
    reconciliations: { runs: progress.reconciliations, problems },
    reaped: totals.reaped,
    idleVmMinutes: totals.idleVmMinutes,
  };
}

/** The report as a Markdown table, for the console and the closing note. */
export function formatWorkloadReport(report: WorkloadReport): string {
  const pools = Object.entries(report.jobs.byPool)
    .map(([pool, n]) => `${pool} ${n}`)
    .join(', ');
  const byMig = Object.entries(report.vms.createdByMig)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([mig, n]) => `${mig} ${n}`)
    .join(', ');
  const reaped = Object.entries(report.reaped)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  const rows: Array<[string, string | number]> = [
    ['jobs queued (by pool)', `${report.jobs.queued} (${pools})`],
    ['jobs run / lost', `${report.jobs.run} / ${report.jobs.lost}`],
    [
      'job wait, queued → in progress: p50 / p99 / max (s)',
      `${report.waitSeconds.p50} / ${report.waitSeconds.p99} / ${report.waitSeconds.max}`,
    ],
    [
      'VMs requested / created (peak at once)',
      `${report.vms.requested} / ${report.vms.created} (${report.vms.peak})`,
    ],
    ['VMs created by MIG', byMig],
    [
      `zone ${report.stockout.zone} out of capacity: VMs stuck there moved to the next MIG`,
      report.stockout.movedToNextMig,
    ],
    ['VMs left at the end', report.vms.left],
    ['VMs whose life failed at a step', report.vms.failed.length],
    ['VMs that booted but never registered a runner (injected)', report.vms.neverRegistered],
    ['GitHub calls: total (per job)', `${report.calls.github.total} (${report.calls.github.perJob})`],
    [
      'Compute calls: total (per job), of them createInstances',
      `${report.calls.compute.total} (${report.calls.compute.perJob}), ${report.calls.compute.createInstances}`,
    ],
    [
      'deliveries: attempts / dropped attempts / events recovered by redelivery / events still failed',
      `${report.deliveries.attempts} / ${report.deliveries.dropped} / ${report.deliveries.recovered} / ${report.deliveries.stillFailed}`,
    ],
    ['redeliveries the reconciler asked for', report.deliveries.redeliveries],
    [
      'reconciliations (problems)',
      `${report.reconciliations.runs} (${report.reconciliations.problems.length})`,
    ],
    ['VMs and runners reaped, by reason', reaped],
    ['idle VM-minutes (what the fleet wasted)', report.idleVmMinutes],
    ['duration (s)', report.durationSeconds],
  ];
  return formatMeasureTable(rows);
}
