import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

/** A process the benchmark spawned, with its port. */
export interface SpawnedProcess {
  child: ChildProcess;
  port: number;
  /** The last lines it printed, for error messages. */
  output(): string;
  stop(): Promise<void>;
}

/** A free loopback port (released before the caller binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Starts `node entry` with `env` (and nothing else of this process's environment). */
export function spawnNode(entry: string, env: Record<string, string>, port: number): SpawnedProcess {
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  const child = spawn(process.execPath, [entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const collect = (chunk: Buffer) => {
    lines.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((line) => line !== ''),
    );
    lines.splice(0, Math.max(0, lines.length - 30));
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    port,
    output: () => lines.join('\n'),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
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

/**
 * Polls `path` (every 2 ms) until it answers `until` (any status when undefined); returns the status.
 * Throws when the process exits or `timeoutMs` passes first.
 */
export async function waitForAnswer(
  spawned: SpawnedProcess,
  path: string,
  until: number | undefined,
  timeoutMs = 15_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await probe(spawned.port, path);
    if (status !== undefined && (until === undefined || status === until)) return status;
    if (spawned.child.exitCode !== null)
      throw new Error(`process exited during start-up:\n${spawned.output()}`);
    if (Date.now() > deadline)
      throw new Error(`no answer on port ${spawned.port} within ${timeoutMs} ms:\n${spawned.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Resident set size of a process in MiB, from /proc (Linux) or `ps`. */
export function residentMemoryMiB(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
    if (kb !== undefined) return Number(kb) / 1024;
  } catch {
    // not Linux: ask ps
  }
  try {
    const kb = Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim());
    return Number.isFinite(kb) && kb > 0 ? kb / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pid of this process's child running `entry` (the sandbox does not expose its children's pids).
 * Only direct children are considered, so services other runs started on this machine are not mistaken.
 */
export function childPidRunning(entry: string): number | undefined {
  let found: number | undefined;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the parenthesised command: state, ppid, …
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmdline.includes(entry)) found = Number(name);
    } catch {
      // the process went away while we looked
    }
  }
  return found;
}
