import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startFakeComputeApi } from './fakes/compute-api.js';
import type { FakeComputeApi, FakeMig } from './fakes/compute-api.js';
import { DEFAULT_INSTALLATION_PERMISSIONS, startFakeGitHub } from './fakes/github-api.js';
import type { FakeGitHub } from './fakes/github-api.js';
import { startFakeGoogleIssuer } from './fakes/google-issuer.js';
import type { FakeGoogleIssuer } from './fakes/google-issuer.js';
import { startFakeIapIssuer } from './fakes/iap-issuer.js';
import type { FakeIapIssuer } from './fakes/iap-issuer.js';
import { startFakeMetadataServer } from './fakes/metadata-server.js';
import type { FakeMetadataServer } from './fakes/metadata-server.js';
import { SERVICE_ENTRY_POINTS } from '#entry-points';
import { runAutoscaledVm } from './autoscaled-vm.js';
import type { AutoscaledVmFate, AutoscaledVmOutcome } from './autoscaled-vm.js';
import { startIapFront } from './iap-front.js';
import {
  deleterRuntimeEnv,
  freePort,
  repoRoot as packageRoot,
  spawnNode,
  waitUntilAnswering,
} from './node-process.js';
import type { NodeProcess } from './node-process.js';

/** The project every simulated resource lives in. */
export const SANDBOX_PROJECT = { projectId: 'sandbox-project', projectNumber: 123456789012 } as const;
export const SANDBOX_ORG = 'my-org';
export const SANDBOX_REGION = 'us-central1';
/** The actions/runner release the sandbox's instance templates name (`github-runner-version`). */
export const SANDBOX_RUNNER_VERSION = '2.330.0';

/** The two kinds of runner VM: untrusted presubmit (runs pull-request code) and trusted postsubmit. */
export type RunnerKind = 'presubmit' | 'postsubmit';

export const SERVICE_ACCOUNTS: Readonly<Record<RunnerKind, string>> = {
  presubmit: `runner-presubmit@${SANDBOX_PROJECT.projectId}.iam.gserviceaccount.com`,
  postsubmit: `runner-postsubmit@${SANDBOX_PROJECT.projectId}.iam.gserviceaccount.com`,
};

export const RUNNER_LABELS: Readonly<Record<RunnerKind, string[]>> = {
  presubmit: ['self-hosted', 'linux', 'x64', 'presubmit'],
  postsubmit: ['self-hosted', 'linux', 'x64', 'postsubmit'],
};

/** The Cloud Scheduler job's service account: the one caller `POST /reconcile` accepts. */
export const SCHEDULER_SERVICE_ACCOUNT = `autoscaler-scheduler@${SANDBOX_PROJECT.projectId}.iam.gserviceaccount.com`;

/** The fleet status service's own account: the one reader of the autoscaler's `GET /fleet`. */
export const STATUS_SERVICE_ACCOUNT = `fleet-status@${SANDBOX_PROJECT.projectId}.iam.gserviceaccount.com`;
/** The audience of IAP's signed header for the status service (IAP on Cloud Run). */
export const STATUS_IAP_AUDIENCE = `/projects/${SANDBOX_PROJECT.projectNumber}/locations/${SANDBOX_REGION}/services/fleet-status`;
/** Who may see the status page: everyone of this Workspace domain (matched on the assertion's `hd`). */
export const STATUS_VIEWER_DOMAIN = 'example.com';
/** The person the sandbox's stand-in for IAP signs in. */
export const STATUS_VIEWER = `you@${STATUS_VIEWER_DOMAIN}`;

/** The events each kind of VM's runner may run (deploy/lib.sh's defaults for the two trust levels). */

export const ALLOWED_EVENTS: Readonly<Record<RunnerKind, string>> = {
  presubmit: 'pull_request,merge_group',
  postsubmit: 'push,schedule,workflow_dispatch',
};

/**
 * The caller policy the sandbox's token proxy runs with: each kind of VM may register only runners of its
 * own group and labels, and presubmit VMs get no registration tokens at all (jitOnly).
 */
