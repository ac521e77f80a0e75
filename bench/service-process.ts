import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { spawnNode as spawnNodeProcess } from '#sandbox/node-process';
import type { NodeProcess } from '#sandbox/node-process';

/** A process the benchmark spawned, with its port. */
export interface SpawnedProcess extends NodeProcess {
  port: number;
}

/** Starts `node entry` with `env` (and nothing else of this process's environment) on `port`. */
export function spawnNode(entry: string, env: Record<string, string>, port: number): SpawnedProcess {
  return { ...spawnNodeProcess(entry, env), port };
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
