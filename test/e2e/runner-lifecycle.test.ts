import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, RUNNER_LABELS, SANDBOX_ORG, startSandbox } from '#sandbox/sandbox';
import type { Sandbox, SandboxVm } from '#sandbox/sandbox';

/**
 * The whole runner lifecycle on the sandbox: the real VM scripts (bash) run against both built services,
 * which run as child processes against the emulated GitHub, Compute Engine and metadata servers. A stand-in
 * records what the runner binary was started with. Outcomes are asserted at the fakes.
 */
const run = promisify(execFile);
const root = repoRoot();
const ORG = { kind: 'org', org: SANDBOX_ORG } as const;

let sandbox: Sandbox;
let workDir: string;
const serviceLog: string[] = [];

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-'));
  sandbox = await startSandbox({
    proxyPort: 0,
    deleterPort: 0,
    vms: { presubmit: 3, postsubmit: 3 },
    deletionDelayMs: 100,
    onServiceLog: (service, line) => serviceLog.push(`${service} ${line}`),
  });
}, 300_000);

afterAll(async () => {
  await sandbox?.stop();
  fs.rmSync(workDir, { recursive: true, force: true });
});

/**
 * Runs one of deploy/vm/*.sh as the VM would, with its own metadata server and runner directory (links to
 * the stand-in, so each VM has its own .env, .runner and work folder).
 */
