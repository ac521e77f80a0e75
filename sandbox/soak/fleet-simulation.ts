import { setTimeout as sleep } from 'node:timers/promises';
import { INSTANCE_ID_LABEL_PREFIX } from '#autoscaler';
import type { FleetView, ReapKind } from '#autoscaler';
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi, FakeInstance, FakeMig } from '#fakes/compute-api';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub, FakeJob } from '#fakes/github-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';

/** What becomes of a VM once it runs. */
export type VmFate = 'works' | 'never-registers' | 'dies-mid-job';

/** The world's pace and its faults. Times are on the simulation's clock, in ms. */
export interface SoakOptions {
  /** How long the whole run lasts. */
  durationMs: number;
  /** Jobs arrive during the first `arrivalsMs`; the rest drains (every timeout must fit in it). */
  arrivalsMs: number;
  /** One step of the world: VMs boot, register, take jobs, finish them, die. */
  stepMs: number;
  /** Cloud Scheduler's period: `POST /reconcile` this often. */
  reconcileEveryMs: number;
  /** Jobs per minute, on average (Poisson), 70 % CPU and 30 % GPU. */
  jobsPerMinute: number;
  /** How long a job runs: uniform between these. */
  jobMs: [number, number];
  /** Shares of VMs that never register, and that die in the middle of their job. */
  neverRegisters: number;
  diesMidJob: number;
  /** Share of jobs cancelled while still queued (their VM, once up, has nothing to do). */
  cancelled: number;
  /** A matrix of this many CPU jobs queued at `atMs` and cancelled a step later: idle VMs to reap. */
  cancelledBurst: { atMs: number; jobs: number };
  /** When GitHub fails the job of a runner that went away (it waits for the runner to come back). */
  lostJobFailsAfterMs: number;
  /** When (after the start) a VM with an idle runner vanishes, leaving its runner behind. */
  vanishAtMs: number[];
  /** Share of webhook deliveries lost on the way (redelivered by the reconciler). */
  dropShare: number;
  bootTimeoutSeconds: number;
  idleTimeoutSeconds: number;
  /** The CPU pool's warm pool. */
  cpuMinIdle: number;
  seed: number;
  /** `simulated`: the autoscaler's clock is injected and steps take no real time; `real`: steps sleep. */
  clock: 'simulated' | 'real';
  /** Progress lines (optional). */
  onProgress?: (line: string) => void;
}

/** 30 simulated minutes: 18 of random jobs, 12 to drain; timeouts short enough to run out in the drain. */
export const SIMULATED_SOAK: Omit<SoakOptions, 'seed' | 'clock'> = {
  durationMs: 30 * 60_000,
  arrivalsMs: 18 * 60_000,
  stepMs: 15_000,
  reconcileEveryMs: 60_000,
  jobsPerMinute: 3,
  jobMs: [60_000, 4 * 60_000],
  neverRegisters: 0.1,
  diesMidJob: 0.1,
  cancelled: 0.1,
  cancelledBurst: { atMs: 18 * 60_000, jobs: 6 },
  lostJobFailsAfterMs: 4 * 60_000,
  vanishAtMs: [6 * 60_000, 13 * 60_000],
  dropShare: 0.05,
  bootTimeoutSeconds: 180,
  idleTimeoutSeconds: 120,
  cpuMinIdle: 1,
};

/**
 * About 5 real minutes (`npm run soak`): 2.5 of jobs, the rest to drain, with the shortest timeouts the
 * configuration takes (boot 60 s, idle 30 s) and Cloud Scheduler every 10 s.
 */
export const REAL_SOAK: Omit<SoakOptions, 'seed' | 'clock'> = {
  durationMs: 5 * 60_000,
  arrivalsMs: 150_000,
  stepMs: 2_000,
  reconcileEveryMs: 10_000,
  jobsPerMinute: 12,
  jobMs: [10_000, 30_000],
  neverRegisters: 0.1,
  diesMidJob: 0.1,
  cancelled: 0.1,
  cancelledBurst: { atMs: 150_000, jobs: 6 },
  lostJobFailsAfterMs: 40_000,
  vanishAtMs: [45_000, 90_000],
  dropShare: 0.05,
  bootTimeoutSeconds: 60,
  idleTimeoutSeconds: 30,
  cpuMinIdle: 1,
};

