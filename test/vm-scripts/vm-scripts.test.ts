import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import type { FakeMetadataServer, SimulatedVm } from '#fakes/metadata-server';
import { startServiceStub } from './service-stub.js';
import type { ServiceStub, StubCall } from './service-stub.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const VM_DIR = path.join(ROOT, 'deploy/vm');
const STANDIN_DIR = path.join(ROOT, 'sandbox/runner-standin');
const INSTANCE_NAME = 'gh-presubmit-x7k2';

const VM: SimulatedVm = {
  projectId: 'runners-prod',
  projectNumber: 123456789012,
  zone: 'us-central1-a',
  instanceId: '9223372036854775809',
  instanceName: INSTANCE_NAME,
  serviceAccountEmail: 'runner-presubmit@runners-prod.iam.gserviceaccount.com',
  attributes: {},
};

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

/** Every secret a service handed out; no script output may contain one. */
const secrets = new Set<string>();
const secret = (prefix: string) => {
  const value = `${prefix}${crypto.randomBytes(18).toString('base64url')}`;
  secrets.add(value);
  return value;
};

/** A JIT config laid out like the real one (and the fake GitHub's): base64 of a map of file names. */
function jitConfigFor(name: string, runnerId: number): string {
  const config = b64({
    '.runner': b64({
      AgentId: runnerId,
      AgentName: name,
      PoolId: 2,
      GitHubUrl: 'https://github.com/my-org',
      WorkFolder: '_work',
      Ephemeral: true,
    }),
    '.credentials': b64({ Scheme: 'SandboxJitSecret', Data: { secret: secret('jit-secret-') } }),
  });
  secrets.add(config);
  return config;
}

interface StandinRecord {
  script: string;
  event: string;
  args: string[];
  env: Record<string, string | { present: boolean; sha256: string; length: number }>;
  secret_args: string[];
  status?: number;
  runner_id?: number | null;
}

interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let issuer: FakeGoogleIssuer;
let proxy: ServiceStub;
let deleter: ServiceStub;
let github: ServiceStub;
let metadata: FakeMetadataServer | undefined;
let work: string;
let runnerDir: string;
let standinLog: string;
const results: ScriptResult[] = [];

beforeAll(async () => {
  issuer = await startFakeGoogleIssuer();
  const bodySecrets = (body: unknown) =>
    ['encoded_jit_config', 'token']
      .map((key) => (body as Record<string, unknown> | undefined)?.[key])
      .filter((value): value is string => typeof value === 'string');
  proxy = await startServiceStub({
    certsUrl: issuer.certsUrl,
    routes: [
      [
        'POST',
        '/jitconfig',
        (call) => {
          const name = call.instanceName ?? 'unknown';
          const labels = (call.body as { labels?: string[] }).labels ?? ['self-hosted'];
          return { json: { encoded_jit_config: jitConfigFor(name, 42), runner: { id: 42, name, labels } } };
        },
      ],
      ['POST', '/register', () => ({ json: { token: secret('REG'), expires_at: '2030-01-01T00:00:00Z' } })],
      ['POST', '/remove', () => ({ json: { token: secret('REM'), expires_at: '2030-01-01T00:00:00Z' } })],
      [
        'DELETE',
        '/runner',
        (call) => ({ json: { deleted: true, runner: { id: 42, name: call.instanceName } } }),
      ],
    ],
  });
  deleter = await startServiceStub({
    certsUrl: issuer.certsUrl,
    audiences: (url) => [url, `${url}/instance-deleter`],
    routes: [
      [
        'DELETE',
        /^\/(instance-deleter)?$/,
        (call) => ({
          text:
            call.query.if === 'scale-down'
              ? `MIG presubmit wants to shrink: deleting ${call.instanceName}\n`
              : `MIG presubmit is deleting ${call.instanceName}\n`,
        }),
      ],
    ],
  });
  github = await startServiceStub({
    bodySecrets,
    routes: [
      ['POST', '/_sandbox/runners/jit', () => ({ json: { id: 42, name: INSTANCE_NAME, status: 'online' } })],
      [
        'POST',
        '/_sandbox/runners/register',
        (call) => ({
          status: 201,
          json: { id: 43, name: (call.body as { name: string }).name, runner_group_id: 2 },
        }),
      ],
      ['POST', '/_sandbox/runners/remove', () => ({ status: 204 })],
      ['POST', /^\/_sandbox\/runners\/\d+\/(busy|exit)$/, () => ({ json: {} })],
    ],
  });
});

