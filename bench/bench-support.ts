import crypto from 'node:crypto';
import { SANDBOX_ORG, SANDBOX_PROJECT, SERVICE_ACCOUNTS, startSandbox } from '#sandbox/sandbox';
import type { Sandbox } from '#sandbox/sandbox';
import type { BenchOptions } from './parse-bench-options.js';
import { processCpuMs } from './process-cpu.js';
import { runLoad } from './run-load.js';
import type { LoadRequest, LoadResult } from './run-load.js';

export const CONCURRENCIES = [1, 16, 64] as const;
/** The proxy's default spacing of GitHub writes (GITHUB_WRITE_INTERVAL_MS). */
export const DEFAULT_WRITE_INTERVAL_MS = 350;
const benchStarted = Date.now();
export const log = (message: string) =>
  process.stderr.write(
    `[bench ${((Date.now() - benchStarted) / 1000).toFixed(1).padStart(5)} s] ${message}\n`,
  );
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const mb = (mib: number | undefined) => (mib === undefined ? undefined : (mib * 1024 * 1024) / 1e6);
export const hex = () => crypto.randomBytes(4).toString('hex');

/** Hands out the next entry of a list, round and round; counts how often it wrapped. */
export function rotation<T>(items: readonly T[]): { next(): T; readonly wrapped: number } {
  let index = 0;
  return {
    next: () => items[index++ % items.length]!,
    get wrapped() {
      return Math.max(0, Math.floor((index - 1) / items.length));
    },
  };
}

export interface VmIdentity {
  zone: string;
  instanceId: string;
  instanceName: string;
}

/** A pool of valid identity tokens, `perVm` per VM (different `iat`, so every token differs). */
export function mintPool(
  sandbox: Sandbox,
  audience: string,
  email: string,
  vms: readonly VmIdentity[],
  perVm: number,
): string[] {
  const now = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let i = 0; i < perVm; i += 1) {
    for (const vm of vms) {
      tokens.push(
        sandbox.issuer.mintIdentityToken({
          audience,
          email,
          iat: now - i,
          compute: { ...SANDBOX_PROJECT, ...vm },
        }),
      );
    }
  }
  return tokens;
}

export const identityOf = (vm: { zone: string; instanceId: string; name: string }): VmIdentity => ({
  zone: vm.zone,
  instanceId: vm.instanceId,
  instanceName: vm.name,
});

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** REST calls the fake GitHub received between `from` and `to` (ms) that `filter` keeps. */
export function githubCallsBetween(
  sandbox: Sandbox,
  from: number,
  to: number,
  filter: (call: { path: string; body: unknown }) => boolean = () => true,
): number {
  return sandbox.github.controls.calls.filter(
    (call) => call.time >= from && call.time <= to && !call.path.startsWith('/_sandbox') && filter(call),
  ).length;
}

/** Calls made for repository `my-org/<repo>`: its runner endpoints and its installation tokens. */
export const forRepo = (repo: string) => (call: { path: string; body: unknown }) =>
  call.path.startsWith(`/repos/${SANDBOX_ORG}/${repo}/`) ||
  (call.path.endsWith('/access_tokens') &&
    ((call.body as { repositories?: string[] } | undefined)?.repositories ?? []).includes(repo));

/**
 * Runs one load and times it, so upstream calls can be counted inside its window; with `pid`, also the CPU
 * time that process used meanwhile ({@link processCpuMs}).
 */
export async function timedLoad(
  url: string,
  connections: number,
  request: LoadRequest,
  options: BenchOptions,
  amount?: number,
  pid?: number,
): Promise<{ load: LoadResult; from: number; to: number; cpuMs?: number }> {
  const cpuBefore = processCpuMs(pid);
  const from = Date.now();
  const load = await runLoad({
    url,
    connections,
    request,
    durationSeconds: options.durationSeconds,
    ...(amount === undefined ? {} : { amount }),
    ...(options.maxRequestsPerRun === undefined ? {} : { maxRequests: options.maxRequestsPerRun }),
  });
  const to = Date.now();
  const cpuAfter = processCpuMs(pid);
  return {
    load,
    from,
    to,
    ...(cpuBefore === undefined || cpuAfter === undefined ? {} : { cpuMs: cpuAfter - cpuBefore }),
  };
}

