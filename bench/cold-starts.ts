import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SERVICE_ENTRY_POINTS } from '#entry-points';
import { startFakeComputeApi } from '#fakes/compute-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import { deleterRuntimeEnv, freePort, spawnNode, waitUntilAnswering } from '#sandbox/node-process';
import type { NodeProcess } from '#sandbox/node-process';
import { repoRoot, SANDBOX_ORG, SANDBOX_POLICY, SANDBOX_PROJECT, SERVICE_ACCOUNTS } from '#sandbox/sandbox';
import { log, mb, sleep } from './bench-support.js';
import type { ProcessRow } from './render-report.js';
import { residentMemoryMiB } from './resident-memory.js';

/** Spawns a built service `runs` times, timing spawn → first answer, and its RSS once it is idle. */
async function coldStarts(
  name: string,
  entry: string,
  env: (port: number) => Record<string, string>,
  ready: (spawned: NodeProcess, port: number) => Promise<unknown>,
  runs: number,
): Promise<{ times: number[]; idleRss: number | undefined }> {
  const times: number[] = [];
  let idleRss: number | undefined;
  for (let i = 0; i < runs; i += 1) {
    const port = await freePort();
    const started = performance.now();
    const spawned = spawnNode(entry, env(port));
    try {
      await ready(spawned, port);
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
    HOST: '127.0.0.1',
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
      // Parsing a policy is part of a real start.
      POLICY: JSON.stringify(SANDBOX_POLICY),
    }),
    (spawned, port) => waitUntilAnswering(spawned, port, { path: '/healthz', status: 200, intervalMs: 2 }),
    runs,
  );
  const deleter = await deleterColdStarts(runs, minimal);
  return { proxy, deleter };
}

/** What the deleter's cold start waits for: see {@link deleterColdStarts}. */
const DELETER_READY_WHEN =
  'first 200 on an authorized GET / (instances.get and MIG reads at the fake Compute)';

/** GET `path` with `headers` on loopback: its status, or undefined when nothing listens yet. */
function authorizedProbe(port: number, token: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        agent: false,
        timeout: 30_000,
        headers: { authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/**
 * The deleter's cold starts, to the first answer that a VM's request needs: spawn → the first 200 on
 * `GET /` with a valid identity token, which verifies the token (Google's certificates from the fake
 * issuer), gets the deleter's own access token (the fake metadata server), and reads the VM, its MIG and
 * the autoscaler from the fake Compute API: every module that answer needs is loaded and every client
 * built. The request is sent from the start, so the first connection the deleter accepts carries it, as
 * Cloud Run delivers the request that started an instance as soon as it listens. Run with the deployed
 * runtime environment ({@link deleterRuntimeEnv}).
 */
async function deleterColdStarts(
  runs: number,
  minimal: (port: number) => Record<string, string>,
): Promise<ColdStarts> {
  const issuer = await startFakeGoogleIssuer();
  const compute = await startFakeComputeApi();
  const identity = await startFakeMetadataServer({
    issuer,
    vm: {
      ...SANDBOX_PROJECT,
      zone: 'us-central1-a',
      instanceId: '4000000000000000001',
      instanceName: 'instance-deleter',
      serviceAccountEmail: `instance-deleter@${SANDBOX_PROJECT.projectId}.iam.gserviceaccount.com`,
      attributes: {},
    },
  });
  try {
    compute.addProject(SANDBOX_PROJECT);
    const mig = compute.addMig({
      project: SANDBOX_PROJECT.projectId,
      zone: 'us-central1-b',
      name: 'gh-runner-postsubmit',
      autoscaler: { recommendedSize: 2 },
    });
    const vms = ['a', 'b'].map((suffix) =>
      compute.addInstance({
        project: SANDBOX_PROJECT.projectId,
        zone: mig.location,
        name: `gh-runner-postsubmit-${suffix}`,
        mig,
      }),
    );
    const vm = vms[0]!;
    return await coldStarts(
      'instance deleter',
      path.join(repoRoot(), SERVICE_ENTRY_POINTS['instance-deleter'].main),
      (port) => ({
        ...minimal(port),
        ...deleterRuntimeEnv(),
        ALLOWED_MIG_PATTERN: 'gh-runner-.*',
        COMPUTE_API_ENDPOINT: compute.url,
        GCE_METADATA_HOST: identity.host,
        ID_TOKEN_CERTS_URL: issuer.certsUrl,
        GOOGLE_CLOUD_PROJECT: SANDBOX_PROJECT.projectId,
        // google-auth-library asks gcloud for a project when it has none; keep a developer's gcloud out.
        CLOUDSDK_CONFIG: path.join(repoRoot(), '.sandbox', 'no-gcloud'),
      }),
      async (spawned, port) => {
        const token = issuer.mintIdentityToken({
          audience: `http://127.0.0.1:${port}`,
          email: SERVICE_ACCOUNTS.postsubmit,
          compute: { ...SANDBOX_PROJECT, zone: vm.zone, instanceId: vm.id, instanceName: vm.name },
        });
        for (;;) {
          const status = await authorizedProbe(port, token);
          if (status === 200) return;
          if (status !== undefined)
            throw new Error(`instance deleter answered ${status}:\n${spawned.output()}`);
          if (spawned.child.exitCode !== null || spawned.child.signalCode !== null)
            throw new Error(`instance deleter exited during start-up:\n${spawned.output()}`);
          await sleep(2);
        }
      },
      runs,
    );
  } finally {
    await Promise.all([identity.close(), compute.close(), issuer.close()]);
  }
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
      readyWhen: DELETER_READY_WHEN,
      idleRssMB: cold.deleter.idleRss,
      loadedRssMB: loadedRss.deleter,
    },
  ];
}
