import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { StubCall } from './service-stub.js';
import { INSTANCE_NAME, ROOT, sha256, STANDIN_DIR, useVmHarness, VM_DIR } from './vm-harness.js';
import type { ScriptResult } from './vm-harness.js';

const vm = useVmHarness();

/** Asserts a script's exit status; on a mismatch the diff shows its stdout and stderr. */
const expectExit = (result: ScriptResult, code: number) => expect(result).toMatchObject({ code });

const summary = (calls: StubCall[]) => calls.map((c) => `${c.method} ${c.path}`);
const jitConfigsIssued = () =>
  vm.proxy.calls.filter((c) => c.path === '/jitconfig').map((c) => c.instanceName);
const recordsOf = (script: string, event: string) =>
  vm.standinRecords().filter((r) => r.script === script && r.event === event);

describe('register.sh', () => {
  it('JIT mode: gets a config with the VM identity and hands it to run.sh in the environment', async () => {
    await vm.startVm(
      vm.proxyAttributes({ 'github-runner-labels': ' linux-x64, gpu ,', 'github-runner-group': 'presubmit' }),
    );
    const result = await vm.runScript('register.sh');

    expect(result).toMatchObject({ code: 0 });
    expect(vm.proxy.calls).toHaveLength(1);
    expect(vm.proxy.calls[0]).toMatchObject({
      method: 'POST',
      path: '/jitconfig',
      body: { scope: 'my-org', labels: ['linux-x64', 'gpu'], runner_group: 'presubmit' },
      auth: 'valid',
      instanceName: INSTANCE_NAME,
    });
    expect(result.stderr).toContain(`got a JIT config for runner ${INSTANCE_NAME} (id 42)`);

    const jitSent = (vm.github.calls[0]?.body as { encoded_jit_config: string }).encoded_jit_config;
    expect(summary(vm.github.calls)).toEqual([
      'POST /_sandbox/runners/jit',
      'POST /_sandbox/runners/42/busy',
      'POST /_sandbox/runners/42/busy',
      'POST /_sandbox/runners/42/exit',
    ]);
    const records = vm.standinRecords();
    expect(records.map((r) => `${r.script} ${r.event}`)).toEqual([
      'run.sh invoked',
      'run.sh job',
      'run.sh exited',
    ]);
    expect(records[0]).toMatchObject({
      args: [],
      secret_args: [],
      env: { ACTIONS_RUNNER_INPUT_JITCONFIG: { present: true, sha256: sha256(jitSent) } },
    });
    expect(records[2]).toMatchObject({ status: 0, runner_id: 42 });
    // The ephemeral runner dropped its local registration after the job.
    expect(fs.existsSync(path.join(vm.runnerDir, '.runner'))).toBe(false);
  });

  it('JIT mode without labels or group sends only the scope', async () => {
    await vm.startVm(vm.proxyAttributes({ 'token-proxy-url': `${vm.proxy.url}/` }));
    const result = await vm.runScript('register.sh');
    expectExit(result, 0);
    expect(vm.proxy.calls.map((c) => c.body)).toEqual([{ scope: 'my-org' }]);
    expect(vm.proxy.calls[0]?.auth).toBe('valid');
  });

  it('a relative RUNNER_DIR is resolved once, before the JIT config is spent', async () => {
    await vm.startVm(vm.proxyAttributes());
    const result = await vm.runScript('register.sh', { RUNNER_DIR: 'actions-runner' }, { cwd: vm.work });
    expectExit(result, 0);
    expect(result.stderr).toContain(`starting the runner in ${fs.realpathSync(vm.runnerDir)}`);
    expect(recordsOf('run.sh', 'exited')).toHaveLength(1);
  });

  it("keeps the runner stand-in's JSON out of the terminal unless asked", async () => {
    await vm.startVm(vm.proxyAttributes());
    const quiet = await vm.runScript('register.sh', { RUNNER_STANDIN_LOG: '' });
    expectExit(quiet, 0);
    expect(quiet.stderr).not.toContain('"event"');
    const file = path.join(vm.runnerDir, '_diag', 'runner-standin.jsonl');
    expect(fs.readFileSync(file, 'utf8')).toContain('"event":"exited"');

    const verbose = await vm.runScript('register.sh', {
      RUNNER_STANDIN_LOG: '',
      RUNNER_STANDIN_VERBOSE: '1',
    });
    expectExit(verbose, 0);
    expect(verbose.stderr).toContain('"event":"exited"');
  });

  it("exits with run.sh's status: 0 for most listener outcomes, 7 when GitHub refuses the runner's version", async () => {
    await vm.startVm(vm.proxyAttributes());
    // actions/runner's run.sh exits 0 after a terminated error (listener code 1).
    const terminated = await vm.runScript('register.sh', { RUNNER_STANDIN_LISTENER_EXIT_CODE: '1' });
    expectExit(terminated, 0);
    expect(terminated.stderr).toContain('run.sh exited with status 0: the runner has stopped');

    // register.sh asks run.sh to say so when the version is deprecated (ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE).
    const deprecated = await vm.runScript('register.sh', { RUNNER_STANDIN_LISTENER_EXIT_CODE: '7' });
    expectExit(deprecated, 7);
    expect(deprecated.stderr).toContain(
      "error: GitHub refuses this runner's version (run.sh exited with status 7)",
    );
    expect(recordsOf('run.sh', 'invoked').at(-1)?.env).toEqual(
      expect.objectContaining({ ACTIONS_RUNNER_INPUT_JITCONFIG: expect.objectContaining({ present: true }) }),
    );
  });

  it('token mode: config.sh gets URL, name, labels, group and --replace, and the token only in the environment', async () => {
    await vm.startVm(
      vm.proxyAttributes({
        'github-runner-scope': 'my-org/my-repo',
        'github-runner-mode': 'token',
        'github-runner-labels': 'linux-x64,gpu',
        'github-runner-group': 'presubmit',
      }),
    );
    const result = await vm.runScript('register.sh');

    expectExit(result, 0);
    expect(vm.proxy.calls).toMatchObject([
      { method: 'POST', path: '/register', body: { scope: 'my-org/my-repo' }, auth: 'valid' },
    ]);
    const records = vm.standinRecords();
    expect(records.map((r) => `${r.script} ${r.event}`)).toEqual([
      'config.sh invoked',
      'config.sh configured',
      'run.sh invoked',
      'run.sh job',
      'run.sh exited',
    ]);
    const registration = vm.github.calls[0]?.body as { token: string };
    expect(records[0]).toMatchObject({
      args: [
        '--unattended',
        '--ephemeral',
        '--disableupdate',
        '--replace',
        '--url',
        'https://github.com/my-org/my-repo',
        '--name',
        INSTANCE_NAME,
        '--labels',
        // The VM binds its runner to itself, as the proxy does for a JIT config.
        'linux-x64,gpu,gce-instance-id-9223372036854775809',
        '--runnergroup',
        'presubmit',
      ],
      secret_args: [],
      env: { ACTIONS_RUNNER_INPUT_TOKEN: { present: true, sha256: sha256(registration.token) } },
    });
    expect(records[2]).toMatchObject({ args: [], env: {} });
    expect(vm.github.calls[0]).toMatchObject({
      path: '/_sandbox/runners/register',
      body: {
        url: 'https://github.com/my-org/my-repo',
        name: INSTANCE_NAME,
        labels: ['linux-x64', 'gpu', 'gce-instance-id-9223372036854775809'],
        runner_group: 'presubmit',
        ephemeral: true,
        replace: true,
      },
    });
    expect(summary(vm.github.calls).slice(1)).toEqual([
      'POST /_sandbox/runners/43/busy',
      'POST /_sandbox/runners/43/busy',
      'POST /_sandbox/runners/43/exit',
    ]);
  });

  it('token mode: an enterprise scope and another GitHub URL make the config.sh URL', async () => {
    await vm.startVm(
      vm.proxyAttributes({
        'github-runner-scope': 'enterprise:acme',
        'github-runner-mode': 'token',
        'github-url': 'https://ghe.example.com/',
      }),
    );
    const result = await vm.runScript('register.sh', { SANDBOX_GITHUB_URL: '' });
    expectExit(result, 0);
    const args = vm.standinRecords()[0]?.args ?? [];
    expect(args.slice(args.indexOf('--url'), args.indexOf('--url') + 2)).toEqual([
      '--url',
      'https://ghe.example.com/enterprises/acme',
    ]);
    // Without configured labels, only the one binding the runner to its instance.
    expect(args.slice(args.indexOf('--labels'), args.indexOf('--labels') + 2)).toEqual([
      '--labels',
      'gce-instance-id-9223372036854775809',
    ]);
    expect(args).not.toContain('--runnergroup');
  });

  it('names every missing required attribute, exits 2 and calls nothing', async () => {
    await vm.startVm({ 'github-runner-mode': 'tokens' });
    const result = await vm.runScript('register.sh');
    expectExit(result, 2);
    expect(result.stderr).toContain('instance attribute github-runner-scope is required but not set');
    expect(result.stderr).toContain('instance attribute token-proxy-url is required but not set');
    expect(result.stderr).toContain("github-runner-mode must be jit or token, got 'tokens'");
    expect(result.stderr).toContain(
      'instance attribute github-runner-allowed-events is required but not set',
    );
    expect(vm.proxy.calls).toEqual([]);
    expect(vm.standinRecords()).toEqual([]);
  });

  it('registers no runner when its trust rule is broken: it would refuse every job', async () => {
    await vm.startVm(
      vm.proxyAttributes({
        'github-runner-allowed-events': 'push,Pull-Request',
        'github-runner-allowed-refs': 'refs/heads/(main',
        'github-runner-allow-fork-pull-requests': 'yes',
      }),
    );
    const result = await vm.runScript('register.sh');
    expectExit(result, 2);
    expect(result.stderr).toContain("github-runner-allowed-events: 'Pull-Request' is not an event name");
    expect(result.stderr).toContain(
      "github-runner-allowed-refs: 'refs/heads/(main' is not a valid extended regular expression",
    );
    expect(result.stderr).toContain(
      "github-runner-allow-fork-pull-requests must be true or false, got 'yes'",
    );
    expect(vm.proxy.calls).toEqual([]);
  });

  it.each([400, 401, 403])(
    'a %i is final: no retry, the error message shown, exit 1, no runner started',
    async (status) => {
      await vm.startVm(vm.proxyAttributes({ 'github-runner-labels': 'gpu' }));
      vm.proxy.queue('POST', '/jitconfig', {
        status,
        json: { error: 'label "gpu" is not allowed for this caller' },
      });
      const result = await vm.runScript('register.sh');
      expectExit(result, 1);
      expect(result.stderr).toContain(
        `error: getting a JIT runner config for my-org from the token proxy failed: HTTP ${status}: label "gpu" is not allowed for this caller`,
      );
      expect(jitConfigsIssued()).toHaveLength(1);
      expect(vm.standinRecords()).toEqual([]);
    },
  );

  // Issue 14 §4, case A: a reused instance name whose previous runner GitHub still lists as online.
  it('retries a 409 from /jitconfig (the name is still online) until the old runner is gone', async () => {
    await vm.startVm(vm.proxyAttributes());
    const online = { status: 409, json: { error: `a runner named "${INSTANCE_NAME}" is already online` } };
    vm.proxy.queue('POST', '/jitconfig', online, online, online);
    const result = await vm.runScript('register.sh');
    expectExit(result, 0);
    expect(jitConfigsIssued()).toEqual([INSTANCE_NAME, INSTANCE_NAME, INSTANCE_NAME, INSTANCE_NAME]);
    expect(result.stderr).toContain(
      `HTTP 409: a runner named "${INSTANCE_NAME}" is already online; retrying in`,
    );
    expect(recordsOf('run.sh', 'exited')).toMatchObject([{ status: 0, runner_id: 42 }]);
  });

  it('a 409 elsewhere stays final (only /jitconfig says a name is taken)', async () => {
    await vm.startVm(vm.proxyAttributes({ 'github-runner-mode': 'token' }));
    vm.proxy.queue('POST', '/register', { status: 409, json: { error: 'conflict' } });
    const result = await vm.runScript('register.sh');
    expectExit(result, 1);
    expect(vm.proxy.calls).toHaveLength(1);
  });

  it.each([429, 500, 502, 503, 504])('retries a %i', async (status) => {
    await vm.startVm(vm.proxyAttributes());
    vm.proxy.queue('POST', '/jitconfig', { status, json: { error: 'not now' } });
    const result = await vm.runScript('register.sh');
    expectExit(result, 0);
    expect(jitConfigsIssued()).toHaveLength(2);
    expect(result.stderr).toContain(`HTTP ${status}: not now; retrying in`);
  });

  it('retries a network error', async () => {
    await vm.startVm(vm.proxyAttributes());
    vm.proxy.queue('POST', '/jitconfig', { destroy: true });
    const result = await vm.runScript('register.sh');
    expectExit(result, 0);
    expect(jitConfigsIssued()).toHaveLength(2);
    expect(result.stderr).toMatch(/network error \(.+\); retrying/);
  });

  it('retries a 503 after its Retry-After', async () => {
    await vm.startVm(vm.proxyAttributes());
    vm.proxy.queue('POST', '/jitconfig', {
      status: 503,
      headers: { 'Retry-After': '1' },
      json: { error: 'GitHub is unavailable' },
    });
    const result = await vm.runScript('register.sh');
    expectExit(result, 0);
    const [first, second] = vm.proxy.calls;
    expect(vm.proxy.calls).toHaveLength(2);
    // The backoff alone would be under 0.2 s.
    expect(second!.time - first!.time).toBeGreaterThanOrEqual(950);
    expect(result.stderr).toMatch(
      /HTTP 503: GitHub is unavailable; retrying in 1\.000s as Retry-After asks \(attempt 2 of 4\)/,
    );
  });

  // Issue 14 §3: GitHub's secondary rate limit, passed on by the proxy as 503 with Retry-After: 60.
  it('a Retry-After longer than what is left of the budget is cut to it, then tried once more', async () => {
    await vm.startVm(vm.proxyAttributes());
    vm.proxy.queue('POST', '/jitconfig', {
      status: 503,
      headers: { 'Retry-After': '60' },
      json: { error: 'GitHub rate limit: secondary rate limit exceeded' },
    });
    const result = await vm.runScript('register.sh', { RETRY_DEADLINE_SECONDS: '2' });
    expectExit(result, 0);
    expect(jitConfigsIssued()).toHaveLength(2);
    expect(result.stderr).toMatch(/all that is left of the 2s budget \(Retry-After 60s\)/);
  });

  it('gives up once the budget is used up, with the last error', async () => {
    await vm.startVm(vm.proxyAttributes());
    const limited = {
      status: 503,
      headers: { 'Retry-After': '60' },
      json: { error: 'GitHub rate limit: secondary rate limit exceeded' },
    };
    vm.proxy.queue('POST', '/jitconfig', limited, limited);
    const result = await vm.runScript('register.sh', { RETRY_DEADLINE_SECONDS: '2' });
    expectExit(result, 1);
    expect(jitConfigsIssued()).toHaveLength(2);
    expect(result.stderr).toMatch(
      /failed after 2 attempts in \d+s: HTTP 503: GitHub rate limit: secondary rate limit exceeded \(the 2s budget is used up\)/,
    );
    expect(vm.standinRecords()).toEqual([]);
  });

  it('gives up after RETRY_MAX_ATTEMPTS with the last error', async () => {
    await vm.startVm(vm.proxyAttributes());
    const failure = { status: 500, json: { error: 'internal error' } };
    vm.proxy.queue('POST', '/jitconfig', failure, failure, failure, failure);
    const result = await vm.runScript('register.sh', { RETRY_MAX_ATTEMPTS: '3' });
    expectExit(result, 1);
    expect(jitConfigsIssued()).toHaveLength(3);
    expect(result.stderr).toContain('failed after 3 attempts: HTTP 500: internal error');
    expect(vm.standinRecords()).toEqual([]);
  });

  it('reports an unreachable metadata server after retrying', async () => {
    const result = await vm.runScript('register.sh', {
      GCE_METADATA_HOST: '127.0.0.1:9',
      RETRY_MAX_ATTEMPTS: '2',
    });
    expectExit(result, 1);
    expect(result.stderr).toMatch(
      /reading the instance attributes from the metadata server failed after 2 attempts: network error/,
    );
  });
});