afterAll(async () => {
  await Promise.all([issuer.close(), proxy.close(), deleter.close(), github.close()]);
});

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'vm-scripts-'));
  fs.mkdirSync(path.join(work, 'tmp'));
  // The runner directory holds links to the stand-in, so the stand-in keeps its .runner file here.
  runnerDir = path.join(work, 'actions-runner');
  fs.mkdirSync(runnerDir);
  for (const file of ['run.sh', 'config.sh', 'standin-lib.sh']) {
    fs.symlinkSync(path.join(STANDIN_DIR, file), path.join(runnerDir, file));
  }
  standinLog = path.join(work, 'standin.jsonl');
  for (const stub of [proxy, deleter, github]) {
    stub.calls.length = 0;
    stub.argvLeaks.length = 0;
  }
  results.length = 0;
});

afterEach(async () => {
  await metadata?.close();
  metadata = undefined;
  // No secret in any output or in the stand-in's record, none in any argv, no temporary files left.
  const recorded = fs.existsSync(standinLog) ? fs.readFileSync(standinLog, 'utf8') : '';
  const everything = [...results.flatMap((r) => [r.stdout, r.stderr]), recorded].join('\n');
  const leaked = [...secrets, ...proxy.tokens, ...deleter.tokens].filter((s) => everything.includes(s));
  expect(leaked).toEqual([]);
  expect([...proxy.argvLeaks, ...deleter.argvLeaks, ...github.argvLeaks]).toEqual([]);
  expect(fs.readdirSync(path.join(work, 'tmp'))).toEqual([]);
  fs.rmSync(work, { recursive: true, force: true });
});

/** Starts the fake metadata server for a VM with these instance attributes. */
async function startVm(attributes: Record<string, string>): Promise<FakeMetadataServer> {
  metadata = await startFakeMetadataServer({ issuer, vm: { ...VM, attributes } });
  return metadata;
}

const proxyAttributes = (extra: Record<string, string> = {}) => ({
  'github-runner-scope': 'my-org',
  'token-proxy-url': proxy.url,
  ...extra,
});

/** Runs a VM script with a clean environment pointed at the fakes; short backoff keeps the suite fast. */
function runScript(script: string, env: Record<string, string> = {}): Promise<ScriptResult> {
  const child = spawn('bash', [path.join(VM_DIR, script)], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      TMPDIR: path.join(work, 'tmp'),
      GCE_METADATA_HOST: metadata?.host ?? '127.0.0.1:9',
      RUNNER_DIR: runnerDir,
      RUNNER_STANDIN_LOG: standinLog,
      SANDBOX_GITHUB_URL: github.url,
      RETRY_BASE_SECONDS: '0.05',
      RETRY_MAX_DELAY_SECONDS: '0.2',
      RETRY_MAX_ATTEMPTS: '4',
      RETRY_DEADLINE_SECONDS: '20',
      DEREGISTER_BUSY_DELAY_SECONDS: '0.05',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  // Far above what any script here needs (RETRY_DEADLINE_SECONDS is 20): only a hung script meets it.
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      results.push(result);
      resolve(result);
    });
  });
}

/** Asserts a script's exit status; on a mismatch the diff shows its stdout and stderr. */
const expectExit = (result: ScriptResult, code: number) => expect(result).toMatchObject({ code });

const standinRecords = (): StandinRecord[] =>
  fs.existsSync(standinLog)
    ? fs
        .readFileSync(standinLog, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as StandinRecord)
    : [];

