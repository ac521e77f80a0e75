import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jest } from '@jest/globals';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import type { FakeMetadataServer, SimulatedVm } from '#fakes/metadata-server';
import { startServiceStub } from './service-stub.js';
import type { ServiceStub } from './service-stub.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const VM_DIR = path.join(ROOT, 'deploy/vm');
export const STANDIN_DIR = path.join(ROOT, 'sandbox/runner-standin');
export const INSTANCE_NAME = 'gh-presubmit-x7k2';

const VM: SimulatedVm = {
  projectId: 'runners-prod',
  projectNumber: 123456789012,
  zone: 'us-central1-a',
  instanceId: '9223372036854775809',
  instanceName: INSTANCE_NAME,
  serviceAccountEmail: 'runner-presubmit@runners-prod.iam.gserviceaccount.com',
  attributes: {},
};

export const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

/** One line of the runner stand-in's record (sandbox/runner-standin/README.md). */
export interface StandinRecord {
  script: string;
  event: string;
  args: string[];
  env: Record<string, string | { present: boolean; sha256: string; length: number }>;
  secret_args: string[];
  status?: number;
  runner_id?: number | null;
  job?: { event_name: string; repository: string; ref: string };
  started_hook?: HookRun | null;
  steps?: 'ran' | 'skipped';
  completed_hook?: HookRun | null;
  conclusion?: 'success' | 'failure';
}

export interface HookRun {
  path: string;
  status: number;
  output: string;
}

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** What the token proxy stub's `GET /runner` answers: the runner GitHub lists for the calling VM. */
export interface RunnerOnGitHub {
  id: number;
  name: string;
  status: 'online' | 'offline';
  busy: boolean;
}

export interface RunScriptOptions {
  /** Working directory (default: the test's work directory). */
  cwd?: string;
  /** Run as the runner runs a hook: `bash -e <script>`. */
  errexit?: boolean;
  /** Arguments for the script. */
  args?: string[];
}

export interface VmHarness {
  readonly issuer: FakeGoogleIssuer;
  /** Stands in for the token proxy: /jitconfig, /register, /remove, DELETE /runner and GET /runner. */
  readonly proxy: ServiceStub;
  /** Stands in for the instance deleter. */
  readonly deleter: ServiceStub;
  /** Stands in for the fake GitHub's /_sandbox routes, which the runner stand-in calls. */
  readonly github: ServiceStub;
  /** This test's private directory; removed after it. */
  readonly work: string;
  /** A runner directory of links to the stand-in, so the stand-in keeps .runner, .env and _work here. */
  readonly runnerDir: string;
  readonly standinLog: string;
  /** The metadata server of the VM started by startVm, if any. */
  readonly metadata: FakeMetadataServer | undefined;
  /** What `GET /runner` answers in this test (null: 404, no runner). */
  runnerOnGitHub: RunnerOnGitHub | null;
  /** Runner names the GitHub stub already lists (a stale runner of a reused instance name). */
  readonly existingRunnerNames: Set<string>;
  /** Starts the fake metadata server for a VM with these instance attributes. */
  startVm(attributes: Record<string, string>): Promise<FakeMetadataServer>;
  /**
   * Runs a deploy/vm script (or the script at an absolute path) with a clean environment pointed at the
   * fakes; short backoff keeps it fast. Always asynchronous: the stubs answer from this process.
   */
  runScript(script: string, env?: Record<string, string>, options?: RunScriptOptions): Promise<ScriptResult>;
  standinRecords(): StandinRecord[];
  /** Instance attributes for the proxy and a trust rule that allows push jobs. */
  proxyAttributes(extra?: Record<string, string>): Record<string, string>;
}

/**
 * The loopback world the VM scripts run in: a fake Google issuer and metadata server, stubs for the token
 * proxy, the instance deleter and the fake GitHub's sandbox routes, and a runner directory holding the
 * stand-in. Registers jest hooks; after each test, no secret may appear in any output, record or argv, and
 * the scripts' temporary directory must be empty.
 */