// Issue 14 §4, case B: token mode on a VM whose name a stale offline runner still holds.
describe('register.sh in token mode, with a stale runner of the same name', () => {
  beforeEach(() => vm.existingRunnerNames.add(INSTANCE_NAME));

  it('the emulated GitHub refuses config.sh without --replace, as GitHub does', async () => {
    const result = await vm.runScript(
      path.join(vm.runnerDir, 'config.sh'),
      { ACTIONS_RUNNER_INPUT_TOKEN: 'REG-stand-in-token' },
      { args: ['--unattended', '--url', 'https://github.com/my-org', '--name', INSTANCE_NAME] },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`HTTP 409: A runner exists with the same name ${INSTANCE_NAME}.`);
  });

  it('replaces it and runs', async () => {
    await vm.startVm(vm.proxyAttributes({ 'github-runner-mode': 'token' }));
    const result = await vm.runScript('register.sh');
    expectExit(result, 0);
    expect(vm.github.calls[0]).toMatchObject({
      path: '/_sandbox/runners/register',
      body: { name: INSTANCE_NAME, replace: true },
    });
    expect(recordsOf('run.sh', 'exited')).toMatchObject([{ status: 0, runner_id: 43 }]);
  });
});

describe('deregister.sh', () => {
  it('asks DELETE /runner with the scope', async () => {
    await vm.startVm(vm.proxyAttributes());
    const result = await vm.runScript('deregister.sh');
    expectExit(result, 0);
    expect(vm.proxy.calls).toMatchObject([
      {
        method: 'DELETE',
        path: '/runner',
        body: { scope: 'my-org' },
        auth: 'valid',
        instanceName: INSTANCE_NAME,
      },
    ]);
    expect(result.stdout).toBe(`removed runner ${INSTANCE_NAME} (id 42) from my-org\n`);
  });

  it('treats "not registered" as success', async () => {
    await vm.startVm(vm.proxyAttributes());
    vm.proxy.queue('DELETE', '/runner', {
      json: { deleted: false, message: `no runner named "${INSTANCE_NAME}" is registered in my-org` },
    });
    const result = await vm.runScript('deregister.sh');
    expectExit(result, 0);
    expect(result.stdout).toContain(`no runner to remove: no runner named "${INSTANCE_NAME}"`);
  });

  it('tries again while the runner is busy', async () => {
    await vm.startVm(vm.proxyAttributes());
    vm.proxy.queue('DELETE', '/runner', { status: 409, json: { error: 'runner is running a job' } });
    const result = await vm.runScript('deregister.sh');
    expectExit(result, 0);
    expect(vm.proxy.calls).toHaveLength(2);
    expect(result.stderr).toContain(
      'the runner is running a job (HTTP 409: runner is running a job); trying again',
    );
  });

  it('fails with status 3 when the runner stays busy', async () => {
    await vm.startVm(vm.proxyAttributes());
    const busy = { status: 409, json: { error: 'runner is running a job' } };
    vm.proxy.queue('DELETE', '/runner', busy, busy, busy);
    const result = await vm.runScript('deregister.sh', { DEREGISTER_BUSY_RETRIES: '2' });
    expectExit(result, 3);
    expect(vm.proxy.calls).toHaveLength(3);
    expect(result.stderr).toContain('error: the runner is still running a job after 3 attempts');
  });

  it('remove-token: gets a remove token and runs `config.sh remove` with it in the environment, nothing else', async () => {
    await vm.startVm(vm.proxyAttributes({ 'github-runner-deregister': 'remove-token' }));
    fs.writeFileSync(
      path.join(vm.runnerDir, '.runner'),
      JSON.stringify({ AgentId: 43, AgentName: INSTANCE_NAME, GitHubUrl: 'https://github.com/my-org' }),
    );
    const result = await vm.runScript('deregister.sh', { RUNNER_DIR: 'actions-runner' });

    expectExit(result, 0);
    expect(vm.proxy.calls).toMatchObject([{ method: 'POST', path: '/remove', body: { scope: 'my-org' } }]);
    const removal = vm.github.calls[0]?.body as { token: string };
    expect(vm.github.calls[0]).toMatchObject({
      path: '/_sandbox/runners/remove',
      body: { url: 'https://github.com/my-org', name: INSTANCE_NAME },
    });
    // `remove` takes --token (here from the environment), --pat and --local; not --unattended.
    expect(vm.standinRecords()[0]).toMatchObject({
      script: 'config.sh',
      args: ['remove'],
      env: { ACTIONS_RUNNER_INPUT_TOKEN: { present: true, sha256: sha256(removal.token) } },
    });
    expect(fs.existsSync(path.join(vm.runnerDir, '.runner'))).toBe(false);
  });

  it('remove-token: nothing to do when no runner is configured', async () => {
    await vm.startVm(vm.proxyAttributes({ 'github-runner-deregister': 'remove-token' }));
    const result = await vm.runScript('deregister.sh');
    expectExit(result, 0);
    expect(result.stdout).toContain('nothing to deregister');
    expect(vm.proxy.calls).toEqual([]);
  });
});

