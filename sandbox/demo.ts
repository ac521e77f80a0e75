import { createFleetProgress, runFleet } from './demo/fleet.js';
import type { FleetProgress } from './demo/fleet.js';
import { createHttpRecorder } from './demo/http-recorder.js';
import { DEMO_USAGE, DemoUsageError, parseDemoOptions } from './demo/options.js';
import type { DemoOptions } from './demo/options.js';
import { startProgress } from './demo/progress.js';
import { formatSummary, summarize } from './demo/summary.js';
import { brokenVmFates, createWorkloadProgress, formatWorkloadReport, runWorkload } from './demo/workload.js';
import type { WorkloadProgress } from './demo/workload.js';
import { describeServiceExit, SCHEDULER_SERVICE_ACCOUNT, SandboxError, startSandbox } from './sandbox.js';
import type { Sandbox } from './sandbox.js';

function progressLine(p: FleetProgress, startedAt: number): string {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  return (
    `VMs ${p.done}/${p.total} done, ${p.running} running, ${p.failed} failed · ${p.deleted} deleted · ` +
    `attacks ${p.refused}/${p.attacks} refused · ${seconds} s`
  );
}

function workloadLine(p: WorkloadProgress, startedAt: number): string {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  return (
    `${p.phase}: jobs ${p.queued} queued, ${p.started} started, ${p.completed} done · VMs ${p.vms} ` +
    `(peak ${p.peakVms}) · ${p.dropped} deliveries dropped · ${p.reconciliations} reconciliations · ${seconds} s`
  );
}

/**
 * Stops the sandbox on a signal or when one of its services dies, then exits; returns a function telling
 * whether that has begun.
 */
function stopOnInterrupt(sandbox: Sandbox): () => boolean {
  let stopping = false;
  const interrupt = (message: string, status: number) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${message}\nStopping the sandbox…\n`);
    sandbox.stop().then(
      () => process.exit(status),
      (error: unknown) => {
        process.stderr.write(`Stopping the sandbox failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => interrupt(`Interrupted (${signal}).`, 130));
  }
  sandbox.serviceExit.then(
    (exit) => interrupt(`Demo failed: ${describeServiceExit(exit)}`, 1),
    () => {},
  );
  return () => stopping;
}

/** Runs the workload on a fresh sandbox and prints its table; resolves to the exit status. */
async function runWorkloadDemo(options: DemoOptions): Promise<number> {
  const startedAt = performance.now();
  process.stderr.write(
    `Starting the sandbox; then ${options.jobs} jobs in ${options.bursts} bursts, ${options.dropPercent}% of deliveries dropped, ` +
      `${options.brokenPercent}% of VMs never registering…\n`,
  );
  const sandbox = await startSandbox({
    proxyPort: options.proxyPort,
    deleterPort: options.deleterPort,
    autoscalerPort: 0,
    vms: { presubmit: 0, postsubmit: 0 },
    secondMigs: true,
    githubLatencyMs: options.githubLatencyMs,
    jobMs: options.jobMs,
    // A VM that gets no job (a spare: its job ran on another VM) leaves soon, so the fleet shrinks to zero.
    idleTimeoutMs: 10_000,
    deletionDelayMs: 200,
    // A share of the VMs never registers; the reaper deletes each past the pools' boot timeout.
    autoscaledVmFate: brokenVmFates(options.brokenPercent),
    poolSettings: { bootTimeoutSeconds: options.bootTimeoutSeconds },
    serviceEnv: {
      LOG_LEVEL: options.verbose ? 'info' : 'warn',
      // The shortest the autoscaler takes: a VM stuck in the full zone moves to the next MIG after a minute.
      STUCK_CREATING_SECONDS: '60',
      // The demo reads the reaper's figures from GET /fleet as the scheduler's account.
      FLEET_VIEWERS: SCHEDULER_SERVICE_ACCOUNT,
    },
    onServiceLog: options.verbose
      ? (service, line) => process.stderr.write(`[${service}] ${line}\n`)
      : () => {},
  });
  const stopping = stopOnInterrupt(sandbox);
  const progress = createWorkloadProgress();
  const display = startProgress(process.stderr, () => workloadLine(progress, startedAt));
  try {
    const report = await runWorkload(sandbox, options, progress);
    display.stop();
    process.stdout.write(
      options.json ? `${JSON.stringify(report, null, 2)}\n` : `\n${formatWorkloadReport(report)}\n`,
    );
    if (!report.ok) {
      process.stderr.write(`Not clean: ${report.jobs.lost} jobs lost, ${report.vms.left} VMs left.\n`);
    }
    return report.ok ? 0 : 1;
  } finally {
    display.stop();
    if (!stopping()) await sandbox.stop();
  }
}

/** Runs the fleet and its attackers on a fresh sandbox and prints the summary; resolves to the exit status. */
async function runAttackDemo(options: DemoOptions): Promise<number> {
  const startedAt = performance.now();
  process.stderr.write(`Starting the sandbox and a fleet of ${options.vms} VMs…\n`);
  const sandbox = await startSandbox({
    proxyPort: options.proxyPort,
    deleterPort: options.deleterPort,
    // A free port: the sandbox's default 8082 may be taken by an `npm start` running meanwhile.
    autoscalerPort: 0,
    vms: { presubmit: 0, postsubmit: 0 },
    githubLatencyMs: options.githubLatencyMs,
    // A MIG is unstable while a member is DELETING, and a scale-down check answers "not now" until it is
    // stable. With VMs leaving all the time, a realistic delay would keep most idle VMs from ever leaving.
    deletionDelayMs: 0,
    serviceEnv: { LOG_LEVEL: options.verbose ? 'info' : 'warn' },
    onServiceLog: options.verbose
      ? (service, line) => process.stderr.write(`[${service}] ${line}\n`)
      : () => {},
  });
  const stopping = stopOnInterrupt(sandbox);

  const http = createHttpRecorder();
  const progress = createFleetProgress(options.vms);
  const display = startProgress(process.stderr, () => progressLine(progress, startedAt));
  try {
    const fleet = await runFleet(sandbox, http, options, progress);
    display.stop();
    const summary = summarize({
      fleet,
      latencies: http.latencies,
      githubCalls: sandbox.github.controls.calls,
      githubIssued: sandbox.github.issuedTokens,
      migsLeft: Object.fromEntries(Object.values(sandbox.migs).map((mig) => [mig.name, mig.members.size])),
    });
    process.stdout.write(
      options.json ? `${JSON.stringify(summary, null, 2)}\n` : `\n${formatSummary(summary)}\n`,
    );
    return summary.ok ? 0 : 1;
  } finally {
    display.stop();
    if (!stopping()) await sandbox.stop();
  }
}

/**
 * `npm run demo`: a workload of queued jobs through the autoscaler against the local sandbox, or with
 * `--attacks` a fleet of simulated runner VMs, attackers among them.
 */
async function main(): Promise<void> {
  let options: DemoOptions;
  try {
    options = parseDemoOptions();
  } catch (error) {
    if (!(error instanceof DemoUsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${DEMO_USAGE}`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(DEMO_USAGE);
    return;
  }
  process.exitCode = await (options.mode === 'attacks' ? runAttackDemo(options) : runWorkloadDemo(options));
}

main().catch((error: unknown) => {
  const message = error instanceof SandboxError ? error.message : String((error as Error)?.stack ?? error);
  process.stderr.write(`Demo failed: ${message}\n`);
  process.exit(1);
});
