/**
 * Starts the sandbox the way a user does — `npm start` (or `node scripts/start.js`) in a child process,
 * with free ports — and reads what it prints; and looks at the processes it left. For the tests of
 * test/sandbox/. `npm test` builds first; run `npm run build` before running one of them on its own.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const START_SCRIPT = path.join(ROOT, 'scripts', 'start.js');
/** npm, found on PATH as a user's shell finds it. */
export const NPM = 'npm';

/** A machine busy with other tests may take this long to start the sandbox; a broken one fails at once. */
export const START_DEADLINE_MS = 180_000;

export interface Started {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit status (or 128 + signal number, as a shell reports it). */
  exited: Promise<number>;
}

/** The environment a test starts the sandbox with: the test's PATH and the given variables, nothing else. */
export function sandboxEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? ROOT,
    SANDBOX_PROXY_PORT: '0',
    SANDBOX_DELETER_PORT: '0',
    SANDBOX_AUTOSCALER_PORT: '0',
    SANDBOX_STATUS_PORT: '0',
    SANDBOX_IAP_PORT: '0',
    ...extra,
  };
}

/** Runs `command args` in the repository root with exactly `env`, collecting its output. */
export function launch(command: string, args: string[], env: Record<string, string>): Started {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? osSignal(signal) : 0))),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

function osSignal(signal: NodeJS.Signals): number {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal as string] ?? 0;
}

/** Waits until `started` has printed `marker` on stdout; throws with its output if it exits or takes too long. */
export async function waitForOutput(started: Started, marker: string | RegExp): Promise<string> {
  const deadline = Date.now() + START_DEADLINE_MS;
  let exited = false;
  started.exited.then(
    () => (exited = true),
    () => {},
  );
  const seen = () =>
    typeof marker === 'string' ? started.stdout().includes(marker) : marker.test(started.stdout());
  while (!seen()) {
    if (exited || Date.now() > deadline) {
      throw new Error(
        `${exited ? 'exited' : 'still running'} without printing ${String(marker)}\n` +
          `stdout:\n${started.stdout()}\nstderr:\n${started.stderr()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return started.stdout();
}

/** The sandbox's banner ends with this line. */
export const BANNER_END = '/_sandbox/jobs/<its id>';

/** What the banner says: the service URLs, the VMs, and the commands to paste. */
export interface Banner {
  proxyUrl: string;
  deleterUrl: string;
  autoscalerUrl: string;
  /** The fleet status service, and the stand-in for IAP in front of it (its `/status`). */
  statusUrl: string;
  statusPageUrl: string;
  githubUrl: string;
  computeUrl: string;
  vms: Array<{ name: string; metadataHost: string }>;
  policyLine: string;
  /** The indented lines after "Try it", in order: what a user pastes. */
  commands: string[];
}

export function parseBanner(stdout: string): Banner {
  const url = (label: string) => {
    const match = new RegExp(`^  ${label}\\s+(http://\\S+)`, 'm').exec(stdout);
    if (!match) throw new Error(`the banner names no ${label}:\n${stdout}`);
    return match[1]!;
  };
  const vms = [...stdout.matchAll(/^ {2}(gh-runner-\S+)\s+(127\.0\.0\.1:\d+)\s/gm)].map((m) => ({
    name: m[1]!,
    metadataHost: m[2]!,
  }));
  const tryIt = stdout.slice(stdout.indexOf('\nTry it'));
  return {
    proxyUrl: url('token proxy'),
    deleterUrl: url('instance deleter'),
    autoscalerUrl: url('autoscaler'),
    statusUrl: url('fleet status'),
    statusPageUrl: url('status page'),
    githubUrl: url('fake GitHub API'),
    computeUrl: url('fake Compute API'),
    vms,
    policyLine: /^Caller policy: .*$/m.exec(stdout)?.[0] ?? '',
    commands: tryIt
      .split('\n')
      .filter((line) => line.startsWith('  '))
      .map((line) => line.slice(2)),
  };
}

export const portOf = (url: string) => Number(new URL(url).port);

/** Whether something accepts TCP connections on `host:port`. */
export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(5000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Every process now running: pid → parent pid and command line (`ps`, on Linux and macOS alike). */
export function processTable(): Map<number, { ppid: number; args: string }> {
  const table = new Map<number, { ppid: number; args: string }>();
  const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (match) table.set(Number(match[1]), { ppid: Number(match[2]), args: match[3]! });
  }
  return table;
}

/** `pid` and every process below it, now. */
export function processTree(pid: number): Array<{ pid: number; args: string }> {
  const table = processTable();
  const tree: Array<{ pid: number; args: string }> = [];
  const visit = (id: number) => {
    const entry = table.get(id);
    if (entry) tree.push({ pid: id, args: entry.args });
    for (const [child, { ppid }] of table) if (ppid === id) visit(child);
  };
  visit(pid);
  return tree;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie has exited; only its parent has not collected it yet.
    return !/^Z/.test(execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim());
  } catch {
    return false;
  }
}

/** Polls until `condition` holds, for at most `ms`; returns whether it did. */
export async function eventually(condition: () => boolean | Promise<boolean>, ms = 60_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Stops a started sandbox (and, failing that, every process under it), for `afterAll`. */
export async function stopAll(started: Started | undefined): Promise<void> {
  if (!started?.child.pid) return;
  const tree = processTree(started.child.pid);
  if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([started.exited, new Promise((resolve) => (timer = setTimeout(resolve, 30_000)))]);
  clearTimeout(timer);
  for (const { pid } of tree) if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** The environment of a process (Linux only), as a map; undefined where /proc is not there. */
export function environmentOf(pid: number): Map<string, string> | undefined {
  const file = `/proc/${pid}/environ`;
  if (!fs.existsSync(file)) return undefined;
  const entries = fs
    .readFileSync(file, 'utf8')
    .split('\0')
    .filter((entry) => entry.includes('='))
    .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] as const);
  return new Map(entries);
}