export const SANDBOX_POLICY = {
  rules: (['presubmit', 'postsubmit'] as const).map((kind) => ({
    name: kind,
    callers: {
      serviceAccounts: [SERVICE_ACCOUNTS[kind]],
      projects: [SANDBOX_PROJECT.projectId],
      // The sandbox's own VMs (a random suffix) and the autoscaler's (`-<job id>`, `-<job id>-<attempt>`).
      instanceNames: [`match:gh-runner-${kind}-[a-z0-9]+(-[0-9]+)?`],
    },
    scopes: kind === 'presubmit' ? [SANDBOX_ORG] : [SANDBOX_ORG, `match:${SANDBOX_ORG}/.*`],
    runnerGroups: [kind],
    labels: RUNNER_LABELS[kind],
    defaultRunnerGroup: kind,
    defaultLabels: RUNNER_LABELS[kind],
    jitOnly: kind === 'presubmit',
  })),
};

/** One simulated runner VM: a Compute Engine instance in a MIG, with its own metadata server. */
export interface SandboxVm {
  kind: RunnerKind;
  name: string;
  zone: string;
  instanceId: string;
  /** `127.0.0.1:PORT`: the VM's `GCE_METADATA_HOST`. */
  metadataHost: string;
  metadata: FakeMetadataServer;
}

export interface SandboxOptions {
  /** Default 8080; 0 picks a free port. */
  proxyPort?: number;
  /** Default 8081; 0 picks a free port. Must differ from `proxyPort`. */
  deleterPort?: number;
  /**
   * The token proxy's caller policy, as its `POLICY` (inline JSON, or `open`) and `POLICY_FILE` variables;
   * {@link SANDBOX_POLICY} when neither is given. The proxy validates it and refuses to start with a bad one.
   */
  policy?: { POLICY?: string; POLICY_FILE?: string };
  /** Default 8082; 0 picks a free port. */
  autoscalerPort?: number;
  /** The fleet status service's port; default 0, a free port (`npm start` uses 8083). */
  statusPort?: number;
  /** The stand-in for IAP in front of it, for a browser; default 0, a free port (`npm start` uses 8084). */
  iapFrontPort?: number;
  /** How long the stand-in runner of an autoscaled VM runs its job; default 2000 ms. */
  jobMs?: number;
  /** An autoscaled VM whose runner gets no job within this long deletes itself; default 60 000 ms. */
  idleTimeoutMs?: number;
  /**
   * Settings every pool of `POOLS` gets besides its own, e.g. a short `bootTimeoutSeconds` (at least 60) so the
   * reaper deletes a VM that never registers within a demo. Default: the autoscaler's defaults.
   */
  poolSettings?: { bootTimeoutSeconds?: number; idleTimeoutSeconds?: number };
  /** What becomes of each VM the autoscaler creates, asked once as it boots; default: every one works. */
  autoscaledVmFate?: (name: string, kind: RunnerKind) => AutoscaledVmFate;
  /** VMs per MIG at start; default 2 each. */
  vms?: Partial<Record<RunnerKind, number>>;
  /** Latency the fake GitHub adds to each request, standing in for the real round trip. */
  githubLatencyMs?: number;
  /** How long a deleted instance lingers as DELETING in its MIG; default 1000 ms. */
  deletionDelayMs?: number;
  /**
   * Gives each pool a second MIG after its first, zonal in us-central1-c (`gh-runner-<kind>-c`): where the
   * autoscaler sends the VMs its first MIG cannot create (a zone out of capacity). Default: one MIG a pool.
   */
  secondMigs?: boolean;
  /**
   * Extra environment for both services (e.g. `LOG_LEVEL`, `TOKEN_REUSE_MIN_REMAINING_SECONDS`). Nothing
   * else of this process's environment reaches them: a `GITHUB_TOKEN` exported in the shell stays out.
   */
  serviceEnv?: Record<string, string>;
  /** Called with each line the services print. */
  onServiceLog?: (service: string, line: string) => void;
}

