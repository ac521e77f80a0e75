import { parseArgs } from 'node:util';

/** What `npm run demo` was asked to do. */
export interface DemoOptions {
  /** VMs in the fleet, split between the presubmit and postsubmit MIGs (presubmit gets the odd one). */
  vms: number;
  /** How many VMs live at once. */
  concurrency: number;
  /** How many presubmit VMs run a malicious job. */
  attackers: number;
  /** Mean length of a job; each lasts 0.5 to 1.5 times this. */
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

/** Thrown for flags the demo cannot run with; the message lists every problem. */
export class DemoUsageError extends Error {
  override readonly name = 'DemoUsageError';
}

export const DEMO_USAGE = `Usage: npm run demo -- [flags]

Simulates a fleet of runner VMs in two managed instance groups (presubmit and postsubmit) against the
local sandbox: each VM gets a JIT config or a registration token from the token proxy, runs a job,
deregisters and deletes itself through the instance deleter; some presubmit VMs run a malicious job that
tries what an attacker would. Ends with a summary; exits 1 if a VM failed or an attack was not refused.

Flags:
  --vms N                 VMs in the fleet (default 50)
  --concurrency N         VMs alive at once (default 10)
  --attackers N           presubmit VMs that attack (default: 10% of --vms)
  --job-ms N              mean job length in ms (default 1000)
  --github-latency-ms N   latency the fake GitHub adds to each request (default 100)
  --proxy-port N          token proxy port (default 0: a free port)
  --deleter-port N        instance deleter port (default 0: a free port)
  --json                  print the summary as JSON
  --verbose               print the services' logs
  --help                  show this help
`;

const INTEGER_FLAGS = {
  vms: { flag: '--vms', min: 2, max: 1000 },
  concurrency: { flag: '--concurrency', min: 1, max: 200 },
  attackers: { flag: '--attackers', min: 0, max: 1000 },
  'job-ms': { flag: '--job-ms', min: 0, max: 600_000 },
  'github-latency-ms': { flag: '--github-latency-ms', min: 0, max: 60_000 },
  'proxy-port': { flag: '--proxy-port', min: 0, max: 65535 },
  'deleter-port': { flag: '--deleter-port', min: 0, max: 65535 },
} as const;

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

  const vms = integer('vms', 50);
  const options: DemoOptions = {
    vms,
    concurrency: integer('concurrency', 10),
    attackers: integer('attackers', Math.round(vms / 10)),
    jobMs: integer('job-ms', 1000),
    githubLatencyMs: integer('github-latency-ms', 100),
    proxyPort: integer('proxy-port', 0),
    deleterPort: integer('deleter-port', 0),
    json: values.json === true,
    verbose: values.verbose === true,
    help: values.help === true,
  };
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
