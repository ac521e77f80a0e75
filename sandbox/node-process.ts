import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Whether a server can listen on loopback `port` now (it is released again before this resolves). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** Ports {@link freePort} has handed out in this process. */
const handedOut = new Set<number>();

/** The first port of the kernel's ephemeral range (Linux's default 32768 where it cannot be read). */
function ephemeralPortsFrom(): number {
  try {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const port = Number(low);
    return Number.isInteger(port) && port > 0 ? port : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * A free loopback port for a child process to listen on (released before the child binds it). Picked at
 * random below the kernel's ephemeral range, which `listen(0)` and outgoing connections draw from: a port
 * from that range could be handed to another `listen(0)` (a fake in this process, a service of a sandbox
 * another test is starting) between this probe and the child's bind, and the probe waiting for the child
 * would then take the other server's answers for the child's.
 */
export async function freePort(): Promise<number> {
  const from = 10_000;
  const to = ephemeralPortsFrom() - 1;
  for (let attempt = 0; to - from >= 1000 && attempt < 50; attempt += 1) {
    const port = from + crypto.randomInt(to - from + 1);
    // Never the same port twice in one process: a sandbox asks for several before any child binds one.
    if (!handedOut.has(port) && (await canListen(port))) {
      handedOut.add(port);
      return port;
    }
  }
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** The repository root: the nearest folder above this file with a package.json (works from src or dist). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root');
    dir = parent;
  }
  return dir;
}

/**
 * Node's arguments that preload `dist/sandbox/exit-with-parent.js` (see sandbox/exit-with-parent.ts): the
 * child exits when its parent goes. The child needs an `'ipc'` entry in its stdio.
 */
export function exitWithParentArgs(): string[] {
  const preload = path.join(repoRoot(), 'dist', 'sandbox', 'exit-with-parent.js');
  if (!fs.existsSync(preload)) throw new Error(`${preload} is missing: run \`npm run build\` first`);
  return ['--import', pathToFileURL(preload).href];
}

/** A Node process started from a built entry point. */
export interface NodeProcess {
  child: ChildProcess;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** The last lines it printed, for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node entry` with exactly `env` (nothing else of this process's environment leaks in), passing
 * each line it prints to `onLine` and keeping the last 50 for {@link NodeProcess.output}.
 *
 * The child runs in its own process group, so a Ctrl-C in the terminal reaches only this process, which
 * stops its children in order; and it exits when this process goes, however it goes (see
 * {@link exitWithParentArgs}).
 */
export function spawnNode(
  entry: string,
  env: Record<string, string>,
  onLine: (line: string) => void = () => {},
): NodeProcess {
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  const child = spawn(process.execPath, [...exitWithParentArgs(), entry], {
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: true,
  });
  const lines: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue;
      lines.push(line);
      if (lines.length > 50) lines.shift();
      onLine(line);
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => lines.join('\n'),
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One HTTP GET on loopback: its status, or undefined when nothing answered (yet). */
export function probe(port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

export interface WaitUntilAnsweringOptions {
  /** Default `/`. */
  path?: string;
  /** The status to wait for; any answer by default. */
  status?: number;
  /** Default 60 s: a service starting on a busy machine is slow, not broken; one that exits fails at once. */
  timeoutMs?: number;
  /** Between probes; default 50 ms (the bench, timing cold starts, polls every 2 ms). */
  intervalMs?: number;
}

/**
 * Polls a started process with GET `path` on loopback `port` until it answers (with `status`, when
 * given); returns the status. Throws, with the process's last output, when it exits or `timeoutMs`
 * passes first. The one "wait until it answers" of the sandbox and the bench.
 */
export async function waitUntilAnswering(
  spawned: NodeProcess,
  port: number,
  options: WaitUntilAnsweringOptions = {},
): Promise<number> {
  const { path = '/', status: until, timeoutMs = 60_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await probe(port, path);
    if (status !== undefined && (until === undefined || status === until)) return status;
    const { exitCode, signalCode } = spawned.child;
    if (exitCode !== null || signalCode !== null) {
      const how = signalCode === null ? `with status ${exitCode}` : `(killed by ${signalCode})`;
      const output = spawned.output();
      throw new Error(`exited during start-up ${how}${output === '' ? '' : `:\n${output}`}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`did not answer on port ${port} within ${timeoutMs / 1000} s:\n${spawned.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
/**
 * The environment the deleter is deployed with beyond its configuration (services/instance-deleter/runtime.env,
 * which deploy/instance-deleter.sh reads too): V8 heap bounds and malloc arenas.
 */
export function deleterRuntimeEnv(): Record<string, string> {
  const file = fs.readFileSync(path.join(repoRoot(), 'services/instance-deleter/runtime.env'), 'utf8');
  return Object.fromEntries(
    file
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}