export interface Sandbox {
  issuer: FakeGoogleIssuer;
  github: FakeGitHub;
  compute: FakeComputeApi;
  proxyUrl: string;
  deleterUrl: string;
  autoscalerUrl: string;
  /** The fleet status service (`/status`, `/status.json`): only requests with an IAP assertion get in. */
  statusUrl: string;
  /**
   * A stand-in for IAP in front of the status service: it signs every request in as {@link STATUS_VIEWER}.
   * Open `{statusFrontUrl}/status` in a browser; `{statusFrontUrl}/_sandbox/iap-assertion` answers an assertion.
   */
  statusFrontUrl: string;
  /** The fake IAP signer whose keys the status service trusts. */
  iap: FakeIapIssuer;
  /** The webhook secret the fake GitHub signs deliveries to the autoscaler with. */
  webhookSecret: string;
  /** `127.0.0.1:PORT`: a metadata server that mints identity tokens for {@link SCHEDULER_SERVICE_ACCOUNT}. */
  schedulerMetadataHost: string;
  migs: Record<RunnerKind, FakeMig>;
  /** Each pool's second MIG, with {@link SandboxOptions.secondMigs}; empty otherwise. */
  secondMigs: Partial<Record<RunnerKind, FakeMig>>;
  /** How each VM the autoscaler created lived, once its life is over; in the order they ended. */
  autoscaledVms(): readonly AutoscaledVmOutcome[];
  /** Resolves once every autoscaled VM that has booted so far has ended its life. */
  autoscaledVmsSettled(): Promise<void>;
  /** The VMs that exist now (deleted ones drop out). */
  vms(): SandboxVm[];
  /** Process ids of the two services, for measuring them. */
  servicePids: { tokenProxy: number; instanceDeleter: number; autoscaler: number; fleetStatus: number };
  /**
   * Resolves when a service exits while the sandbox runs (it crashed, or something killed it); never
   * once {@link Sandbox.stop} has begun. The sandbox is then half there: stop it and say so.
   */
  serviceExit: Promise<ServiceExit>;
  /** Boots one more VM in a MIG, as the MIG would when it scales out. */
  addVm(kind: RunnerKind, attributes?: Record<string, string>): Promise<SandboxVm>;
  /**
   * A `RUNNER_DIR` for running `deploy/vm/` as `vm`: its `run.sh` and `config.sh` start the runner
   * stand-in (`sandbox/runner-standin/`) against the fake GitHub, keep the runner's state in this
   * directory and append the stand-in's JSON record to `runner-standin.jsonl` in it (unless
   * `RUNNER_STANDIN_LOG` says otherwise). Created on first use in a temporary directory; removed by `stop`.
   */
  runnerDir(vm: SandboxVm): string;
  stop(): Promise<void>;
}

/** A service of the sandbox that exited while the sandbox ran. */
export interface ServiceExit {
  service: 'token-proxy' | 'instance-deleter' | 'autoscaler' | 'fleet-status';
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines it printed. */
  output: string;
}

/** One paragraph saying which service of the sandbox exited, how, and what it printed last. */
export function describeServiceExit(exit: ServiceExit): string {
  const how = exit.signal ? `was killed (${exit.signal})` : `exited with status ${exit.code}`;
  const name = exit.service.replace('-', ' ');
  const last = exit.output.trim() === '' ? '' : ` Its last lines:\n${exit.output}`;
  return `the ${name} ${how} while the sandbox was running.${last}`;
}

/** `value` as one shell word: as is when it is safe, else single-quoted. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Thrown for a sandbox that cannot start, with a message saying what to do. */
export class SandboxError extends Error {
  override readonly name = 'SandboxError';
}

/** The repository root: the nearest folder above this file with a package.json (works from src or dist). */
export function repoRoot(): string {
  try {
    return packageRoot();
  } catch (error) {
    throw new SandboxError((error as Error).message);
  }
}

async function assertPortFree(port: number, variable: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new SandboxError(
          error.code === 'EADDRINUSE'
            ? `port ${port} is already in use: stop what uses it or set ${variable} to another port`
            : `cannot listen on port ${port}: ${error.code ?? error.message}`,
        ),
      ),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/**
 * Starts a built service the way production does (`node dist/.../main.js` with its environment), and waits
 * until it answers HTTP. A service that exits first is an error carrying what it printed.
 */
async function startService(
  name: string,
  entry: string,
  port: number,
  env: Record<string, string>,
  onLog: (service: string, line: string) => void,
): Promise<NodeProcess> {
  if (!fs.existsSync(entry)) {
    throw new SandboxError(`${entry} is missing: run \`npm run build\` first`);
  }
  const service = spawnNode(entry, env, (line) => onLog(name, line));
  try {
    await waitUntilAnswering(service, port);
    return service;
  } catch (error) {
    await service.stop(0);
    throw new SandboxError(`${name} ${(error as Error).message}`);
  }
}

/** The proxy's POLICY / POLICY_FILE: what the caller gave, or the sandbox's own policy. */
function policyEnv(policy: SandboxOptions['policy']): Record<string, string> {
  const given = Object.entries(policy ?? {}).filter(([, value]) => value !== undefined && value !== '');
  return given.length > 0 ? Object.fromEntries(given) : { POLICY: JSON.stringify(SANDBOX_POLICY) };
}