/** What the autoscaler under test is: in this process or a child, at `url`. */
export interface SoakTarget {
  url: string;
  close(): Promise<void>;
}

/** The fakes the target is pointed at, and the variables that point it there. */
export interface SoakWorld {
  github: FakeGitHub;
  compute: FakeComputeApi;
  issuer: FakeGoogleIssuer;
  env: Record<string, string>;
  /** The simulation's clock (ms since the epoch): what an in-process autoscaler must use as `now`. */
  now(): number;
}

/** What the reaper did over every pool of a fleet view (`GET /fleet`): VMs and runners reaped by reason, idle VM-minutes. */
export function reaperTotals(fleet: FleetView): { reaped: Record<ReapKind, number>; idleVmMinutes: number } {
  const reaped: Record<ReapKind, number> = { unregistered: 0, idle: 0, lost: 0, 'runner-left': 0 };
  let idleVmMinutes = 0;
  for (const pool of fleet.pools) {
    for (const kind of Object.keys(reaped) as ReapKind[]) reaped[kind] += pool.reaper.reaped[kind];
    idleVmMinutes += pool.reaper.idleVmMinutes;
  }
  return { reaped, idleVmMinutes: Math.round(idleVmMinutes * 100) / 100 };
}

/** Starts the autoscaler against the world: in this process (the test) or as a child (`npm run soak`). */
export type StartSoakTarget = (world: SoakWorld) => Promise<SoakTarget>;

/** The soak's numbers. */
export interface SoakReport {
  simulatedMinutes: number;
  realSeconds: number;
  jobs: {
    queued: number;
    succeeded: number;
    cancelled: number;
    failedWithTheirVm: number;
    unfinished: number;
  };
  vms: {
    created: number;
    warm: number;
    deletedThemselves: number;
    neverRegistered: number;
    diedMidJob: number;
    vanished: number;
  };
  reaped: { unregistered: number; idle: number; lost: number; runnerLeft: number };
  /** Jobs running on a healthy runner whose VM was deleted by someone else than itself: must be none. */
  killedJobs: string[];
  /** At the end: what should not be there (a VM beyond the warm pool or without a runner; a stray runner). */
  leftovers: { vms: string[]; runners: string[] };
  idleVmMinutes: number;
  reconciliations: number;
  reconcileProblems: string[];
  calls: { github: number; compute: number };
}

export const SOAK_PROJECT = { projectId: 'runners-soak', projectNumber: '246813579024' } as const;
export const SOAK_AUDIENCE = 'https://autoscaler.soak.example.run.app';
const SCHEDULER = 'scheduler@runners-soak.iam.gserviceaccount.com';
const SECRET = 'soak-webhook-secret-0123456789';
const CPU = ['self-hosted', 'linux', 'x64', 'cpu'];
const GPU = ['self-hosted', 'linux', 'x64', 'gpu'];
const ORG = { kind: 'org', org: 'my-org' } as const;

/** A small deterministic generator (mulberry32): the same seed, the same world. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function poissonCount(rand: () => number, mean: number): number {
  const limit = Math.exp(-mean);
  let count = 0;
  for (let p = rand(); p > limit; p *= rand()) count += 1;
  return count;
}

interface SimVm {
  instance: FakeInstance;
  mig: FakeMig;
  fate: VmFate;
  runnerId: number | undefined;
  /** Set when it has left by itself (after its job, or vanishing). */
  leaving: boolean;
  /** When its runner went offline mid-job. */
  diedAt: number | undefined;
  gone: boolean;
}

interface RunningJob {
  job: FakeJob;
  vm: SimVm;
  startedAt: number;
  durationMs: number;
}

