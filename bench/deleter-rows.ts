import { SANDBOX_PROJECT, SERVICE_ACCOUNTS } from '#sandbox/sandbox';
import type { Sandbox } from '#sandbox/sandbox';
import type { FakeMig } from '#fakes/compute-api';
import { bearer, hex, log, mintPool, remember, rotation, timedLoad } from './bench-support.js';
import type { LogAudit, VmIdentity } from './bench-support.js';
import type { BenchOptions } from './parse-bench-options.js';
import type { LoadRow } from './render-report.js';

/** VMs asking GET / in turn, over 16 connections. */
const GET_VMS = 64;
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
export async function deleterRows(
  sandbox: Sandbox,
  options: BenchOptions,
  audit: LogAudit,
): Promise<{ rows: LoadRow[]; notes: string[] }> {
  const compute = sandbox.compute.controls;
  const rows: LoadRow[] = [];
  const notes: string[] = [];

  // GET /: the sandbox's zonal postsubmit MIG, stable, with a recommendation equal to its size (answer false).
  // Many more VMs than connections, one token each: the deleter lets a VM have one request in flight (429).
  const mig = sandbox.migs.postsubmit;
  const members = Array.from({ length: GET_VMS }, (_, i) => {
    const instance = sandbox.compute.addInstance({
      project: SANDBOX_PROJECT.projectId,
      zone: mig.location,
      name: `gh-runner-postsubmit-get-${hex()}${i.toString(36)}`,
      mig,
    });
    return { zone: instance.zone, instanceId: instance.id, instanceName: instance.name };
  });
  sandbox.compute.setRecommendedSize(mig, mig.targetSize);
  const getTokens = mintPool(sandbox, sandbox.deleterUrl, SERVICE_ACCOUNTS.postsubmit, members, 1);
  remember(audit, getTokens);
  const getPool = rotation(getTokens);
  let mark = compute.calls.length;
  const get = await timedLoad(
    sandbox.deleterUrl,
    16,
    { method: 'GET', path: '/', next: () => bearer(getPool.next()) },
    options,
    undefined,
    sandbox.servicePids.instanceDeleter,
  );
  rows.push({
    id: 'deleter/get',
    scenario: 'deleter GET / (stable MIG, answers false)',
    connections: 16,
    load: get.load,
    upstreamCalls: compute.calls.length - mark,
    ...(get.cpuMs === undefined ? {} : { cpuMs: get.cpuMs }),
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
      sandbox.servicePids.instanceDeleter,
    );
    const deletes = compute.calls.slice(mark).filter((call) => call.path.endsWith('/deleteInstances')).length;
    const scenario =
      layout === 'spread'
        ? `deleter DELETE /, fresh VM each (${amount} VMs over ${Math.min(SPREAD_ZONES.length, Math.ceil(amount / VMS_PER_MIG))} MIGs)`
        : `deleter DELETE /, fresh VM each (${amount} VMs in one MIG)`;
    rows.push({
      id: `deleter/delete-${layout}`,
      scenario,
      connections: 16,
      load: del.load,
      upstreamCalls: compute.calls.length - mark,
      ...(del.cpuMs === undefined ? {} : { cpuMs: del.cpuMs }),
    });
    log(
      `deleter DELETE / (${layout}): ${del.load.requestsPerSecond.toFixed(0)} req/s, ${deletes} deleteInstances`,
    );
    if (deletes !== del.load.requests)
      notes.push(`DELETE (${layout}): ${deletes} deleteInstances for ${del.load.requests} answers.`);
  }
  return { rows, notes };
}