async function vmScript(vm: SandboxVm, script: string, env: Record<string, string> = {}) {
  const state = path.join(workDir, vm.name);
  if (!fs.existsSync(state)) {
    fs.mkdirSync(state, { recursive: true });
    for (const file of ['run.sh', 'config.sh', 'standin-lib.sh']) {
      fs.symlinkSync(path.join(root, 'sandbox/runner-standin', file), path.join(state, file));
    }
  }
  // The trust rule register.sh insists on; the stand-in's job is a push.
  vm.metadata.setAttribute('github-runner-allowed-events', 'push,workflow_dispatch');
  try {
    const { stdout, stderr } = await run('bash', [path.join(root, 'deploy/vm', script)], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GCE_METADATA_HOST: vm.metadataHost,
        RUNNER_DIR: state,
        RUNNER_STANDIN_LOG: path.join(state, 'runner.jsonl'),
        SANDBOX_GITHUB_URL: sandbox.github.baseUrl,
        RETRY_BASE_SECONDS: '0.1',
        ...env,
      },
      timeout: 240_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function standinRecords(vm: SandboxVm): Array<Record<string, unknown>> {
  const file = path.join(workDir, vm.name, 'runner.jsonl');
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function identityToken(vm: SandboxVm, audience: string): Promise<string> {
  const res = await fetch(
    `http://${vm.metadataHost}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${audience}&format=full`,
    { headers: { 'Metadata-Flavor': 'Google' } },
  );
  return res.text();
}

describe('a fleet of VMs through their whole lives', () => {
  it('registers each VM as exactly the runner it may be, then deregisters and deletes it from its MIG', async () => {
    const vms = sandbox.vms();
    const tokenModeVm = vms.find((vm) => vm.kind === 'postsubmit')!;
    tokenModeVm.metadata.setAttribute('github-runner-mode', 'token');
    const calls = sandbox.github.controls;
    const mark = calls.calls.length;

    // Boot: every VM registers and its runner runs one job.
    const boots = await Promise.all(vms.map((vm) => vmScript(vm, 'register.sh')));
    for (const [i, boot] of boots.entries()) expect({ vm: vms[i]!.name, ...boot }).toMatchObject({ code: 0 });

    const jitCalls = calls.calls
      .slice(mark)
      .filter((c) => c.method === 'POST' && c.path.endsWith('/generate-jitconfig'));
    expect(jitCalls.map((c) => (c.body as { name: string }).name).sort()).toEqual(
      vms
        .filter((vm) => vm !== tokenModeVm)
        .map((vm) => vm.name)
        .sort(),
    );
    for (const call of jitCalls) {
      const body = call.body as { name: string; labels: string[]; runner_group_id: number };
      const kind = body.name.includes('presubmit') ? 'presubmit' : 'postsubmit';
      // The proxy adds the label that binds the runner to its VM (derived-labels.ts).
      const vm = vms.find((v) => v.name === body.name)!;
      expect(body.labels).toEqual([...RUNNER_LABELS[kind], `gce-instance-id-${vm.instanceId}`]);
      expect(body.runner_group_id).toBe(kind === 'presubmit' ? 2 : 3);
    }
    // Every runner ran its job behind the job hooks register.sh installed.
    for (const vm of vms) {
      const job = standinRecords(vm).find((r) => r.script === 'run.sh' && r.event === 'job');
      expect(job).toMatchObject({ steps: 'ran', conclusion: 'success', started_hook: { status: 0 } });
    }
    // The JIT config reached the runner through its environment, never its command line.
    for (const vm of vms.filter((v) => v !== tokenModeVm)) {
      const invoked = standinRecords(vm).find((r) => r.script === 'run.sh' && r.event === 'invoked')!;
      expect(JSON.stringify(invoked)).toMatch(/ACTIONS_RUNNER_INPUT_JITCONFIG[^}]*"present":true/);
      expect(invoked.secret_args).toEqual([]);
    }
    // The token-mode VM configured its runner with a registration token, its own name and labels.
    const [registration] = calls.calls.slice(mark).filter((c) => c.path === '/_sandbox/runners/register');
    expect(registration!.body).toMatchObject({
      url: `https://github.com/${SANDBOX_ORG}`,
      name: tokenModeVm.name,
      labels: expect.arrayContaining(RUNNER_LABELS.postsubmit),
      runner_group: 'postsubmit',
      ephemeral: true,
    });
    const configured = standinRecords(tokenModeVm).find(
      (r) => r.script === 'config.sh' && r.event === 'invoked',
    )!;
    expect(JSON.stringify(configured)).toMatch(/ACTIONS_RUNNER_INPUT_TOKEN[^}]*"present":true/);
    expect(configured.secret_args).toEqual([]);
    expect(calls.calls.slice(mark).filter((c) => c.path.endsWith('/registration-token'))).toHaveLength(1);

    // Shutdown: deregistration leaves no runner behind (ephemeral runners are already gone after their job).
    const deregistered = await Promise.all(vms.map((vm) => vmScript(vm, 'deregister.sh')));
    expect(deregistered.map((r) => r.code)).toEqual(vms.map(() => 0));
    const names = new Set(vms.map((vm) => vm.name));
    expect(sandbox.github.listRunners(ORG).filter((r) => names.has(r.name))).toEqual([]);

    // Delete self: each VM leaves through its own MIG.
    const computeMark = sandbox.compute.controls.calls.length;
    const deleted = await Promise.all(vms.map((vm) => vmScript(vm, 'delete-self.sh')));
    expect(deleted.map((r) => r.code)).toEqual(vms.map(() => 0));
    const deleteCalls = sandbox.compute.controls.calls
      .slice(computeMark)
      .filter((c) => c.method === 'POST' && c.path.endsWith('/deleteInstances'));
    expect(deleteCalls).toHaveLength(vms.length);
    for (const vm of vms) {
      const call = deleteCalls.find((c) => JSON.stringify(c.body).includes(`/instances/${vm.name}"`))!;
      expect(call.path).toContain(`/instanceGroupManagers/gh-runner-${vm.kind}/deleteInstances`);
      expect(call.body).toMatchObject({
        instances: [expect.stringContaining(`zones/${vm.zone}/instances/${vm.name}`)],
      });
    }
    await waitFor(() => sandbox.vms().filter((vm) => names.has(vm.name)).length === 0);
  }, 300_000);

  it('deletes an idle VM only when its MIG wants to shrink, and never a busy one', async () => {
    // The local busy check, so that RUNNER_BUSY_CHECK decides busy or idle here; the default source (GitHub,
    // through the proxy's GET /runner) is covered in test/vm-scripts.
    const idle = await sandbox.addVm('presubmit', { 'github-runner-idle-source': 'process' });
    const busy = await sandbox.addVm('presubmit', { 'github-runner-idle-source': 'process' });
    const mig = sandbox.migs.presubmit;
    sandbox.compute.setRecommendedSize(mig, mig.targetSize);

    const kept = await vmScript(idle, 'idle-check.sh', { RUNNER_BUSY_CHECK: 'false' });
    expect(kept.code).toBe(0);
    expect(sandbox.vms().map((vm) => vm.name)).toContain(idle.name);

    sandbox.compute.setRecommendedSize(mig, mig.targetSize - 1);
    const whileBusy = await vmScript(busy, 'idle-check.sh', { RUNNER_BUSY_CHECK: 'true' });
    expect(whileBusy.code).toBe(0);
    const gone = await vmScript(idle, 'idle-check.sh', { RUNNER_BUSY_CHECK: 'false' });
    expect(gone.code).toBe(0);
    await waitFor(() => !sandbox.vms().some((vm) => vm.name === idle.name));
    expect(sandbox.vms().map((vm) => vm.name)).toContain(busy.name);
  }, 300_000);
});

describe('what an attacker on a runner VM can do', () => {
  it('cannot register a runner outside its own group and labels, or get a registration token', async () => {
    const presubmit = await sandbox.addVm('presubmit');
    const token = await identityToken(presubmit, sandbox.proxyUrl);
    const ask = (path: string, body: object) =>
      fetch(`${sandbox.proxyUrl}${path}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
    const attempts = await Promise.all([
      ask('/jitconfig', { scope: SANDBOX_ORG, labels: ['self-hosted', 'postsubmit'] }),
      ask('/jitconfig', { scope: SANDBOX_ORG, runner_group: 'postsubmit' }),
      ask('/jitconfig', { scope: `${SANDBOX_ORG}/app` }),
      ask('/register', { scope: SANDBOX_ORG }),
      ask('/remove', { scope: SANDBOX_ORG }),
    ]);
    expect(attempts.map((r) => r.status)).toEqual([403, 403, 403, 403, 403]);

    // The same VM's script, pointed at postsubmit labels, fails clearly and registers nothing.
    presubmit.metadata.setAttribute('github-runner-labels', 'self-hosted,postsubmit');
    const result = await vmScript(presubmit, 'register.sh');
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('this caller may not use label "postsubmit"');
    expect(sandbox.github.listRunners(ORG).some((r) => r.name === presubmit.name)).toBe(false);
  });

  it("cannot use a forged token, a token for another service, or a deleted VM's token", async () => {
    const victim = await sandbox.addVm('postsubmit');
    const attacker = await sandbox.addVm('presubmit');
    const forged = sandbox.issuer.mintIdentityToken(
      {
        audience: sandbox.deleterUrl,
        email: 'runner-postsubmit@sandbox-project.iam.gserviceaccount.com',
        compute: {
          projectId: 'sandbox-project',
          projectNumber: 123456789012,
          zone: victim.zone,
          instanceId: victim.instanceId,
          instanceName: victim.name,
        },
      },
      { signing: 'rs256-other-key' },
    );
    const forgedDelete = await fetch(sandbox.deleterUrl, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${forged}` },
    });
    expect(forgedDelete.status).toBe(401);

    const proxyToken = await identityToken(attacker, sandbox.proxyUrl);
    const wrongAudience = await fetch(sandbox.deleterUrl, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${proxyToken}` },
    });
    expect(wrongAudience.status).toBe(401);

    const deleterToken = await identityToken(attacker, sandbox.deleterUrl);
    const own = await fetch(sandbox.deleterUrl, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${deleterToken}` },
    });
    expect(own.status).toBe(200);
    await waitFor(() => !sandbox.vms().some((vm) => vm.name === attacker.name));
    const replay = await fetch(sandbox.deleterUrl, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${deleterToken}` },
    });
    expect(replay.status).toBe(404);
    expect(sandbox.vms().map((vm) => vm.name)).toContain(victim.name);
  });

  it("never sees a token or JIT config in the services' logs", () => {
    const secrets = [
      ...sandbox.github.issuedTokens.runner.map((t) => t.token),
      ...sandbox.github.issuedTokens.installation.map((t) => t.token),
    ];
    expect(secrets.length).toBeGreaterThan(0);
    const text = serviceLog.join('\n');
    expect(text).toContain('issued JIT config');
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}/);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