const summary = (calls: StubCall[]) => calls.map((c) => `${c.method} ${c.path}`);
const jitConfigsIssued = () => proxy.calls.filter((c) => c.path === '/jitconfig').map((c) => c.instanceName);

describe('register.sh', () => {
  it('JIT mode: gets a config with the VM identity and hands it to run.sh in the environment', async () => {
    await startVm(
      proxyAttributes({ 'github-runner-labels': ' linux-x64, gpu ,', 'github-runner-group': 'presubmit' }),
    );
    const result = await runScript('register.sh');

    expect(result).toMatchObject({ code: 0 });
    expect(proxy.calls).toHaveLength(1);
    expect(proxy.calls[0]).toMatchObject({
      method: 'POST',
      path: '/jitconfig',
      body: { scope: 'my-org', labels: ['linux-x64', 'gpu'], runner_group: 'presubmit' },
      auth: 'valid',
      instanceName: INSTANCE_NAME,
    });
    expect(result.stderr).toContain(`got a JIT config for runner ${INSTANCE_NAME} (id 42)`);

    const jitSent = (github.calls[0]?.body as { encoded_jit_config: string }).encoded_jit_config;
    expect(summary(github.calls)).toEqual([
      'POST /_sandbox/runners/jit',
      'POST /_sandbox/runners/42/busy',
      'POST /_sandbox/runners/42/busy',
      'POST /_sandbox/runners/42/exit',
    ]);
    const [invoked, exited] = standinRecords();
    expect(invoked).toMatchObject({
      script: 'run.sh',
      event: 'invoked',
      args: [],
      secret_args: [],
      env: { ACTIONS_RUNNER_INPUT_JITCONFIG: { present: true, sha256: sha256(jitSent) } },
    });
    expect(exited).toMatchObject({ script: 'run.sh', event: 'exited', status: 0, runner_id: 42 });
    // The ephemeral runner dropped its local registration after the job.
    expect(fs.existsSync(path.join(runnerDir, '.runner'))).toBe(false);
  });

  it('JIT mode without labels or group sends only the scope', async () => {
    await startVm(proxyAttributes({ 'token-proxy-url': `${proxy.url}/` }));
    const result = await runScript('register.sh');
    expectExit(result, 0);
    expect(proxy.calls.map((c) => c.body)).toEqual([{ scope: 'my-org' }]);
    expect(proxy.calls[0]?.auth).toBe('valid');
  });

  it("exits with the runner's exit status", async () => {
    await startVm(proxyAttributes());
    const result = await runScript('register.sh', { RUNNER_STANDIN_EXIT_CODE: '7' });
    expectExit(result, 7);
    expect(result.stderr).toContain('the runner exited with status 7');
  });

  it('token mode: config.sh gets URL, name, labels and group, and the token only in the environment', async () => {
    await startVm(
      proxyAttributes({
        'github-runner-scope': 'my-org/my-repo',
        'github-runner-mode': 'token',
        'github-runner-labels': 'linux-x64,gpu',
        'github-runner-group': 'presubmit',
      }),
    );
    const result = await runScript('register.sh');

    expectExit(result, 0);
    expect(proxy.calls).toMatchObject([
      { method: 'POST', path: '/register', body: { scope: 'my-org/my-repo' }, auth: 'valid' },
    ]);
    const records = standinRecords();
    expect(records.map((r) => `${r.script} ${r.event}`)).toEqual([
      'config.sh invoked',
      'config.sh configured',
      'run.sh invoked',
      'run.sh exited',
    ]);
    const registration = github.calls[0]?.body as { token: string };
    expect(records[0]).toMatchObject({
      args: [
        '--unattended',
        '--ephemeral',
        '--disableupdate',
        '--url',
        'https://github.com/my-org/my-repo',
        '--name',
        INSTANCE_NAME,
        '--labels',
        'linux-x64,gpu',
        '--runnergroup',
        'presubmit',
      ],
      secret_args: [],
      env: { ACTIONS_RUNNER_INPUT_TOKEN: { present: true, sha256: sha256(registration.token) } },
    });
    expect(records[2]).toMatchObject({ args: [], env: {} });
    expect(github.calls[0]).toMatchObject({
      path: '/_sandbox/runners/register',
      body: {
        url: 'https://github.com/my-org/my-repo',
        name: INSTANCE_NAME,
        labels: ['linux-x64', 'gpu'],
        runner_group: 'presubmit',
        ephemeral: true,
      },
    });
    expect(summary(github.calls).slice(1)).toEqual([
      'POST /_sandbox/runners/43/busy',
      'POST /_sandbox/runners/43/busy',
      'POST /_sandbox/runners/43/exit',
    ]);
  });

  it('token mode: an enterprise scope and another GitHub URL make the config.sh URL', async () => {
    await startVm(
      proxyAttributes({
        'github-runner-scope': 'enterprise:acme',
        'github-runner-mode': 'token',
        'github-url': 'https://ghe.example.com/',
      }),
    );
    const result = await runScript('register.sh', { SANDBOX_GITHUB_URL: '' });
    expectExit(result, 0);
    const args = standinRecords()[0]?.args ?? [];
    expect(args.slice(args.indexOf('--url'), args.indexOf('--url') + 2)).toEqual([
      '--url',
      'https://ghe.example.com/enterprises/acme',
    ]);
    expect(args).not.toContain('--labels');
    expect(args).not.toContain('--runnergroup');
  });

  it('names every missing required attribute, exits 2 and calls nothing', async () => {
    await startVm({ 'github-runner-mode': 'tokens' });
    const result = await runScript('register.sh');
    expectExit(result, 2);
    expect(result.stderr).toContain('instance attribute github-runner-scope is required but not set');
    expect(result.stderr).toContain('instance attribute token-proxy-url is required but not set');
    expect(result.stderr).toContain("github-runner-mode must be jit or token, got 'tokens'");
    expect(proxy.calls).toEqual([]);
    expect(standinRecords()).toEqual([]);
  });

  it('a 4xx is final: no retry, the error message shown, exit 1, no runner started', async () => {
    await startVm(proxyAttributes({ 'github-runner-labels': 'gpu' }));
    proxy.queue('POST', '/jitconfig', {
      status: 403,
      json: { error: 'label "gpu" is not allowed for this caller' },
    });
    const result = await runScript('register.sh');
    expectExit(result, 1);
    expect(result.stderr).toContain(
      'error: getting a JIT runner config for my-org from the token proxy failed: HTTP 403: label "gpu" is not allowed for this caller',
    );
    expect(jitConfigsIssued()).toHaveLength(1);
    expect(standinRecords()).toEqual([]);
  });

  it('retries a 503 after its Retry-After', async () => {
    await startVm(proxyAttributes());
    proxy.queue('POST', '/jitconfig', {
      status: 503,
      headers: { 'Retry-After': '1' },
      json: { error: 'GitHub is unavailable' },
    });
    const result = await runScript('register.sh');
    expectExit(result, 0);
    const [first, second] = proxy.calls;
    expect(proxy.calls).toHaveLength(2);
    // The backoff alone would be under 0.2 s.
    expect(second!.time - first!.time).toBeGreaterThanOrEqual(950);
    expect(result.stderr).toMatch(/HTTP 503: GitHub is unavailable; retrying in 1\.000s \(attempt 2 of 4\)/);
  });

  it('retries a 429 and a network error', async () => {
    await startVm(proxyAttributes());
    proxy.queue('POST', '/jitconfig', { status: 429, json: { error: 'slow down' } }, { destroy: true });
    const result = await runScript('register.sh');
    expectExit(result, 0);
    expect(jitConfigsIssued()).toHaveLength(3);
    expect(result.stderr).toContain('HTTP 429: slow down; retrying');
    expect(result.stderr).toMatch(/network error \(.+\); retrying/);
  });

  it('gives up after RETRY_MAX_ATTEMPTS with the last error', async () => {
    await startVm(proxyAttributes());
    const failure = { status: 500, json: { error: 'internal error' } };
    proxy.queue('POST', '/jitconfig', failure, failure, failure, failure);
    const result = await runScript('register.sh', { RETRY_MAX_ATTEMPTS: '3' });
    expectExit(result, 1);
    expect(jitConfigsIssued()).toHaveLength(3);
    expect(result.stderr).toContain('failed after 3 attempts: HTTP 500: internal error');
    expect(standinRecords()).toEqual([]);
  });

  it('reports an unreachable metadata server after retrying', async () => {
    const result = await runScript('register.sh', {
      GCE_METADATA_HOST: '127.0.0.1:9',
      RETRY_MAX_ATTEMPTS: '2',
    });
    expectExit(result, 1);
    expect(result.stderr).toMatch(
      /reading the instance attributes from the metadata server failed after 2 attempts: network error/,
    );
  });
});

