import express from 'express';
import type { FleetView as AutoscalerFleetView, PoolView as AutoscalerPoolView, RowView } from '#autoscaler';
import {
  callerOf,
  createAuthMiddleware,
  createErrorMiddleware,
  createIdTokenVerifier,
  HttpError,
} from '#shared';
import type { FakeComputeApi, FakeMig } from '#fakes/compute-api';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import { captureLogs } from '#test-support/log-capture';
import { addTemplates, PROJECT, startCanary, STATUS_ACCOUNT } from './harness.js';

/** The audience of the stand-in autoscaler's identity tokens. */
export const STUB_AUDIENCE = 'https://autoscaler-stub.example.run.app';

/**
 * A row of the reaper's join of VMs and runners, as the autoscaler is adding it to `GET /fleet` (its
 * `FleetRow`): what the page renders when present.
 */
export interface JoinRow {
  state: RowView['state'];
  mig: string | null;
  migIndex: number | null;
  instance: string | null;
  instanceId: string | null;
  zone: string | null;
  currentAction: string | null;
  instanceStatus: string | null;
  keep: boolean | null;
  runner: {
    id: number;
    name: string;
    status: string;
    busy: boolean;
    labels: string[];
    version: string | null;
  } | null;
  extraRunners: unknown[];
  firstSeenAt: number;
  noRunnerSince: number | null;
  noRunnerRuns: number;
  idleSince: number | null;
  busyWhenLastOnline: boolean;
  offlineRuns: number;
  vmGoneSince: number | null;
  /** As the autoscaler's join (describe-fleet.ts RowView) reports them. */
  status: string | null;
  ageSeconds: number;
  idleSeconds: number | null;
  noRunnerSeconds: number | null;
}

/** The fleet view of today's autoscaler, plus the join and the reaper's decisions being added to it. */
export type FleetViewWithJoin = Omit<AutoscalerFleetView, 'pools'> & {
  pools: Array<
    Omit<AutoscalerPoolView, 'rows' | 'reaperDecisions' | 'minIdle' | 'reaper' | 'joinedAt'> & {
      rows: JoinRow[];
      reaperDecisions: Array<Record<string, unknown>>;
    }
  >;
};

const CPU_LABELS = ['self-hosted', 'linux', 'x64', 'cpu'];
const GPU_LABELS = ['self-hosted', 'linux', 'x64', 'gpu'];
const migUrl = (mig: FakeMig) =>
  `projects/${PROJECT.projectId}/${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}`;

/** A fleet in Compute: two pools, a canary rollout in gh-cpu, VMs that run jobs, boot, and are being created. */
export interface FleetWorld {
  migs: { cpu: FakeMig; cpuEast: FakeMig; gpuA: FakeMig };
  /** `GET /fleet` as the autoscaler would answer it for this world now. */
  view(): FleetViewWithJoin;
}

