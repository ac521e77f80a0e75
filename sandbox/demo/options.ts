import { parseArgs } from 'node:util';

/** What `npm run demo` was asked to do. */
export interface DemoOptions {
  /** `workload` (the default): jobs become VMs through the autoscaler; `attacks`: a fixed fleet with attackers. */
  mode: 'workload' | 'attacks';
  /** Workload: jobs queued in all, in `bursts` bursts `burstEveryMs` apart. */
  jobs: number;
  bursts: number;
  burstEveryMs: number;
  /** Workload: share of webhook deliveries the fake GitHub drops, in percent. */
  dropPercent: number;
  /** Workload: share of the VMs that boot but never register a runner (the reaper deletes them), in percent. */
  brokenPercent: number;
  /** Workload: the pools' `bootTimeoutSeconds`: past it, the reaper deletes a VM that never registered. */
  bootTimeoutSeconds: number;
  /** Workload: Cloud Scheduler's period, `POST /reconcile` this often. */
  reconcileEveryMs: number;
  /** Workload: how long to wait after the last burst for every job to run and every VM to leave. */
  drainTimeoutMs: number;
  /** Workload: the seed of the labels' and the drops' randomness. */
  seed: number;
  /** Attacks: VMs in the fleet, split between the presubmit and postsubmit MIGs (presubmit gets the odd one). */
  vms: number;
  /** Attacks: how many VMs live at once. */
  concurrency: number;
  /** Attacks: how many presubmit VMs run a malicious job. */
  attackers: number;
  /** Mean length of a job (attacks: each lasts 0.5 to 1.5 times this; workload: each lasts this). */
  jobMs: number;
  /** Latency the fake GitHub adds to each request. */
  githubLatencyMs: number;
  /** 0 picks a free port, so the demo never collides with a running `npm start`. */
  proxyPort: number;
  deleterPort: number;
  /** Print the summary as JSON instead of a table. */
  json: boolean;
  /** Print the services' log lines as they come. */
  verbose: boolean;
  help: boolean;
}

/**
 * The demo's pools' default `bootTimeoutSeconds` (`--boot-timeout-s`), short so a VM that never registers is reaped within the demo (on
 * the second run past it, 180 to 190 s after it booted), yet past the longest a working VM of the demo waits
 * for its JIT config: 140 VMs booting together queue for the token proxy's spacing of GitHub writes and
 * retry its 429s with backoff. At 60 (the least the autoscaler takes) the reaper deleted 196 VMs for 10 that
 * never registered, at 120 still 90 for 7: working VMs still waiting, and a runner registering between the
 * reaper's list and its deletion lost its job with the VM.
 */
export const DEMO_BOOT_TIMEOUT_SECONDS = 180;

/** Thrown for flags the demo cannot run with; the message lists every problem. */
export class DemoUsageError extends Error {
  override readonly name = 'DemoUsageError';
}

export const DEMO_USAGE = `Usage: npm run demo -- [flags]

A workload against the local sandbox, the autoscaler in its closed loop: jobs with the labels of two
pools (presubmit and postsubmit, some with a subset of a pool's labels) are queued at the fake GitHub in
bursts; the fake GitHub sends signed workflow_job deliveries to the autoscaler and drops a share of them;
the autoscaler creates VMs with createInstances; each VM gets a JIT config from the token proxy, runs a
job GitHub hands it and deletes itself through the instance deleter. One zone runs out of capacity, so
each pool's second MIG takes over; Cloud Scheduler calls POST /reconcile with its identity token every
few seconds (it redelivers dropped deliveries, moves VMs stuck in creation, reaps). The fleet grows from
zero and shrinks back to zero. Ends with a table; exits 1 if a job was lost or a VM was left.

  --jobs N                jobs queued in all (default 240)
  --bursts N              bursts they arrive in (default 8)
  --burst-every-ms N      time between bursts (default 5000)
  --drop-percent N        share of deliveries the fake GitHub drops, in percent (default 10)
  --broken-percent N      share of VMs that boot but never register a runner, in percent (default 3):
                          the reaper deletes each after the pools' bootTimeoutSeconds and the
                          reconciler creates a VM for its job again
  --boot-timeout-s N      the pools' bootTimeoutSeconds (default 180; at least 60): a smaller one also
                          reaps working VMs still waiting for their JIT config in a large burst
  --reconcile-every-ms N  Cloud Scheduler's period for POST /reconcile (default 5000)
  --drain-timeout-ms N    how long after the last burst to wait for an empty fleet (default 360000)
  --seed N                seed of the labels and the drops (default 1)
  --job-ms N              how long each job runs, in ms (default 1000)

With --attacks, the fleet demo instead: a fixed fleet of runner VMs in the two MIGs, each getting a JIT
config or a registration token from the token proxy, running a job, deregistering and deleting itself
through the instance deleter; some presubmit VMs run a malicious job that tries what an attacker would.
Exits 1 if a VM failed or an attack was not refused.

  --attacks               run the fleet and attack demo
  --vms N                 VMs in the fleet (default 50)
  --concurrency N         VMs alive at once (default 10)
  --attackers N           presubmit VMs that attack (default: 10% of --vms)
  --job-ms N              mean job length in ms (default 1000)

Both:
  --github-latency-ms N   latency the fake GitHub adds to each request (default: workload 0, attacks 100)
  --proxy-port N          token proxy port (default 0: a free port)
  --deleter-port N        instance deleter port (default 0: a free port)
  --json                  print the summary as JSON
  --verbose               print the services' logs
  --help                  show this help
`;