describe('deregister.sh', () => {
  it('asks DELETE /runner with the scope', async () => {
    await startVm(proxyAttributes());
    const result = await runScript('deregister.sh');
    expectExit(result, 0);
    expect(proxy.calls).toMatchObject([
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
    await startVm(proxyAttributes());
    proxy.queue('DELETE', '/runner', {
      json: { deleted: false, message: `no runner named "${INSTANCE_NAME}" is registered in my-org` },
    });
    const result = await runScript('deregister.sh');
    expectExit(result, 0);
    expect(result.stdout).toContain(`no runner to remove: no runner named "${INSTANCE_NAME}"`);
  });

  it('tries again while the runner is busy', async () => {
    await startVm(proxyAttributes());
    proxy.queue('DELETE', '/runner', { status: 409, json: { error: 'runner is running a job' } });
    const result = await runScript('deregister.sh');
    expectExit(result, 0);
    expect(proxy.calls).toHaveLength(2);
    expect(result.stderr).toContain(
      'the runner is running a job (HTTP 409: runner is running a job); trying again',
    );
  });

  it('fails with status 3 when the runner stays busy', async () => {
    await startVm(proxyAttributes());
    const busy = { status: 409, json: { error: 'runner is running a job' } };
    proxy.queue('DELETE', '/runner', busy, busy, busy);
    const result = await runScript('deregister.sh', { DEREGISTER_BUSY_RETRIES: '2' });
    expectExit(result, 3);
    expect(proxy.calls).toHaveLength(3);
    expect(result.stderr).toContain('error: the runner is still running a job after 3 attempts');
  });

  it('remove-token: gets a remove token and runs config.sh remove with it in the environment', async () => {
    await startVm(proxyAttributes({ 'github-runner-deregister': 'remove-token' }));
    fs.writeFileSync(
      path.join(runnerDir, '.runner'),
      JSON.stringify({ AgentId: 43, AgentName: INSTANCE_NAME, GitHubUrl: 'https://github.com/my-org' }),
    );
    const result = await runScript('deregister.sh');

    expectExit(result, 0);
    expect(proxy.calls).toMatchObject([{ method: 'POST', path: '/remove', body: { scope: 'my-org' } }]);
    const removal = github.calls[0]?.body as { token: string };
    expect(github.calls[0]).toMatchObject({
      path: '/_sandbox/runners/remove',
      body: { url: 'https://github.com/my-org', name: INSTANCE_NAME },
    });
    expect(standinRecords()[0]).toMatchObject({
      script: 'config.sh',
      args: ['remove', '--unattended'],
      env: { ACTIONS_RUNNER_INPUT_TOKEN: { present: true, sha256: sha256(removal.token) } },
    });
    expect(fs.existsSync(path.join(runnerDir, '.runner'))).toBe(false);
  });

  it('remove-token: nothing to do when no runner is configured', async () => {
    await startVm(proxyAttributes({ 'github-runner-deregister': 'remove-token' }));
    const result = await runScript('deregister.sh');
    expectExit(result, 0);
    expect(result.stdout).toContain('nothing to deregister');
    expect(proxy.calls).toEqual([]);
  });
});

describe('delete-self.sh', () => {
  it('asks the deleter to delete this VM with a token for the deleter', async () => {
    await startVm({ 'instance-deleter-url': deleter.url });
    const result = await runScript('delete-self.sh');
    expectExit(result, 0);
    expect(deleter.calls).toMatchObject([
      { method: 'DELETE', path: '/', query: {}, auth: 'valid', instanceName: INSTANCE_NAME },
    ]);
    expect(result.stdout).toBe(`instance deleter: MIG presubmit is deleting ${INSTANCE_NAME}\n`);
  });

  it("shows the deleter's refusal and exits 1", async () => {
    await startVm({ 'instance-deleter-url': deleter.url });
    deleter.queue('DELETE', '/', {
      status: 403,
      json: { error: 'instance is not in a managed instance group' },
    });
    const result = await runScript('delete-self.sh');
    expectExit(result, 1);
    expect(deleter.calls).toHaveLength(1);
    expect(result.stderr).toContain('HTTP 403: instance is not in a managed instance group');
  });

  it('needs instance-deleter-url', async () => {
    await startVm({});
    const result = await runScript('delete-self.sh');
    expectExit(result, 2);
    expect(result.stderr).toContain('instance attribute instance-deleter-url is required but not set');
    expect(deleter.calls).toEqual([]);
  });
});

describe('idle-check.sh', () => {
  it('does nothing while the runner is busy', async () => {
    await startVm({ 'instance-deleter-url': deleter.url });
    const result = await runScript('idle-check.sh', { RUNNER_BUSY_CHECK: 'exit 0' });
    expectExit(result, 0);
    expect(result.stdout).toContain('busy: the runner is running a job; nothing to do');
    expect(deleter.calls).toEqual([]);
  });

  it('asks for a conditional delete when the runner is idle', async () => {
    await startVm({ 'instance-deleter-url': deleter.url });
    const result = await runScript('idle-check.sh', { RUNNER_BUSY_CHECK: 'exit 1' });
    expectExit(result, 0);
    expect(deleter.calls).toMatchObject([
      { method: 'DELETE', path: '/', query: { if: 'scale-down' }, auth: 'valid' },
    ]);
    expect(result.stdout).toBe(
      `idle: instance deleter: MIG presubmit wants to shrink: deleting ${INSTANCE_NAME}\n`,
    );
  });

  it('keeps the path of a deleter URL that has one', async () => {
    await startVm({ 'instance-deleter-url': `${deleter.url}/instance-deleter` });
    const result = await runScript('idle-check.sh', { RUNNER_BUSY_CHECK: 'exit 1' });
    expectExit(result, 0);
    expect(deleter.calls).toMatchObject([
      { path: '/instance-deleter', query: { if: 'scale-down' }, auth: 'valid' },
    ]);
  });

  it('keeps the VM when the busy check fails', async () => {
    await startVm({ 'instance-deleter-url': deleter.url });
    const result = await runScript('idle-check.sh', { RUNNER_BUSY_CHECK: 'exit 5' });
    expectExit(result, 1);
    expect(result.stderr).toContain('could not tell whether the runner is running a job');
    expect(deleter.calls).toEqual([]);
  });

  it('by default sees a Runner.Worker process as busy', async () => {
    await startVm({ 'instance-deleter-url': deleter.url });
    // A process whose name is Runner.Worker, as the runner starts one per job.
    const sleepPath = spawnSync('bash', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim();
    const worker = path.join(work, 'Runner.Worker');
    fs.symlinkSync(sleepPath, worker);
    const job = spawn(worker, ['30'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const busy = await runScript('idle-check.sh');
      expect(busy.stdout).toContain('busy:');
    } finally {
      job.kill();
    }
    await new Promise((resolve) => job.on('exit', resolve));
    const idle = await runScript('idle-check.sh');
    expect(idle.stdout).toContain('idle:');
    expect(deleter.calls).toHaveLength(1);
  });
});

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
    const unitDir = path.join(work, 'units');
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