/**
 * Writes a runner directory whose `run.sh` and `config.sh` exec the stand-in's, with the stand-in pointed
 * at the fake GitHub, its state kept in `dir` and its JSON record in `dir`/runner-standin.jsonl.
 */
function writeRunnerDir(dir: string, standinDir: string, githubUrl: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const script of ['run.sh', 'config.sh']) {
    const wrapper = [
      '#!/usr/bin/env bash',
      `# Written by the sandbox: actions/runner's ${script}, played by the runner stand-in.`,
      `export SANDBOX_GITHUB_URL=${shellQuote(githubUrl)}`,
      `export RUNNER_STANDIN_STATE_DIR=${shellQuote(dir)}`,
      // The printed commands run a presubmit VM: its stand-in job is a pull request, which its rule allows.
      `export RUNNER_STANDIN_JOB_EVENT=\${RUNNER_STANDIN_JOB_EVENT-pull_request}`,
      `export RUNNER_STANDIN_LOG=\${RUNNER_STANDIN_LOG-${shellQuote(path.join(dir, 'runner-standin.jsonl'))}}`,
      `exec ${shellQuote(path.join(standinDir, script))} "$@"`,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, script), wrapper, { mode: 0o755 });
  }
}

function randomSuffix(): string {
  return crypto.randomBytes(3).toString('hex');
}

