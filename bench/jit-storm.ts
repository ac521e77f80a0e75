import { SANDBOX_ORG } from '#sandbox/sandbox';
import { retryAfterMsOf, VM_RETRY, vmRetries, vmRetryWaitMs } from '#sandbox/vm-retry';
import type { Sandbox } from '#sandbox/sandbox';
import { bearer, DEFAULT_WRITE_INTERVAL_MS, log, registerBody, sleep } from './bench-support.js';
import type { LogAudit } from './bench-support.js';
import type { BenchOptions } from './parse-bench-options.js';
import { processCpuMs } from './process-cpu.js';
import { presubmitVmTokens } from './proxy-rows.js';
import type { LoadRow } from './render-report.js';

/** GitHub's documented secondary limit on REST points per minute, shared by the whole installation. */
export const GITHUB_POINTS_PER_MINUTE = 900;

/** What one boot storm of JIT VMs cost: wall time, the VMs' waits, and every limit that was hit. */
export interface JitStorm {
  row: LoadRow;
  /** Answers by status over all attempts of all VMs (`200`, `429 queue full`, `429 per caller`, …). */
  answers: Record<string, number>;
  /** Requests the fake GitHub refused for its points budget (its secondary rate limit). */
  githubLimitHits: number;
  /** VMs that used up their retry budget without a JIT config. */
  gaveUp: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The answer's kind for the tally: the proxy's two 429s are told apart by their messages. */
function answerKind(status: number, body: string): string {
  if (status !== 429) return String(status);
  if (/already has \d+ GitHub changes waiting/.test(body)) return '429 per caller';
  if (/GitHub changes waiting/.test(body)) return '429 queue full';
  return '429';
}

/**
 * A boot storm: `vms` fresh JIT VMs each ask `POST /jitconfig` once, all at the same moment, and retry as
 * deploy/vm/lib.sh does (sandbox/vm-retry.ts: 429 and 5xx, after its backoff or a longer Retry-After,
 * within its budget). The fake GitHub enforces GitHub's points budget meanwhile, so a secondary rate limit
 * is hit if the proxy's write spacing lets one happen. Wall time runs from the first request to the last VM done.
 */
export async function jitStorm(sandbox: Sandbox, audit: LogAudit, vms: number): Promise<JitStorm> {
  const tokens = presubmitVmTokens(sandbox, audit, vms);
  const answers: Record<string, number> = {};
  const waits: number[] = [];
  let gaveUp = 0;
  sandbox.github.limitPointsPerMinute(GITHUB_POINTS_PER_MINUTE);
  const refusalsBefore = sandbox.github.pointsLimitRefusals;
  const callsBefore = sandbox.github.controls.calls.length;
  const pid = sandbox.servicePids.tokenProxy;
  const cpuBefore = processCpuMs(pid);
  const started = Date.now();

  const boot = async (token: string): Promise<void> => {
    const vmStarted = Date.now();
    for (let attempt = 1; ; attempt += 1) {
      let status = 0;
      let body = '';
      let retryAfterMs = 0;
      try {
        const res = await fetch(`${sandbox.proxyUrl}/jitconfig`, {
          method: 'POST',
          headers: { ...bearer(token), 'content-type': 'application/json' },
          body: registerBody(SANDBOX_ORG),
          signal: AbortSignal.timeout(60_000),
        });
        status = res.status;
        body = await res.text();
        retryAfterMs = retryAfterMsOf(res.headers.get('retry-after'));
      } catch {
        status = 0;
      }
      const kind = status === 0 ? 'network error' : answerKind(status, body);
      answers[kind] = (answers[kind] ?? 0) + 1;
      if (status === 200) {
        waits.push(Date.now() - vmStarted);
        return;
      }
      const elapsed = Date.now() - vmStarted;
      if (!vmRetries(status) || attempt >= VM_RETRY.attempts || elapsed >= VM_RETRY.budgetMs) {
        gaveUp += 1;
        return;
      }
      await sleep(vmRetryWaitMs(attempt, retryAfterMs, VM_RETRY.budgetMs - elapsed));
    }
  };
  await Promise.all(tokens.map(boot));
  const wallMs = Date.now() - started;
  const cpuAfter = processCpuMs(pid);
  sandbox.github.limitPointsPerMinute(undefined);
  const githubLimitHits = sandbox.github.pointsLimitRefusals - refusalsBefore;
  const githubCalls = sandbox.github.controls.calls.length - callsBefore;
  // The GitHub calls by kind: a POST that found the name taken (409) and a stale runner's DELETE are
  // writes that served no new VM.
  const callKinds: Record<string, number> = {};
  for (const call of sandbox.github.controls.calls.slice(callsBefore)) {
    const kind = `${call.method} ${call.path.replace(/\/\d+$/, '/{id}').replace(/^\/(orgs|repos)\/[^/]+(\/[^/]+)?\/actions/, '…')}`;
    callKinds[kind] = (callKinds[kind] ?? 0) + 1;
  }
  waits.sort((a, b) => a - b);
  const statusCounts: Record<string, number> = {};
  for (const [kind, count] of Object.entries(answers)) {
    const status = kind.split(' ')[0]!;
    statusCounts[status] = (statusCounts[status] ?? 0) + count;
  }
  const attempts = Object.values(answers).reduce((a, b) => a + b, 0);
  log(
    `JIT boot storm of ${vms}: ${waits.length} configs in ${(wallMs / 1000).toFixed(1)} s, ${gaveUp} gave up, answers ${JSON.stringify(answers)}, GitHub limit hits ${githubLimitHits}, GitHub calls ${JSON.stringify(callKinds)}`,
  );
  return {
    row: {
      id: `jit-storm/${vms}`,
      scenario: `/jitconfig boot storm: ${vms} VMs ask once at the same moment, retrying as the VM script does (wall ${(wallMs / 1000).toFixed(1)} s; latencies are each VM's wait for its config)`,
      connections: vms,
      load: {
        requests: waits.length,
        durationSeconds: wallMs / 1000,
        requestsPerSecond: waits.length / (wallMs / 1000),
        p50: percentile(waits, 50),
        p99: percentile(waits, 99),
        errors: gaveUp,
        non2xx: attempts - waits.length,
        statusCounts,
      },
      upstreamCalls: githubCalls,
      ...(cpuBefore === undefined || cpuAfter === undefined ? {} : { cpuMs: cpuAfter - cpuBefore }),
    },
    answers,
    githubLimitHits,
    gaveUp,
  };
}

/** The report's notes on the JIT boot storms: limits hit, and the extrapolation to 1000 VMs when not run. */
export function jitStormNotes(storms: readonly JitStorm[], options: BenchOptions): string[] {
  const notes = storms.map((storm) => {
    const answers = Object.entries(storm.answers)
      .map(([kind, count]) => `${count}× ${kind}`)
      .join(', ');
    return `JIT boot storm of ${storm.row.connections} VMs: ${storm.row.load.requests} configs in ${storm.row.load.durationSeconds.toFixed(1)} s (${storm.row.load.requestsPerSecond.toFixed(2)}/s), ${storm.gaveUp} VMs gave up; answers over all attempts: ${answers}; GitHub secondary-limit refusals (fake GitHub enforcing ${GITHUB_POINTS_PER_MINUTE} points/min): ${storm.githubLimitHits}.`;
  });
  const largest = storms.at(-1);
  if (largest && !storms.some((storm) => storm.row.connections >= 1000) && !options.quick) {
    const rate = largest.row.load.requestsPerSecond;
    notes.push(
      `JIT boot storm of 1000 VMs: not run (\`--storm-1000\` runs it); extrapolated from the storm of ${largest.row.connections} at ${rate.toFixed(2)} configs/s: about ${(1000 / rate).toFixed(0)} s${1000 / rate > VM_RETRY.budgetMs / 1000 ? `, longer than the VM script's ${VM_RETRY.budgetMs / 1000} s retry budget, so without more write budget or a longer RETRY_DEADLINE_SECONDS the last VMs would give up` : ''}.`,
    );
  }
  notes.push(
    `JIT boot storms: every JIT config is one generate-jitconfig POST (5 of the installation's ${GITHUB_POINTS_PER_MINUTE} points a minute), which caps the whole installation near ${GITHUB_POINTS_PER_MINUTE / 5 / 60} configs/s whatever the proxy does; one proxy instance at the default GITHUB_WRITE_INTERVAL_MS=${DEFAULT_WRITE_INTERVAL_MS} spends ${((60_000 / DEFAULT_WRITE_INTERVAL_MS) * 5).toFixed(0)} points/min. The deploy scripts split the budget across proxy instances and the autoscaler (deploy/lib.sh, github_write_budget).`,
  );
  return notes;
}