function poolsDocument(options: SoakOptions): string {
  const timeouts = {
    bootTimeoutSeconds: options.bootTimeoutSeconds,
    idleTimeoutSeconds: options.idleTimeoutSeconds,
  };
  const project = SOAK_PROJECT.projectId;
  return JSON.stringify({
    pools: [
      {
        name: 'linux-cpu',
        scopes: ['my-org'],
        labels: CPU,
        migs: [
          `projects/${project}/regions/us-central1/instanceGroupManagers/gh-cpu`,
          `projects/${project}/zones/us-east1-b/instanceGroupManagers/gh-cpu-east`,
        ],
        runnerScope: 'my-org',
        runnerGroup: 'linux',
        maxRunners: 100,
        instanceNamePrefix: 'gh-cpu',
        minIdle: options.cpuMinIdle,
        ...timeouts,
      },
      {
        name: 'linux-gpu',
        scopes: ['my-org'],
        labels: GPU,
        migs: [
          `projects/${project}/zones/us-central1-a/instanceGroupManagers/gh-gpu-a`,
          `projects/${project}/zones/us-central1-b/instanceGroupManagers/gh-gpu-b`,
        ],
        runnerScope: 'my-org',
        runnerGroup: 'linux',
        maxRunners: 4,
        instanceNamePrefix: 'gh-gpu',
        ...timeouts,
      },
    ],
  });
}

/**
 * Runs a fleet against the autoscaler for `durationMs`: jobs arrive at random and GitHub hands them to any
 * idle runner that fits; VMs boot within a step and register an ephemeral runner (bound to them by the
 * instance-id label, as the token proxy does), run the job they get and delete themselves, except the ones
 * that never register and the ones that die mid-job; now and then a VM vanishes and leaves its runner
 * behind. Cloud Scheduler is played by a `POST /reconcile` every `reconcileEveryMs`. At the end it lists
 * what should not be there and any job the reaper killed.
 */