/** Builds the world in `compute` (project, MIGs, templates, VMs) and the matching fleet view. */
export function buildFleetWorld(compute: FakeComputeApi, now: () => number, hostile = false): FleetWorld {
  compute.addProject(PROJECT);
  const project = PROJECT.projectId;
  const migs = {
    cpu: compute.addMig({ project, region: 'us-central1', name: 'gh-cpu' }),
    cpuEast: compute.addMig({ project, zone: 'us-east1-b', name: 'gh-cpu-east' }),
    gpuA: compute.addMig({ project, zone: 'us-central1-a', name: 'gh-gpu-a' }),
  };
  const urls = addTemplates(compute, Object.values(migs));
  // Two stable VMs first, then the canary: the MIG fills the canary version with the next VM.
  compute.addInstance({ project, zone: 'us-central1-a', name: 'gh-cpu-8812001', mig: migs.cpu });
  compute.addInstance({ project, zone: 'us-central1-b', name: 'gh-cpu-8812002', mig: migs.cpu });
  startCanary(migs.cpu, urls);
  compute.addInstance({ project, zone: 'us-central1-c', name: 'gh-cpu-8812003', mig: migs.cpu });
  compute.addInstance({ project, zone: 'us-east1-b', name: 'gh-cpu-8812004', mig: migs.cpuEast });
  compute.setCurrentAction(migs.cpuEast, 'gh-cpu-8812004', 'CREATING');
  compute.getInstance(project, 'us-east1-b', 'gh-cpu-8812004')!.status = 'PROVISIONING';
  compute.addInstance({ project, zone: 'us-central1-a', name: 'gh-gpu-7001', mig: migs.gpuA });

  const idOf = (zone: string, name: string) => compute.getInstance(project, zone, name)?.id ?? null;
  const minutes = (n: number) => now() - n * 60_000;
  const row = (
    mig: FakeMig,
    migIndex: number,
    zone: string,
    instance: string,
    state: JoinRow['state'],
    runner: JoinRow['runner'],
    age: number,
  ): JoinRow => ({
    state,
    mig: migUrl(mig),
    migIndex,
    instance,
    instanceId: idOf(zone, instance),
    zone,
    currentAction: state === 'creating' ? 'CREATING' : 'NONE',
    instanceStatus: state === 'creating' ? null : 'RUNNING',
    keep: false,
    runner,
    extraRunners: [],
    firstSeenAt: minutes(age),
    noRunnerSince: runner ? null : minutes(age),
    noRunnerRuns: runner ? 0 : 1,
    idleSince: runner && !runner.busy ? minutes(2) : null,
    busyWhenLastOnline: runner?.busy ?? false,
    offlineRuns: 0,
    vmGoneSince: null,
    status: state === 'creating' ? null : 'RUNNING',
    ageSeconds: age * 60,
    idleSeconds: runner && !runner.busy ? 120 : null,
    noRunnerSeconds: runner ? null : age * 60,
  });
  const runner = (
    id: number,
    zone: string,
    name: string,
    busy: boolean,
    labels: string[],
    version: string,
  ) => ({
    id,
    name: hostile && id === 41 ? '<script>alert("runner")</script>' : name,
    status: 'online',
    busy,
    labels: [...labels, `gce-instance-id-${idOf(zone, name) ?? '0'}`],
    version,
  });

  const iso = (msAgo: number) => new Date(now() - msAgo).toISOString();
  return {
    migs,
    view: () => ({
      generatedAt: new Date(now()).toISOString(),
      pools: [
        {
          name: 'linux-cpu',
          labels: CPU_LABELS,
          maxRunners: 50,
          inUse: 4,
          migs: [
            { mig: migUrl(migs.cpu), targetSize: 3, listedAt: iso(20_000), shortage: null },
            { mig: migUrl(migs.cpuEast), targetSize: 1, listedAt: iso(20_000), shortage: null },
          ],
          queuedJobs: 2,
          scaleUpBlockedReason: null,
          runnerVersion: null,
          queuedWithoutCapacity: [
            { jobId: 31_415_926_535, repository: 'my-org/app', queuedAt: iso(95_000), outcome: 'failed' },
          ],
          recentDecisions: [
            {
              at: iso(300_000),
              pool: 'linux-cpu',
              jobId: 31_415_926_001,
              instance: 'gh-cpu-8812001',
              outcome: 'created',
              mig: migUrl(migs.cpu),
              source: 'webhook',
            },
            {
              at: iso(240_000),
              pool: 'linux-cpu',
              jobId: 31_415_926_002,
              instance: 'gh-cpu-8812002',
              outcome: 'created',
              mig: migUrl(migs.cpu),
              source: 'webhook',
            },
            {
              at: iso(120_000),
              pool: 'linux-cpu',
              jobId: 31_415_926_004,
              instance: 'gh-cpu-8812004',
              outcome: 'created',
              mig: migUrl(migs.cpuEast),
              reason: 'gh-cpu: ZONE_RESOURCE_POOL_EXHAUSTED',
              source: 'reconcile',
            },
            {
              at: iso(95_000),
              pool: 'linux-cpu',
              jobId: 31_415_926_535,
              instance: 'gh-cpu-31415926535',
              outcome: 'failed',
              reason: 'Compute Engine: backend unavailable',
              source: 'webhook',
            },
          ],
          rows: [
            row(
              migs.cpu,
              0,
              'us-central1-a',
              'gh-cpu-8812001',
              'busy',
              runner(41, 'us-central1-a', 'gh-cpu-8812001', true, CPU_LABELS, '2.329.0'),
              14,
            ),
            row(
              migs.cpu,
              0,
              'us-central1-b',
              'gh-cpu-8812002',
              'idle',
              runner(42, 'us-central1-b', 'gh-cpu-8812002', false, CPU_LABELS, '2.329.0'),
              9,
            ),
            row(migs.cpu, 0, 'us-central1-c', 'gh-cpu-8812003', 'booting', null, 1),
            row(migs.cpuEast, 1, 'us-east1-b', 'gh-cpu-8812004', 'creating', null, 2),
          ],
          reaperDecisions: [
            {
              at: iso(600_000),
              pool: 'linux-cpu',
              kind: 'idle',
              action: 'remove-runner-then-vm',
              outcome: 'deleted',
              instance: 'gh-cpu-8811990',
              instanceId: '1234567890123456789',
              mig: migUrl(migs.cpu),
              runnerId: 39,
              runnerName: 'gh-cpu-8811990',
              reason: 'idle for 6 minutes beyond minIdle 0, nothing queued',
            },
          ],
        },
        {
          name: 'linux-gpu',
          labels: GPU_LABELS,
          maxRunners: 4,
          inUse: 1,
          migs: [{ mig: migUrl(migs.gpuA), targetSize: 1, listedAt: iso(20_000), shortage: null }],
          queuedJobs: 0,
          scaleUpBlockedReason: null,
          runnerVersion: null,
          queuedWithoutCapacity: [],
          recentDecisions: [
            {
              at: iso(1_800_000),
              pool: 'linux-gpu',
              jobId: 31_415_900_001,
              instance: 'gh-gpu-7001',
              outcome: 'created',
              mig: migUrl(migs.gpuA),
              source: 'webhook',
            },
          ],
          rows: [
            row(
              migs.gpuA,
              0,
              'us-central1-a',
              'gh-gpu-7001',
              'busy',
              runner(51, 'us-central1-a', 'gh-gpu-7001', true, GPU_LABELS, '2.330.0'),
              31,
            ),
          ],
          reaperDecisions: [],
        },
      ],
      deliveries: {
        failed: [
          {
            at: iso(95_000),
            guid: '9f1c2a7e-5b3d-11f0-8a1e-2f4c1b0e7d11',
            jobId: 31_415_926_535,
            status: 503,
            reason: 'no MIG could create the VM',
          },
        ],
        redelivered: [
          {
            at: iso(30_000),
            guid: '9f1c2a7e-5b3d-11f0-8a1e-2f4c1b0e7d11',
            deliveryId: 12_345_678_901,
            jobId: 31_415_926_535,
          },
        ],
      },
      runnerReleases: { fetchedAt: iso(600_000), error: null },
    }),
  };
}

/**
 * A stand-in for the autoscaler's `GET /fleet`: the same auth (a Google identity token for its audience,
 * verified against `google`'s certificates, from the status service's account only), answering `view()`.
 */
export async function startFleetStub(
  google: FakeGoogleIssuer,
  view: () => unknown,
): Promise<ServedApp & { reads: () => number }> {
  const logs = captureLogs();
  let reads = 0;
  const app = express();
  app.get(
    '/fleet',
    createAuthMiddleware(createIdTokenVerifier({ audiences: [STUB_AUDIENCE], certsUrl: google.certsUrl })),
    (_req, res) => {
      if (callerOf(res).email !== STATUS_ACCOUNT)
        throw new HttpError(403, 'this caller may not use GET /fleet');
      reads += 1;
      res.json(view());
    },
  );
  app.use(createErrorMiddleware(logs.logger));
  const served = await serveApp(app);
  return { ...served, reads: () => reads };
}