export function useVmHarness(): VmHarness {
  // Each test runs real bash scripts that start dozens of processes (curl, jq, the stand-in): well under a
  // second on an idle machine, several seconds each on a busy 2-core one. Give them the time they need.
  jest.setTimeout(120_000);
  let issuer: FakeGoogleIssuer;
  let proxy: ServiceStub;
  let deleter: ServiceStub;
  let github: ServiceStub;
  let metadata: FakeMetadataServer | undefined;
  let work = '';
  let runnerDir = '';
  let standinLog = '';
  let runnerOnGitHub: RunnerOnGitHub | null = null;
  const existingRunnerNames = new Set<string>();
  const results: ScriptResult[] = [];
  /** Every secret a service handed out; no script output may contain one. */
  const secrets = new Set<string>();
  const secret = (prefix: string) => {
    const value = `${prefix}${crypto.randomBytes(18).toString('base64url')}`;
    secrets.add(value);
    return value;
  };

  /** A JIT config laid out like the real one (and the fake GitHub's): base64 of a map of file names. */
  const jitConfigFor = (name: string, runnerId: number): string => {
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
  };

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
        // The contract the proxy's `GET /runner` will keep: GitHub's view of the caller's runner, or 404.
        [
          'GET',
          '/runner',
          (call) =>
            call.auth !== 'valid'
              ? { status: 401, json: { error: call.auth } }
              : runnerOnGitHub
                ? { json: runnerOnGitHub }
                : { status: 404, json: { error: `no runner is bound to instance ${call.instanceName}` } },
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
          // As the deleter answers: JSON for the conditional delete, a line of text for the plain one.
          (call) =>
            call.query.if === 'scale-down'
              ? {
                  json: {
                    deleted: true,
                    reason: 'above-recommendation',
                    message: `MIG presubmit wants to shrink: deleting ${call.instanceName}`,
                  },
                }
              : { text: `MIG presubmit is deleting ${call.instanceName}\n` },
        ],
      ],
    });
    github = await startServiceStub({
      bodySecrets,
      routes: [
        [
          'POST',
          '/_sandbox/runners/jit',
          () => ({ json: { id: 42, name: INSTANCE_NAME, status: 'online' } }),
        ],
        [
          'POST',
          '/_sandbox/runners/register',
          (call) => {
            const body = call.body as { name: string; replace?: boolean };
            // GitHub's answer (and config.sh's words) for a name that is taken, unless --replace.
            if (existingRunnerNames.has(body.name) && body.replace !== true) {
              return { status: 409, json: { message: `A runner exists with the same name ${body.name}.` } };
            }
            return { status: 201, json: { id: 43, name: body.name, runner_group_id: 2 } };
          },
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
    runnerDir = path.join(work, 'actions-runner');
    fs.mkdirSync(runnerDir);
    for (const file of ['run.sh', 'config.sh', 'standin-lib.sh']) {
      fs.symlinkSync(path.join(STANDIN_DIR, file), path.join(runnerDir, file));
    }
    standinLog = path.join(work, 'standin.jsonl');
    for (const stub of [proxy, deleter, github]) stub.reset();
    results.length = 0;
    runnerOnGitHub = null;
    existingRunnerNames.clear();
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

  return {
    get issuer() {
      return issuer;
    },
    get proxy() {
      return proxy;
    },
    get deleter() {
      return deleter;
    },
    get github() {
      return github;
    },
    get work() {
      return work;
    },
    get runnerDir() {
      return runnerDir;
    },
    get standinLog() {
      return standinLog;
    },
    get metadata() {
      return metadata;
    },
    get runnerOnGitHub() {
      return runnerOnGitHub;
    },
    set runnerOnGitHub(value) {
      runnerOnGitHub = value;
    },
    existingRunnerNames,
    startVm: async (attributes) => {
      metadata = await startFakeMetadataServer({ issuer, vm: { ...VM, attributes } });
      return metadata;
    },
    runScript: (script, env = {}, options = {}) => {
      const file = path.isAbsolute(script) ? script : path.join(VM_DIR, script);
      const child = spawn('bash', [...(options.errexit ? ['-e'] : []), file, ...(options.args ?? [])], {
        cwd: options.cwd ?? work,
        env: {
          PATH: scriptPath(),
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
      // Only against a script that hangs for good (a bug): far above what any of them takes.
      const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
      return new Promise((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          const result = { code, stdout, stderr };
          results.push(result);
          resolve(result);
        });
      });
    },
    standinRecords: () => readStandinRecords(standinLog),
    proxyAttributes: (extra = {}) => ({
      'github-runner-scope': 'my-org',
      'token-proxy-url': proxy.url,
      'github-runner-allowed-events': 'push',
      ...extra,
    }),
  };
}

/**
 * The PATH the scripts get: this process's, without the node_modules/.bin entries npm adds. A VM has none,
 * and node_modules here is shared with other checkouts: while it is being reinstalled, looking `bash` up
 * through it can fail (seen as spawn ELOOP).
 */
function scriptPath(): string {
  const entries = (process.env.PATH ?? '/usr/bin:/bin')
    .split(':')
    .filter((entry) => !entry.includes('node_modules'));
  return entries.join(':');
}

/** The JSON lines of a stand-in record file ([] when there is none). */
export function readStandinRecords(file: string): StandinRecord[] {
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as StandinRecord)
    : [];
}