describe('delete-self.sh', () => {
  it('asks the deleter to delete this VM with a token for the deleter', async () => {
    await vm.startVm({ 'instance-deleter-url': vm.deleter.url });
    const result = await vm.runScript('delete-self.sh');
    expectExit(result, 0);
    expect(vm.deleter.calls).toMatchObject([
      { method: 'DELETE', path: '/', query: {}, auth: 'valid', instanceName: INSTANCE_NAME },
    ]);
    expect(result.stdout).toBe(`instance deleter: MIG presubmit is deleting ${INSTANCE_NAME}\n`);
  });

  it("shows the deleter's refusal and exits 1", async () => {
    await vm.startVm({ 'instance-deleter-url': vm.deleter.url });
    vm.deleter.queue('DELETE', '/', {
      status: 403,
      json: { error: 'instance is not in a managed instance group' },
    });
    const result = await vm.runScript('delete-self.sh');
    expectExit(result, 1);
    expect(vm.deleter.calls).toHaveLength(1);
    expect(result.stderr).toContain('HTTP 403: instance is not in a managed instance group');
  });

  it('needs instance-deleter-url', async () => {
    await vm.startVm({});
    const result = await vm.runScript('delete-self.sh');
    expectExit(result, 2);
    expect(result.stderr).toContain('instance attribute instance-deleter-url is required but not set');
    expect(vm.deleter.calls).toEqual([]);
  });
});