const INTEGER_FLAGS = {
  jobs: { flag: '--jobs', min: 1, max: 5000 },
  bursts: { flag: '--bursts', min: 1, max: 1000 },
  'burst-every-ms': { flag: '--burst-every-ms', min: 0, max: 600_000 },
  'drop-percent': { flag: '--drop-percent', min: 0, max: 90 },
  'broken-percent': { flag: '--broken-percent', min: 0, max: 50 },
  'boot-timeout-s': { flag: '--boot-timeout-s', min: 60, max: 86_400 },
  'reconcile-every-ms': { flag: '--reconcile-every-ms', min: 500, max: 600_000 },
  'drain-timeout-ms': { flag: '--drain-timeout-ms', min: 1000, max: 3_600_000 },
  seed: { flag: '--seed', min: 0, max: 2 ** 31 - 1 },
  vms: { flag: '--vms', min: 2, max: 1000 },
  concurrency: { flag: '--concurrency', min: 1, max: 200 },
  attackers: { flag: '--attackers', min: 0, max: 1000 },
  'job-ms': { flag: '--job-ms', min: 0, max: 600_000 },
  'github-latency-ms': { flag: '--github-latency-ms', min: 0, max: 60_000 },
  'proxy-port': { flag: '--proxy-port', min: 0, max: 65535 },
  'deleter-port': { flag: '--deleter-port', min: 0, max: 65535 },
} as const;

const WORKLOAD_ONLY = [
  'jobs',
  'bursts',
  'burst-every-ms',
  'drop-percent',
  'broken-percent',
  'boot-timeout-s',
  'reconcile-every-ms',
  'drain-timeout-ms',
  'seed',
] as const;
const ATTACKS_ONLY = ['vms', 'concurrency', 'attackers'] as const;

type IntegerFlag = keyof typeof INTEGER_FLAGS;

/**
 * Parses the demo's command line (without `node` and the script). Collects every problem and throws one
 * {@link DemoUsageError}.
 */
export function parseDemoOptions(argv: readonly string[] = process.argv.slice(2)): DemoOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(Object.keys(INTEGER_FLAGS).map((name) => [name, { type: 'string' as const }])),
        attacks: { type: 'boolean' },
        json: { type: 'boolean' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new DemoUsageError((error as Error).message);
  }

  const problems: string[] = [];
  const integer = (name: IntegerFlag, fallback: number): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const { flag, min, max } = INTEGER_FLAGS[name];
    const value = Number(raw);
    if (typeof raw !== 'string' || !/^\d+$/.test(raw) || value < min || value > max) {
      problems.push(`${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  };

  const mode = values.attacks === true ? 'attacks' : 'workload';
  const misplaced = mode === 'attacks' ? WORKLOAD_ONLY : ATTACKS_ONLY;
  for (const name of misplaced.filter((n) => values[n] !== undefined)) {
    problems.push(
      mode === 'attacks'
        ? `${INTEGER_FLAGS[name].flag} is a flag of the workload, not of --attacks`
        : `${INTEGER_FLAGS[name].flag} needs --attacks`,
    );
  }
  const vms = integer('vms', 50);
  const options: DemoOptions = {
    mode,
    jobs: integer('jobs', 240),
    bursts: integer('bursts', 8),
    burstEveryMs: integer('burst-every-ms', 5000),
    dropPercent: integer('drop-percent', 10),
    brokenPercent: integer('broken-percent', 3),
    bootTimeoutSeconds: integer('boot-timeout-s', DEMO_BOOT_TIMEOUT_SECONDS),
    reconcileEveryMs: integer('reconcile-every-ms', 5000),
    drainTimeoutMs: integer('drain-timeout-ms', 360_000),
    seed: integer('seed', 1),
    vms,
    concurrency: integer('concurrency', 10),
    attackers: integer('attackers', Math.round(vms / 10)),
    jobMs: integer('job-ms', 1000),
    githubLatencyMs: integer('github-latency-ms', mode === 'attacks' ? 100 : 0),
    proxyPort: integer('proxy-port', 0),
    deleterPort: integer('deleter-port', 0),
    json: values.json === true,
    verbose: values.verbose === true,
    help: values.help === true,
  };
  if (options.bursts > options.jobs) {
    problems.push(`--bursts must be at most --jobs (${options.jobs})`);
  }
  // Attackers are presubmit VMs: that is where untrusted pull-request code runs.
  const presubmit = Math.ceil(vms / 2);
  if (options.attackers > presubmit) {
    problems.push(`--attackers must be at most the ${presubmit} presubmit VMs of a fleet of ${vms}`);
  }
  if (options.proxyPort !== 0 && options.proxyPort === options.deleterPort) {
    problems.push('--proxy-port and --deleter-port must differ');
  }
  if (problems.length > 0) throw new DemoUsageError(problems.join('\n'));
  return options;
}