/**
 * Starts the whole system on 127.0.0.1: the emulated GitHub, Compute Engine and Google identity issuer, a
 * metadata server per simulated VM, and both services as child processes from `dist/`, configured exactly
 * as in production except that their endpoints and certificate URL point at the emulators.
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const proxyPort = options.proxyPort ?? 8080;
  const deleterPort = options.deleterPort ?? 8081;
  const autoscalerPort = options.autoscalerPort ?? 8082;
  const statusPort = options.statusPort ?? 0;
  const iapFrontPort = options.iapFrontPort ?? 0;
  if (proxyPort !== 0 && proxyPort === deleterPort) {
    throw new SandboxError(
      `the token proxy and the instance deleter cannot share port ${proxyPort}: give SANDBOX_DELETER_PORT another port`,
    );
  }
  if (autoscalerPort !== 0 && (autoscalerPort === proxyPort || autoscalerPort === deleterPort)) {
    throw new SandboxError(
      `the autoscaler cannot share port ${autoscalerPort} with another service: give SANDBOX_AUTOSCALER_PORT another port`,
    );
  }
  await assertPortFree(proxyPort, 'SANDBOX_PROXY_PORT');
  await assertPortFree(deleterPort, 'SANDBOX_DELETER_PORT');
  await assertPortFree(autoscalerPort, 'SANDBOX_AUTOSCALER_PORT');
  const taken = [proxyPort, deleterPort, autoscalerPort];
  for (const [port, variable] of [
    [statusPort, 'SANDBOX_STATUS_PORT'],
    [iapFrontPort, 'SANDBOX_IAP_PORT'],
  ] as const) {
    if (port !== 0 && taken.includes(port)) {
      throw new SandboxError(`port ${port} is given to two services: give ${variable} another port`);
    }
    if (port !== 0) taken.push(port);
    await assertPortFree(port, variable);
  }
  const root = repoRoot();
  const onLog = options.onServiceLog ?? (() => {});

  const cleanups: Array<() => Promise<void>> = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  };

  try {
    const issuer = await startFakeGoogleIssuer();
    cleanups.push(() => issuer.close());
    const iap = await startFakeIapIssuer();
    cleanups.push(() => iap.close());
    const github = await startFakeGitHub();
    cleanups.push(() => github.close());
    github.controls.latencyMs = options.githubLatencyMs ?? 0;
    github.addOrg(SANDBOX_ORG, { runnerGroups: ['presubmit', 'postsubmit'] });
    github.addRepo(`${SANDBOX_ORG}/app`);
    // The autoscaler reads workflow jobs too: Actions read, as docs/deploy.md sets up the App.
    github.addInstallation({
      account: SANDBOX_ORG,
      permissions: { ...DEFAULT_INSTALLATION_PERMISSIONS, actions: 'read' },
    });

    const compute = await startFakeComputeApi({ deletionDelayMs: options.deletionDelayMs ?? 1000 });
    cleanups.push(() => compute.close());
    compute.addProject(SANDBOX_PROJECT);
    // actions/runner's releases as the fake GitHub lists them, dated around now: the templates' release has
    // a newer one out for 10 days, so the status page and the reconciler count 20 days left of GitHub's 30.
    const releasedDaysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
    github.runnerReleases = [
      { version: '2.329.0', publishedAt: releasedDaysAgo(75) },
      { version: SANDBOX_RUNNER_VERSION, publishedAt: releasedDaysAgo(40) },
      { version: '2.331.0', publishedAt: releasedDaysAgo(10) },
    ];
    const migs: Record<RunnerKind, FakeMig> = {
      presubmit: compute.addMig({
        project: SANDBOX_PROJECT.projectId,
        region: SANDBOX_REGION,
        name: 'gh-runner-presubmit',
        autoscaler: { recommendedSize: null, mode: 'ONLY_SCALE_OUT' },
      }),
      postsubmit: compute.addMig({
        project: SANDBOX_PROJECT.projectId,
        zone: `${SANDBOX_REGION}-b`,
        name: 'gh-runner-postsubmit',
        autoscaler: { recommendedSize: null, mode: 'ONLY_SCALE_OUT' },
      }),
    };
    const secondMigs: Partial<Record<RunnerKind, FakeMig>> = {};
    for (const kind of options.secondMigs ? (['presubmit', 'postsubmit'] as const) : []) {
      secondMigs[kind] = compute.addMig({
        project: SANDBOX_PROJECT.projectId,
        zone: `${SANDBOX_REGION}-c`,
        name: `gh-runner-${kind}-c`,
      });
    }

    // Each MIG's instance template, with the runner release its VMs install (as deploy/instance-template.sh
    // writes it): a VM's runner connects to the fake GitHub with that version.
    for (const kind of ['presubmit', 'postsubmit'] as const) {
      compute.setInstanceTemplate(
        migs[kind],
        compute.addInstanceTemplate({
          project: SANDBOX_PROJECT.projectId,
          name: `gh-runner-${kind}-${SANDBOX_RUNNER_VERSION.replaceAll('.', '-')}`,
          metadata: { 'github-runner-version': SANDBOX_RUNNER_VERSION },
        }),
      );
    }
    /** The metadata items of the template a member of `kind`'s MIG runs (none when it has none). */
    const templateMetadata = (kind: RunnerKind, name: string): Record<string, string> => {
      const url = migs[kind].members.get(name)?.instanceTemplate ?? migs[kind].instanceTemplate;
      const template = url
        ? compute.getInstanceTemplate(SANDBOX_PROJECT.projectId, url.split('/').pop()!)
        : undefined;
      const items = (template?.properties.metadata as { items?: Array<{ key: string; value: string }> })
        ?.items;
      return Object.fromEntries((items ?? []).map((item) => [item.key, item.value]));
    };

    const proxyListenPort = proxyPort === 0 ? await freePort() : proxyPort;
    const deleterListenPort = deleterPort === 0 ? await freePort() : deleterPort;
    const autoscalerListenPort = autoscalerPort === 0 ? await freePort() : autoscalerPort;
    const statusListenPort = statusPort === 0 ? await freePort() : statusPort;
    const proxyUrl = `http://127.0.0.1:${proxyListenPort}`;
    const deleterUrl = `http://127.0.0.1:${deleterListenPort}`;
    const autoscalerUrl = `http://127.0.0.1:${autoscalerListenPort}`;
    const statusUrl = `http://127.0.0.1:${statusListenPort}`;

    // The deleter runs as its own service account: its Compute credentials come from a metadata server,
    // as on Cloud Run, through Application Default Credentials.
    const deleterIdentity = await startFakeMetadataServer({
      issuer,
      vm: {
        ...SANDBOX_PROJECT,
        zone: `${SANDBOX_REGION}-a`,
        instanceId: '4000000000000000001',
        instanceName: 'instance-deleter',
        serviceAccountEmail: `instance-deleter@${SANDBOX_PROJECT.projectId}.iam.gserviceaccount.com`,
        attributes: {},
      },
    });
    cleanups.push(() => deleterIdentity.close());
    // The autoscaler also reads Compute through Application Default Credentials, and Cloud Scheduler calls
    // its POST /reconcile with an identity token of its own service account: one metadata server for each.
    const autoscalerIdentity = await startFakeMetadataServer({
      issuer,
      vm: {
        ...SANDBOX_PROJECT,
        zone: `${SANDBOX_REGION}-a`,
        instanceId: '4000000000000000002',
        instanceName: 'autoscaler',
        serviceAccountEmail: `autoscaler@${SANDBOX_PROJECT.projectId}.iam.gserviceaccount.com`,
        attributes: {},
      },
    });
    cleanups.push(() => autoscalerIdentity.close());
    const schedulerIdentity = await startFakeMetadataServer({
      issuer,
      vm: {
        ...SANDBOX_PROJECT,
        zone: `${SANDBOX_REGION}-a`,
        instanceId: '4000000000000000003',
        instanceName: 'cloud-scheduler',
        serviceAccountEmail: SCHEDULER_SERVICE_ACCOUNT,
        attributes: {},
      },
    });
    cleanups.push(() => schedulerIdentity.close());
    // The status service reads GET /fleet with its own identity token, and Compute with its access token.
    const statusIdentity = await startFakeMetadataServer({
      issuer,
      vm: {
        ...SANDBOX_PROJECT,
        zone: `${SANDBOX_REGION}-a`,
        instanceId: '4000000000000000004',
        instanceName: 'fleet-status',
        serviceAccountEmail: STATUS_SERVICE_ACCOUNT,
        attributes: {},
      },
    });
    cleanups.push(() => statusIdentity.close());

    const vms = new Map<string, SandboxVm>();
    compute.onInstanceDeleted((instance) => {
      const vm = vms.get(instance.name);
      if (!vm) return;
      vms.delete(instance.name);
      // A metadata server that fails to close is gone with the sandbox's cleanup anyway.
      vm.metadata.close().catch(() => {});
    });
    cleanups.push(async () => {
      await Promise.all([...vms.values()].map((vm) => vm.metadata.close()));
      vms.clear();
    });

    const zonesOf = (kind: RunnerKind) =>
      migs[kind].scope === 'regions' ? [`${SANDBOX_REGION}-a`, `${SANDBOX_REGION}-b`] : [migs[kind].location];
    /** Gives a VM that exists in Compute its metadata server: its identity and instance attributes. */
    const bootVm = async (
      kind: RunnerKind,
      instance: { name: string; zone: string; id: string },
      attributes: Record<string, string> = {},
    ): Promise<SandboxVm> => {
      const { name, zone } = instance;
      const metadata = await startFakeMetadataServer({
        issuer,
        vm: {
          ...SANDBOX_PROJECT,
          zone,
          instanceId: instance.id,
          instanceName: name,
          serviceAccountEmail: SERVICE_ACCOUNTS[kind],
          attributes: {
            'github-runner-scope': SANDBOX_ORG,
            'github-runner-labels': RUNNER_LABELS[kind].join(','),
            'github-runner-group': kind,
            'github-runner-mode': 'jit',
            // The trust rule the job-started hook enforces, as deploy/instance-template.sh sets it per level.
            'github-runner-allowed-events': ALLOWED_EVENTS[kind],
            'token-proxy-url': proxyUrl,
            'instance-deleter-url': deleterUrl,
            'github-url': 'https://github.com',
            ...templateMetadata(kind, name),
            ...attributes,
          },
        },
      });
      const vm: SandboxVm = {
        kind,
        name,
        zone,
        instanceId: instance.id,
        metadataHost: metadata.host,
        metadata,
      };
      vms.set(name, vm);
      return vm;
    };
    const addVm = async (kind: RunnerKind, attributes: Record<string, string> = {}): Promise<SandboxVm> => {
      const name = `gh-runner-${kind}-${randomSuffix()}`;
      const zones = zonesOf(kind);
      const zone = zones[vms.size % zones.length]!;
      const instance = compute.addInstance({
        project: SANDBOX_PROJECT.projectId,
        zone,
        name,
        mig: migs[kind],
      });
      return bootVm(kind, instance, attributes);
    };
    for (const kind of ['presubmit', 'postsubmit'] as const) {
      for (let i = 0; i < (options.vms?.[kind] ?? 2); i += 1) await addVm(kind);
    }

    // Each service's whole environment, built here: nothing of this process's environment but PATH.
    const baseEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      // Loopback only, as the sandbox says: nothing on the network reaches a sandbox service.
      HOST: '127.0.0.1',
      // google-auth-library asks gcloud for a project when it has none; keep a developer's gcloud out of it.
      CLOUDSDK_CONFIG: path.join(root, '.sandbox', 'no-gcloud'),
      GOOGLE_CLOUD_PROJECT: SANDBOX_PROJECT.projectId,
      ID_TOKEN_CERTS_URL: issuer.certsUrl,
      LOG_LEVEL: 'info',
      ...options.serviceEnv,
    };
    const proxy = await startService(
      'token-proxy',
      path.join(root, SERVICE_ENTRY_POINTS['token-proxy'].main),
      proxyListenPort,
      {
        ...baseEnv,
        PORT: String(proxyListenPort),
        AUTH_AUDIENCE: proxyUrl,
        GITHUB_API_URL: github.baseUrl,
        GITHUB_APP_ID: String(github.app.id),
        GITHUB_APP_PRIVATE_KEY: github.app.privateKeyPkcs1Pem,
        ALLOWED_SCOPES: `${SANDBOX_ORG};match:${SANDBOX_ORG}/.*`,
        ...policyEnv(options.policy),
        ...options.serviceEnv,
      },
      onLog,
    );
    cleanups.push(() => proxy.stop());
    const deleter = await startService(
      'instance-deleter',
      path.join(root, SERVICE_ENTRY_POINTS['instance-deleter'].main),
      deleterListenPort,
      {
        ...baseEnv,
        // As deployed: the V8 heap bounds and malloc arenas of services/instance-deleter/runtime.env.
        ...deleterRuntimeEnv(),
        PORT: String(deleterListenPort),
        AUTH_AUDIENCE: deleterUrl,
        ALLOWED_MIG_PATTERN: 'gh-runner-(presubmit|postsubmit)(-c)?',
        COMPUTE_API_ENDPOINT: compute.url,
        GCE_METADATA_HOST: deleterIdentity.host,
        REQUEST_TIMEOUT_SECONDS: '10',
        ...options.serviceEnv,
      },
      onLog,
    );
    cleanups.push(() => deleter.stop());

    // The autoscaler: one pool per MIG, whose labels are exactly the labels that MIG's VMs register with.
    const webhookSecret = crypto.randomBytes(24).toString('base64url');
    const pools = {
      pools: (['presubmit', 'postsubmit'] as const).map((kind) => ({
        name: kind,
        scopes: [SANDBOX_ORG],
        labels: RUNNER_LABELS[kind],
        migs: [migs[kind], ...(secondMigs[kind] ? [secondMigs[kind]] : [])].map(
          (mig) =>
            `projects/${SANDBOX_PROJECT.projectId}/${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}`,
        ),
        runnerScope: SANDBOX_ORG,
        runnerGroup: kind,
        maxRunners: 500,
        instanceNamePrefix: `gh-runner-${kind}`,
        ...options.poolSettings,
      })),
    };
    const autoscaler = await startService(
      'autoscaler',
      path.join(root, SERVICE_ENTRY_POINTS.autoscaler.main),
      autoscalerListenPort,
      {
        ...baseEnv,
        PORT: String(autoscalerListenPort),
        AUTH_AUDIENCE: autoscalerUrl,
        GITHUB_API_URL: github.baseUrl,
        GITHUB_APP_ID: String(github.app.id),
        GITHUB_APP_PRIVATE_KEY: github.app.privateKeyPkcs1Pem,
        GITHUB_WEBHOOK_SECRET: webhookSecret,
        // The fake's actions/runner releases: the reconciler judges the versions the runners report.
        RUNNER_RELEASES_API_URL: github.baseUrl,
        POOLS: JSON.stringify(pools),
        COMPUTE_API_ENDPOINT: compute.url,
        GCE_METADATA_HOST: autoscalerIdentity.host,
        RECONCILE_CALLERS: SCHEDULER_SERVICE_ACCOUNT,
        FLEET_VIEWERS: STATUS_SERVICE_ACCOUNT,
        BATCH_WINDOW_MS: '200',
        ...options.serviceEnv,
      },
      onLog,
    );
    cleanups.push(() => autoscaler.stop());
    // The status page, as deploy/fleet-status.sh runs it behind IAP: IAP's keys are the fake signer's.
    const fleetStatus = await startService(
      'fleet-status',
      path.join(root, SERVICE_ENTRY_POINTS['fleet-status'].main),
      statusListenPort,
      {
        ...baseEnv,
        PORT: String(statusListenPort),
        IAP_AUDIENCE: STATUS_IAP_AUDIENCE,
        IAP_PUBLIC_KEYS_URL: iap.publicKeysUrl,
        STATUS_VIEWERS: `domain:${STATUS_VIEWER_DOMAIN}`,
        AUTOSCALER_URL: autoscalerUrl,
        GITHUB_API_URL: github.baseUrl,
        COMPUTE_API_ENDPOINT: compute.url,
        GCE_METADATA_HOST: statusIdentity.host,
        SNAPSHOT_TTL_SECONDS: '5',
        ...options.serviceEnv,
      },
      onLog,
    );
    cleanups.push(() => fleetStatus.stop());
    const front = await startIapFront({
      issuer: iap,
      audience: STATUS_IAP_AUDIENCE,
      email: STATUS_VIEWER,
      hd: STATUS_VIEWER_DOMAIN,
      target: statusUrl,
      port: iapFrontPort,
    });
    cleanups.push(() => front.close());
    github.setWebhook({ url: `${autoscalerUrl}/webhook`, secret: webhookSecret });
    cleanups.push(async () => github.setWebhook(undefined));

    // Every VM the autoscaler creates boots with a metadata server and lives a runner's life.
    const lives = new AbortController();
    const outcomes: AutoscaledVmOutcome[] = [];
    const living = new Set<Promise<void>>();
    const kindOf = (mig: FakeMig | undefined): RunnerKind | undefined =>
      (['presubmit', 'postsubmit'] as const).find(
        (kind) => mig !== undefined && (mig === migs[kind] || mig === secondMigs[kind]),
      );
    // Each living VM's "deleted" signal, aborted once Compute deleted the instance, whoever asked.
    const deletions = new Map<string, AbortController>();
    const unsubscribeDeleted = compute.onInstanceDeleted((instance) => deletions.get(instance.name)?.abort());
    const unsubscribe = compute.onInstanceCreated((instance, mig) => {
      const kind = kindOf(mig);
      if (kind === undefined || lives.signal.aborted) return;
      const fate = options.autoscaledVmFate?.(instance.name, kind) ?? 'works';
      const deleted = new AbortController();
      deletions.set(instance.name, deleted);
      const life = bootVm(kind, instance)
        .then((vm) =>
          runAutoscaledVm(vm.name, {
            metadataHost: vm.metadataHost,
            githubUrl: github.baseUrl,
            jobMs: options.jobMs ?? 2000,
            idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
            signal: lives.signal,
            fate,
            deleted: deleted.signal,
          }),
        )
        .then(
          (outcome) => {
            outcomes.push(outcome);
          },
          (error: unknown) => {
            outcomes.push({ name: instance.name, fate, deleted: false, error: String(error) });
          },
        );
      const tracked = life.finally(() => {
        living.delete(tracked);
        deletions.delete(instance.name);
      });
      living.add(tracked);
    });
    cleanups.push(async () => {
      unsubscribe();
      unsubscribeDeleted();
      lives.abort();
      await Promise.all([...living]);
    });

    const serviceExit = new Promise<ServiceExit>((resolve) => {
      for (const [service, spawned] of [
        ['token-proxy', proxy],
        ['instance-deleter', deleter],
        ['autoscaler', autoscaler],
        ['fleet-status', fleetStatus],
      ] as const) {
        spawned.exited.then(
          (code) => {
            if (!stopping)
              resolve({ service, code, signal: spawned.child.signalCode, output: spawned.output() });
          },
          () => {},
        );
      }
    });

    let runnersRoot: string | undefined;
    const runnerDir = (vm: SandboxVm): string => {
      if (runnersRoot === undefined) {
        const made = fs.mkdtempSync(path.join(os.tmpdir(), 'gce-github-runners-sandbox-'));
        runnersRoot = made;
        cleanups.push(async () => fs.rmSync(made, { recursive: true, force: true }));
      }
      const dir = path.join(runnersRoot, vm.name);
      if (!fs.existsSync(dir))
        writeRunnerDir(dir, path.join(root, 'sandbox', 'runner-standin'), github.baseUrl);
      return dir;
    };

    return {
      issuer,
      github,
      compute,
      proxyUrl,
      deleterUrl,
      autoscalerUrl,
      statusUrl,
      statusFrontUrl: front.url,
      iap,
      webhookSecret,
      schedulerMetadataHost: schedulerIdentity.host,
      migs,
      secondMigs,
      autoscaledVms: () => outcomes,
      autoscaledVmsSettled: async () => {
        while (living.size > 0) await Promise.all([...living]);
      },
      servicePids: {
        tokenProxy: proxy.child.pid!,
        instanceDeleter: deleter.child.pid!,
        autoscaler: autoscaler.child.pid!,
        fleetStatus: fleetStatus.child.pid!,
      },
      vms: () => [...vms.values()],
      serviceExit,
      addVm,
      runnerDir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