describe('idle-check.sh asking GitHub through the token proxy (the default)', () => {
  const idleAttributes = () => ({ 'instance-deleter-url': vm.deleter.url, 'token-proxy-url': vm.proxy.url });
  const runner = { id: 42, name: INSTANCE_NAME, status: 'online' as const };

  it('does nothing while GitHub says the runner is busy', async () => {
    await vm.startVm(idleAttributes());
    vm.runnerOnGitHub = { ...runner, busy: true };
    const result = await vm.runScript('idle-check.sh');
    expectExit(result, 0);
    expect(vm.proxy.calls).toMatchObject([
      { method: 'GET', path: '/runner', auth: 'valid', instanceName: INSTANCE_NAME },
    ]);
    expect(result.stdout).toBe(
      `busy: runner ${INSTANCE_NAME} (id 42) is online and running a job; nothing to do\n`,
    );
    expect(vm.deleter.calls).toEqual([]);
  });

  it('asks for a conditional delete when GitHub says the runner is idle', async () => {
    await vm.startVm(idleAttributes());
    vm.runnerOnGitHub = { ...runner, busy: false };
    const result = await vm.runScript('idle-check.sh');
    expectExit(result, 0);
    expect(vm.deleter.calls).toMatchObject([
      { method: 'DELETE', path: '/', query: { if: 'scale-down' }, auth: 'valid' },
    ]);
    expect(result.stderr).toContain(`idle: runner ${INSTANCE_NAME} (id 42) is online and not running a job`);
    expect(result.stdout).toBe(
      `idle: instance deleter: deleted above-recommendation: MIG presubmit wants to shrink: deleting ${INSTANCE_NAME}\n`,
    );
  });

  it('keeps the VM, exiting 0, when the deleter says "not now" or that a request is already in flight', async () => {
    await vm.startVm(idleAttributes());
    vm.runnerOnGitHub = { ...runner, busy: false };
    vm.deleter.queue(
      'DELETE',
      '/',
      { json: { deleted: false, reason: 'mig-unstable', message: 'the MIG is changing; ask again later' } },
      { status: 429, json: { error: 'a request of this VM is already in flight' } },
    );
    const notNow = await vm.runScript('idle-check.sh');
    expectExit(notNow, 0);
    expect(notNow.stdout).toBe(
      'idle: instance deleter: kept mig-unstable: the MIG is changing; ask again later\n',
    );
    const inFlight = await vm.runScript('idle-check.sh');
    expectExit(inFlight, 0);
    expect(inFlight.stdout).toContain('already in flight; keeping this VM for now');
  });

  it('asks the deleter once and never again after a failure: a retry would act on a stale busy check', async () => {
    await vm.startVm(idleAttributes());
    vm.runnerOnGitHub = { ...runner, busy: false };
    vm.deleter.queue('DELETE', '/', { status: 503, json: { error: 'Compute rate limit' } });
    const result = await vm.runScript('idle-check.sh');
    expectExit(result, 1);
    expect(result.stderr).toContain('HTTP 503: Compute rate limit');
    expect(vm.deleter.calls).toHaveLength(1);
  });

  it('counts no runner at all (404: an ephemeral runner is gone after its job) as idle', async () => {
    await vm.startVm(idleAttributes());
    const result = await vm.runScript('idle-check.sh');
    expectExit(result, 0);
    expect(result.stderr).toContain(
      `idle: GitHub lists no runner for this VM: no runner is bound to instance ${INSTANCE_NAME}`,
    );
    expect(vm.deleter.calls).toHaveLength(1);
  });

  it('is not fooled by a process a job named Runner.Worker', async () => {
    await vm.startVm(idleAttributes());
    vm.runnerOnGitHub = { ...runner, busy: false };
    await withFakeWorker(async () => {
      const result = await vm.runScript('idle-check.sh');
      expectExit(result, 0);
      expect(result.stdout).toContain('idle: instance deleter:');
    });
    expect(vm.deleter.calls).toHaveLength(1);
  });

  it.each([
    ['the proxy has no GET /runner yet (405)', { status: 405, json: { error: 'method not allowed' } }],
    ['the proxy refuses (403)', { status: 403, json: { error: 'caller outside the policy' } }],
    ['an answer without busy', { json: { id: 42, name: INSTANCE_NAME } }],
    ['an answer that is not JSON', { text: 'busy' }],
  ])('keeps the VM when it cannot tell: %s', async (_what, reply) => {
    await vm.startVm(idleAttributes());
    vm.proxy.queue('GET', '/runner', reply);
    const result = await vm.runScript('idle-check.sh');
    expectExit(result, 1);
    expect(result.stderr).toContain('could not tell whether the runner is running a job; keeping this VM');
    expect(vm.deleter.calls).toEqual([]);
  });

  it('keeps the VM when the proxy is unreachable or keeps failing', async () => {
    await vm.startVm({ ...idleAttributes(), 'token-proxy-url': 'http://127.0.0.1:9' });
    const unreachable = await vm.runScript('idle-check.sh', { RETRY_MAX_ATTEMPTS: '2' });
    expectExit(unreachable, 1);
    expect(unreachable.stderr).toMatch(/failed after 2 attempts: network error/);
    expect(unreachable.stderr).toContain('keeping this VM');

    vm.metadata!.setAttribute('token-proxy-url', vm.proxy.url);
    const failing = { status: 503, json: { error: 'signing certificates unreachable' } };
    vm.proxy.queue('GET', '/runner', failing, failing);
    const down = await vm.runScript('idle-check.sh', { RETRY_MAX_ATTEMPTS: '2' });
    expectExit(down, 1);
    expect(down.stderr).toContain('HTTP 503: signing certificates unreachable');
    expect(vm.deleter.calls).toEqual([]);
  });

  it('needs the proxy URL, and names the sources it knows', async () => {
    await vm.startVm({ 'instance-deleter-url': vm.deleter.url });
    const result = await vm.runScript('idle-check.sh');
    expectExit(result, 2);
    expect(result.stderr).toContain('instance attribute token-proxy-url is required but not set');
    vm.metadata!.setAttribute('github-runner-idle-source', 'pgrep');
    const unknown = await vm.runScript('idle-check.sh');
    expectExit(unknown, 2);
    expect(unknown.stderr).toContain("github-runner-idle-source must be proxy or process, got 'pgrep'");
  });

  it('keeps the path of a deleter URL that has one', async () => {
    await vm.startVm({ ...idleAttributes(), 'instance-deleter-url': `${vm.deleter.url}/instance-deleter` });
    const result = await vm.runScript('idle-check.sh');
    expectExit(result, 0);
    expect(vm.deleter.calls).toMatchObject([
      { path: '/instance-deleter', query: { if: 'scale-down' }, auth: 'valid' },
    ]);
  });
});

