// `npm run soak`: the reaper's soak in real time, outside CI. The built autoscaler runs as a child process
// (configured from its environment, Compute credentials from a fake metadata server, as on Cloud Run)
// against the loopback fakes of GitHub and Compute Engine, and a simulated fleet lives in this process:
// random jobs, VMs that never register, die mid-job or vanish. It prints the soak's table at the end.
import { parseArgs } from 'node:util';
import { startAutoscalerProcess } from './autoscaler-process.js';
import { formatSoakReport, REAL_SOAK, runSoak, SOAK_PROJECT } from './soak/fleet-simulation.js';
import type { StartSoakTarget } from './soak/fleet-simulation.js';

const USAGE = `npm run soak -- [--seed N] [--minutes M] [--verbose]
  --seed N      the world's random seed (default 1)
  --minutes M   how long, in real minutes (default 5; jobs arrive during the first half)
  --verbose     print the autoscaler's log lines and a progress line per step`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        seed: { type: 'string', default: '1' },
        minutes: { type: 'string', default: '5' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 64;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const seed = Number(values.seed);
  const minutes = Number(values.minutes);
  if (!Number.isInteger(seed) || !(minutes >= 2 && minutes <= 60)) {
    process.stderr.write(`--seed must be a whole number and --minutes from 2 to 60\n${USAGE}\n`);
    return 64;
  }
  const { verbose } = values;
  const durationMs = minutes * 60_000;

  const startChild: StartSoakTarget = (world) =>
    startAutoscalerProcess({
      issuer: world.issuer,
      project: SOAK_PROJECT,
      instanceId: '4000000000000000003',
      env: { LOG_LEVEL: verbose ? 'info' : 'warn', ...world.env },
      ...(verbose && { onLog: (line: string) => process.stderr.write(`[autoscaler] ${line}\n`) }),
    });

  process.stderr.write(`Soak: ${minutes} real minutes, seed ${seed}…\n`);
  const report = await runSoak(
    {
      ...REAL_SOAK,
      durationMs,
      arrivalsMs: durationMs / 2,
      cancelledBurst: { ...REAL_SOAK.cancelledBurst, atMs: durationMs / 2 },
      vanishAtMs: [durationMs * 0.15, durationMs * 0.3],
      seed,
      clock: 'real',
      ...(verbose && { onProgress: (line: string) => process.stderr.write(`${line}\n`) }),
    },
    startChild,
  );
  process.stdout.write(`${formatSoakReport(report)}\n`);
  const clean =
    report.killedJobs.length === 0 &&
    report.leftovers.vms.length === 0 &&
    report.leftovers.runners.length === 0 &&
    report.jobs.unfinished === 0;
  if (!clean) {
    process.stdout.write(
      `NOT CLEAN:\n${JSON.stringify({ killed: report.killedJobs, leftovers: report.leftovers }, null, 2)}\n`,
    );
  }
  return clean ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`soak failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