export async function runSoak(options: SoakOptions, startTarget: StartSoakTarget): Promise<SoakReport> {
  const rand = random(options.seed);
  const realStart = performance.now();
  const simStart = Date.now();
  let elapsed = 0;
  const now = (): number => (options.clock === 'real' ? Date.now() : simStart + elapsed);

  const [github, compute, issuer] = await Promise.all([
    startFakeGitHub(),
    startFakeComputeApi({ bootDelayMs: Infinity, deletionDelayMs: 0 }),
    startFakeGoogleIssuer(),
  ]);
  github.addOrg('my-org', { runnerGroups: ['linux'] });
  github.addRepo('my-org/app');
  github.addInstallation({
    account: 'my-org',
    permissions: { organization_self_hosted_runners: 'write', actions: 'read', metadata: 'read' },
  });
  github.deliverySettings.dropShare = options.dropShare;
  github.deliverySettings.random = rand;
  compute.addProject(SOAK_PROJECT);
  const project = SOAK_PROJECT.projectId;
  const migs = [
    compute.addMig({ project, region: 'us-central1', name: 'gh-cpu' }),
    compute.addMig({ project, zone: 'us-east1-b', name: 'gh-cpu-east' }),
    compute.addMig({ project, zone: 'us-central1-a', name: 'gh-gpu-a' }),
    compute.addMig({ project, zone: 'us-central1-b', name: 'gh-gpu-b' }),
  ];

  const env: Record<string, string> = {
    AUTH_AUDIENCE: SOAK_AUDIENCE,
    ID_TOKEN_CERTS_URL: issuer.certsUrl,
    GITHUB_API_URL: github.baseUrl,
    RUNNER_RELEASES_API_URL: github.baseUrl,
    GITHUB_APP_ID: String(github.app.id),
    GITHUB_APP_PRIVATE_KEY: github.app.privateKeyPkcs1Pem,
    GITHUB_WEBHOOK_SECRET: SECRET,
    POOLS: poolsDocument(options),
    COMPUTE_API_ENDPOINT: compute.url,
    RECONCILE_CALLERS: SCHEDULER,
    FLEET_VIEWERS: SCHEDULER,
    BATCH_WINDOW_MS: '100',
    REAPER_MAX_DELETE_PERCENT: '50',
  };
  const target = await startTarget({ github, compute, issuer, env, now });
  github.setWebhook({ url: `${target.url}/webhook`, secret: SECRET });

  const report: SoakReport = {
    simulatedMinutes: options.durationMs / 60_000,
    realSeconds: 0,
    jobs: { queued: 0, succeeded: 0, cancelled: 0, failedWithTheirVm: 0, unfinished: 0 },
    vms: { created: 0, warm: 0, deletedThemselves: 0, neverRegistered: 0, diedMidJob: 0, vanished: 0 },
    reaped: { unregistered: 0, idle: 0, lost: 0, runnerLeft: 0 },
    killedJobs: [],
    leftovers: { vms: [], runners: [] },
    idleVmMinutes: 0,
    reconciliations: 0,
    reconcileProblems: [],
    calls: { github: 0, compute: 0 },
  };
  const vms = new Map<string, SimVm>();
  const running = new Map<number, RunningJob>();

  compute.onInstanceCreated((instance, mig) => {
    if (!mig) return;
    const roll = rand();
    const fate: VmFate =
      roll < options.neverRegisters
        ? 'never-registers'
        : roll < options.neverRegisters + options.diesMidJob
          ? 'dies-mid-job'
          : 'works';
    const vm: SimVm = {
      instance,
      mig,
      fate,
      runnerId: undefined,
      leaving: false,
      diedAt: undefined,
      gone: false,
    };
    vms.set(instance.name, vm);
    report.vms.created += 1;
    if (/-w[a-z0-9]{10}$/.test(instance.name)) report.vms.warm += 1;
    if (fate === 'never-registers') {
      report.vms.neverRegistered += 1;
      return;
    }
    const labels = mig.name.startsWith('gh-gpu') ? GPU : CPU;
    vm.runnerId = github.addRunner(ORG, {
      name: instance.name,
      labels: [...labels, `${INSTANCE_ID_LABEL_PREFIX}${instance.id}`],
      ephemeral: true,
    }).id;
  });
  // A VM deleted by anyone but itself while its runner runs a job killed that job.
  compute.onInstanceDeleted((instance) => {
    const vm = vms.get(instance.name);
    if (!vm) return;
    vm.gone = true;
    if (vm.leaving || vm.runnerId === undefined) return;
    const runner = github.listRunners(ORG).find((r) => r.id === vm.runnerId);
    if (runner && runner.status === 'online' && runner.busy) report.killedJobs.push(instance.name);
  });

  /** The VM leaves through its MIG, as it would through the instance deleter. */
  async function deleteItself(vm: SimVm): Promise<void> {
    vm.leaving = true;
    const member = vm.mig.members.get(vm.instance.name);
    if (!member || member.currentAction === 'DELETING') return;
    const response = await fetch(
      `${compute.url}/compute/v1/projects/${project}/${vm.mig.scope}/${vm.mig.location}/instanceGroupManagers/${vm.mig.name}/deleteInstances`,
      {
        method: 'POST',
        headers: { authorization: 'Bearer ya29.soak-vm', 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [`zones/${member.zone}/instances/${vm.instance.name}`] }),
      },
    );
    if (response.status !== 200) throw new Error(`a VM could not delete itself: ${response.status}`);
  }

  const token = () => issuer.mintIdentityToken({ audience: SOAK_AUDIENCE, email: SCHEDULER });
  async function reconcile(): Promise<void> {
    const response = await fetch(`${target.url}/reconcile`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token()}` },
    });
    const body = (await response.json()) as { problems?: string[] };
    report.reconciliations += 1;
    report.reconcileProblems.push(...(body.problems ?? []));
  }

  const vanishAt = [...options.vanishAtMs];
  const toCancel: number[] = [];
  let nextReconcile = 0;
  try {
    for (elapsed = 0; elapsed <= options.durationMs; elapsed += options.stepMs) {
      if (options.clock === 'real' && elapsed > 0) await sleep(options.stepMs);
      const at = now();
      // Jobs marked for cancelling a step ago go, if no runner has taken them yet.
      for (const id of toCancel.splice(0)) {
        if (github.getJob(id)?.status !== 'queued') continue;
        github.completeJob(id, 'cancelled');
        report.jobs.cancelled += 1;
      }
      if (elapsed < options.arrivalsMs) {
        const arrivals = poissonCount(rand, (options.jobsPerMinute * options.stepMs) / 60_000);
        for (let i = 0; i < arrivals; i += 1) {
          const job = github.queueJob({ repository: 'my-org/app', labels: rand() < 0.7 ? CPU : GPU });
          report.jobs.queued += 1;
          if (rand() < options.cancelled) toCancel.push(job.id);
        }
      }
      const { cancelledBurst } = options;
      if (elapsed >= cancelledBurst.atMs && elapsed < cancelledBurst.atMs + options.stepMs) {
        for (let i = 0; i < cancelledBurst.jobs; i += 1) {
          toCancel.push(github.queueJob({ repository: 'my-org/app', labels: CPU }).id);
          report.jobs.queued += 1;
        }
      }
      compute.completeBoots();

      for (const job of github.listJobs()) {
        if (job.status !== 'in_progress' || running.has(job.id)) continue;
        const vm = [...vms.values()].find((v) => v.runnerId === job.runner_id);
        if (!vm) continue;
        const [min, max] = options.jobMs;
        running.set(job.id, { job, vm, startedAt: at, durationMs: min + rand() * (max - min) });
      }
      for (const [id, run] of running) {
        const { vm } = run;
        if (
          vm.fate === 'dies-mid-job' &&
          vm.diedAt === undefined &&
          at >= run.startedAt + run.durationMs / 2
        ) {
          vm.diedAt = at;
          report.vms.diedMidJob += 1;
          github.setRunner(vm.runnerId!, { status: 'offline' }); // GitHub still thinks it is busy
        }
        if (vm.diedAt !== undefined) {
          if (at >= vm.diedAt + options.lostJobFailsAfterMs) {
            github.completeJob(id, 'failure');
            report.jobs.failedWithTheirVm += 1;
            running.delete(id);
          }
        } else if (at >= run.startedAt + run.durationMs) {
          github.completeJob(id);
          report.jobs.succeeded += 1;
          running.delete(id);
          report.vms.deletedThemselves += 1;
          await deleteItself(vm);
        }
      }
      // A due vanishing waits for a VM whose runner is online and idle.
      if (vanishAt.length > 0 && elapsed >= vanishAt[0]!) {
        const idleRunners = new Set(
          github
            .listRunners(ORG)
            .filter((r) => r.status === 'online' && !r.busy)
            .map((r) => r.id),
        );
        const idle = [...vms.values()].find(
          (v) =>
            v.fate === 'works' &&
            !v.gone &&
            !v.leaving &&
            v.runnerId !== undefined &&
            idleRunners.has(v.runnerId),
        );
        if (idle) {
          vanishAt.shift();
          report.vms.vanished += 1;
          await deleteItself(idle);
          github.setRunner(idle.runnerId!, { status: 'offline' });
        }
      }
      await github.deliveriesSettled();
      if (elapsed >= nextReconcile) {
        nextReconcile += options.reconcileEveryMs;
        await reconcile();
        await github.deliveriesSettled();
      }
      options.onProgress?.(
        `${(elapsed / 60_000).toFixed(2)} min: ${report.jobs.queued} jobs, ${running.size} running, ${migs.reduce(
          (n, m) => n + m.members.size,
          0,
        )} VMs, ${github.listRunners(ORG).length} runners`,
      );
    }

    // The end: what is still there that should not be.
    const fleetResponse = await fetch(`${target.url}/fleet`, {
      headers: { authorization: `Bearer ${token()}` },
    });
    const fleet = (await fleetResponse.json()) as FleetView;
    const totals = reaperTotals(fleet);
    const { unregistered, idle, lost, 'runner-left': runnerLeft } = totals.reaped;
    report.reaped = { unregistered, idle, lost, runnerLeft };
    report.idleVmMinutes = totals.idleVmMinutes;
    const runners = github.listRunners(ORG);
    const onlineIdle = new Map(runners.filter((r) => r.status === 'online' && !r.busy).map((r) => [r.id, r]));
    const memberIds = new Set<string>();
    for (const mig of migs) {
      const warmAllowed = mig.name === 'gh-cpu' ? options.cpuMinIdle : 0;
      let idleHere = 0;
      for (const member of mig.members.values()) {
        if (member.currentAction === 'DELETING') continue;
        if (member.instance) memberIds.add(member.instance.id);
        const vm = vms.get(member.name);
        const ready = vm?.runnerId !== undefined && onlineIdle.has(vm.runnerId);
        if (ready && idleHere < warmAllowed) idleHere += 1;
        else
          report.leftovers.vms.push(
            `${member.name} (${member.currentAction}, ${ready ? 'idle beyond minIdle' : 'no idle runner'})`,
          );
      }
    }
    for (const runner of runners) {
      const bound = runner.labels.find((l) => l.name.startsWith(INSTANCE_ID_LABEL_PREFIX));
      const id = bound?.name.slice(INSTANCE_ID_LABEL_PREFIX.length);
      if (runner.status !== 'online' || id === undefined || !memberIds.has(id)) {
        report.leftovers.runners.push(`${runner.name} (${runner.status}${runner.busy ? ', busy' : ''})`);
      }
    }
    report.jobs.unfinished = github.listJobs().filter((j) => j.status !== 'completed').length;
    report.calls = { github: github.controls.calls.length, compute: compute.controls.calls.length };
    report.realSeconds = Math.round((performance.now() - realStart) / 100) / 10;
    return report;
  } finally {
    await github.deliveriesSettled().catch(() => {});
    await target.close();
    await Promise.all([github.close(), compute.close(), issuer.close()]);
  }
}

/** The report as a Markdown table, for the console and the closing note. */
export function formatSoakReport(report: SoakReport): string {
  const rows: Array<[string, string | number]> = [
    ['minutes on the world clock (real seconds)', `${report.simulatedMinutes} (${report.realSeconds})`],
    [
      'jobs queued / succeeded / cancelled while queued / failed with their VM / unfinished',
      `${report.jobs.queued} / ${report.jobs.succeeded} / ${report.jobs.cancelled} / ${report.jobs.failedWithTheirVm} / ${report.jobs.unfinished}`,
    ],
    ['VMs created (of them warm-pool VMs)', `${report.vms.created} (${report.vms.warm})`],
    ['VMs that deleted themselves after their job', report.vms.deletedThemselves],
    [
      'injected: VMs that never registered / died mid-job / vanished',
      `${report.vms.neverRegistered} / ${report.vms.diedMidJob} / ${report.vms.vanished}`,
    ],
    ['VMs reaped: no runner past boot timeout', report.reaped.unregistered],
    ['VMs reaped: idle past idle timeout', report.reaped.idle],
    ['VMs reaped: died mid-job', report.reaped.lost],
    ['runners reaped: left by a vanished VM', report.reaped.runnerLeft],
    ['jobs killed by the reaper', report.killedJobs.length],
    [
      'left at the end that should not be: VMs / runners',
      `${report.leftovers.vms.length} / ${report.leftovers.runners.length}`,
    ],
    ['idle VM-minutes (what the fleet wasted)', report.idleVmMinutes],
    ['reconciliations (with problems)', `${report.reconciliations} (${report.reconcileProblems.length})`],
    ['calls to GitHub / Compute (fakes)', `${report.calls.github} / ${report.calls.compute}`],
  ];
  return formatMeasureTable(rows);
}

/** A two-column Markdown table (measure, value) with the labels padded to one width: the soak's and the demo's. */
export function formatMeasureTable(rows: ReadonlyArray<readonly [string, string | number]>): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return [
    `| ${'measure'.padEnd(width)} | value |`,
    `| ${'-'.repeat(width)} | ----- |`,
    ...rows.map(([label, value]) => `| ${label.padEnd(width)} | ${value} |`),
  ].join('\n');
}