describe('idle-check.sh with the local process check (github-runner-idle-source=process)', () => {
  const processAttributes = () => ({
    'instance-deleter-url': vm.deleter.url,
    'github-runner-idle-source': 'process',
  });

  it('does nothing while the busy check says busy, and never asks the proxy', async () => {
    await vm.startVm(processAttributes());
    const result = await vm.runScript('idle-check.sh', { RUNNER_BUSY_CHECK: 'exit 0' });
    expectExit(result, 0);
    expect(result.stdout).toContain('busy: a Runner.Worker process is running');
    expect(vm.deleter.calls).toEqual([]);
    expect(vm.proxy.calls).toEqual([]);
  });

  it('asks for a conditional delete when the busy check says idle', async () => {
    await vm.startVm(processAttributes());
    const result = await vm.runScript('idle-check.sh', { RUNNER_BUSY_CHECK: 'exit 1' });
    expectExit(result, 0);
    expect(vm.deleter.calls).toMatchObject([{ method: 'DELETE', path: '/', query: { if: 'scale-down' } }]);
  });

  it('keeps the VM when the busy check fails', async () => {
    await vm.startVm(processAttributes());
    const result = await vm.runScript('idle-check.sh', { RUNNER_BUSY_CHECK: 'exit 5' });
    expectExit(result, 1);
    expect(result.stderr).toContain('the local busy check exited with status 5');
    expect(result.stderr).toContain('could not tell whether the runner is running a job; keeping this VM');
    expect(vm.deleter.calls).toEqual([]);
  });

  it('by default sees a Runner.Worker process as busy', async () => {
    await vm.startVm(processAttributes());
    await withFakeWorker(async () => {
      const busy = await vm.runScript('idle-check.sh');
      expect(busy.stdout).toContain('busy:');
    });
    const idle = await vm.runScript('idle-check.sh');
    expect(idle.stdout).toContain('idle:');
    expect(vm.deleter.calls).toHaveLength(1);
  });
});