/** Waits until the fake stops receiving calls that `filter` keeps (queued writes draining), at most `capMs`. */
export async function drain(
  sandbox: Sandbox,
  filter: (call: { path: string; body: unknown }) => boolean,
  quietMs: number,
  capMs: number,
) {
  const deadline = Date.now() + capMs;
  let count = -1;
  while (Date.now() < deadline) {
    const now = sandbox.github.controls.calls.filter((call) => filter(call)).length;
    if (now === count) return;
    count = now;
    await sleep(quietMs);
  }
}

/** Lines the services printed, and the secrets none of them may contain. */
export interface LogAudit {
  lines: string[];
  secrets: Set<string>;
}

function auditFindings(audit: LogAudit, sandbox: Sandbox): string[] {
  const secrets = new Set(audit.secrets);
  for (const issued of sandbox.github.issuedTokens.runner) secrets.add(issued.token);
  for (const issued of sandbox.github.issuedTokens.installation) secrets.add(issued.token);
  secrets.add(sandbox.github.app.privateKeyPkcs1Pem.split('\n')[1]!);
  const text = audit.lines.join('\n');
  return [...secrets]
    .filter((secret) => secret.length >= 8 && text.includes(secret))
    .map((s) => `${s.slice(0, 6)}…`);
}

/** Records the identity tokens of a pool for the log audit (their signatures are unique per token). */
export function remember(audit: LogAudit, tokens: readonly string[]): void {
  for (const token of tokens) {
    audit.secrets.add(token.split('.')[2]!);
    audit.secrets.add(token.split('.')[1]!);
  }
}

export async function withSandbox<T>(
  options: BenchOptions,
  audit: LogAudit,
  serviceEnv: Record<string, string>,
  work: (sandbox: Sandbox) => Promise<T>,
): Promise<T> {
  const sandbox = await startSandbox({
    proxyPort: 0,
    deleterPort: 0,
    // Free ports for every service: other sandboxes may run on the machine (their defaults are fixed).
    autoscalerPort: 0,
    githubLatencyMs: options.githubLatencyMs,
    vms: { presubmit: 1, postsubmit: 4 },
    serviceEnv: { LOG_LEVEL: 'warn', ...serviceEnv },
    onServiceLog: (service, line) => audit.lines.push(`[${service}] ${line}`),
  });
  try {
    const result = await work(sandbox);
    const leaks = auditFindings(audit, sandbox);
    if (leaks.length > 0) throw new Error(`log audit: service logs contain secrets: ${leaks.join(', ')}`);
    return result;
  } finally {
    await sandbox.stop();
  }
}

export const registerBody = (scope: string) => JSON.stringify({ scope });

/**
 * Tokens of `size` postsubmit VMs (they may have registration tokens; presubmit ones are jitOnly): the
 * sandbox's, then more like them, each its own instance, since the proxy limits how many requests one
 * instance may have waiting (MUTATION_QUEUE_LIMIT_PER_CALLER).
 */
export function postsubmitPool(sandbox: Sandbox, audit: LogAudit, size: number): string[] {
  const own = sandbox
    .vms()
    .filter((vm) => vm.kind === 'postsubmit')
    .map(identityOf);
  const vms = Array.from({ length: size }, (_, i): VmIdentity => {
    const vm = own[i % own.length]!;
    if (i < own.length) return vm;
    return {
      ...vm,
      instanceId: String(BigInt(vm.instanceId) + BigInt(i)),
      instanceName: `${vm.instanceName}${i.toString(36)}`,
    };
  });
  const tokens = mintPool(sandbox, sandbox.proxyUrl, SERVICE_ACCOUNTS.postsubmit, vms, 1);
  remember(audit, tokens);
  return tokens;
}

export const withCeiling = (ceiling: Map<number, LoadResult>, connections: number) => {
  const result = ceiling.get(connections);
  return result ? { ceiling: result } : {};
};