/** Runs `body` while a process named Runner.Worker (a renamed sleep) runs, as a job could start one. */
async function withFakeWorker(body: () => Promise<void>): Promise<void> {
  const sleepPath = spawnSync('bash', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim();
  const worker = path.join(vm.work, 'Runner.Worker');
  fs.symlinkSync(sleepPath, worker);
  const job = spawn(worker, ['30'], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await body();
  } finally {
    job.kill();
  }
  await new Promise((resolve) => job.on('exit', resolve));
}

describe('shellcheck', () => {
  const available = spawnSync('shellcheck', ['--version']).status === 0;
  const scripts = [
    ...fs
      .readdirSync(VM_DIR)
      .filter((f) => f.endsWith('.sh'))
      .map((f) => path.join(VM_DIR, f)),
    ...fs
      .readdirSync(STANDIN_DIR)
      .filter((f) => f.endsWith('.sh'))
      .map((f) => path.join(STANDIN_DIR, f)),
  ];

  // CI installs shellcheck (Debian's package); locally the check is skipped, visibly, when it is missing.
  (available || process.env.CI === 'true' ? it : it.skip)(
    'finds nothing in the VM and stand-in scripts',
    () => {
      expect(available).toBe(true);
      expect(scripts.map((s) => path.basename(s))).toEqual(
        expect.arrayContaining(['job-started.sh', 'job-completed.sh', 'trust-rule.sh']),
      );
      const result = spawnSync('shellcheck', ['-x', ...scripts], { cwd: ROOT, encoding: 'utf8' });
      expect(result.stdout + result.stderr).toBe('');
      expect(result.status).toBe(0);
    },
  );
});

describe('systemd units', () => {
  const available = spawnSync('systemd-analyze', ['--version']).status === 0;

  // Optional: systemd-analyze is not in every CI image. The install paths point at this checkout's scripts.
  (available ? it : it.skip)('pass systemd-analyze verify', () => {
    const unitDir = path.join(vm.work, 'units');
    fs.mkdirSync(unitDir);
    const units = fs.readdirSync(path.join(VM_DIR, 'systemd'));
    for (const unit of units) {
      const text = fs.readFileSync(path.join(VM_DIR, 'systemd', unit), 'utf8');
      fs.writeFileSync(path.join(unitDir, unit), text.replaceAll('/opt/gce-github-runners', VM_DIR));
    }
    expect(units.sort()).toEqual([
      'github-runner-deregister.service',
      'github-runner-idle.service',
      'github-runner-idle.timer',
      'github-runner.service',
    ]);
    const result = spawnSync('systemd-analyze', ['verify', ...units.map((u) => path.join(unitDir, u))], {
      encoding: 'utf8',
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
