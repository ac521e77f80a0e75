/** What `npm run bench` was asked to do. */
export interface BenchOptions {
  /** Seconds each load run lasts. */
  durationSeconds: number;
  /** Latency the fake GitHub adds to every request, standing in for the real API's round trip. */
  githubLatencyMs: number;
  /** A short run for smoke tests: the numbers are not meaningful, every row is still produced. */
  quick: boolean;
  /**
   * Where the Markdown report goes besides stdout: `bench/results/latest.md` by default, nowhere with
   * `--quick` (its numbers must not replace the committed ones) unless `--out` names a file.
   */
  out?: string;
  /** Print the usage and exit 0. */
  help: boolean;
  /** Spawns per service for the cold-start median. */
  coldStarts: number;
  /** With --quick, each run also stops after this many requests, to keep the load (and CPU) small. */
  maxRequestsPerRun?: number;
  /** Registrations in the boot-storm row. */
  stormSize: number;
  /** The upstream Go token proxy's binary, run beside ours for the "ours / upstream" ratio. */
  upstreamBin?: string;
  /**
   * Only the rows the request path's work is judged by: the ceiling, `/register` with reuse on, and
   * upstream when given. For before/after comparisons of a change to the proxy.
   */
  registerOnly: boolean;
  /** Where the token proxy writes a V8 CPU profile (`node --cpu-prof`) of its whole run; none when absent. */
  cpuProfDir?: string;
  /** VM counts of the `/jitconfig` boot storms (each VM asks once); 100 always, 1000 with `--storm-1000`. */
  jitStorms: number[];
  /**
   * Only the `/jitconfig` boot storms, printed as notes, no report file: for before/after comparisons of the
   * VM's retry rule or the proxy's Retry-After.
   */
  stormOnly: boolean;
}

/** Thrown for flags the benchmark does not understand; `main` prints it with the usage. */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

export const BENCH_USAGE = `Usage: npm run bench -- [--duration S] [--github-latency-ms MS] [--quick] [--out FILE]
                          [--upstream-bin PATH] [--register-only] [--cpu-prof DIR] [--storm-1000]
                          [--storm-only]

Measures both services on loopback, as child processes, against the fakes: load, boot storms, cold
starts and memory. Prints a Markdown report and writes it to bench/results/latest.md. A full run takes
about 3 minutes on a quiet 2-core machine.

  --duration S            seconds per load run (default 5; --quick: 1)
  --github-latency-ms MS  latency the fake GitHub adds to each request (default 20)
  --quick                 smoke run in about a minute: every row, at most 200 requests each; the numbers
                          mean nothing, so the report goes to stdout only, unless --out is given
  --out FILE              where the Markdown report goes (default bench/results/latest.md)
  --upstream-bin PATH     also load the upstream Go token proxy (google-github-actions/
                          github-runner-token-proxy, built by you) with /register at 64 connections against
                          the same fake GitHub, and print the ratio ours / upstream
  --register-only         only the ceiling, /register with reuse on and the upstream row (before/after
                          comparisons of the request path)
  --cpu-prof DIR          run the token proxy with node --cpu-prof, writing its profile into DIR
  --storm-1000            also the boot storm of 1000 JIT VMs (about six minutes at the default write
                          spacing); without it the report extrapolates from the storm of 100
  --storm-only            only the JIT boot storms, printed as notes; no report file is written
  --help                  show this help`;

function number(flag: string, value: string | undefined, min: number, max: number): number {
  const parsed = value === undefined || value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
    throw new BenchUsageError(`${flag} needs a number from ${min} to ${max}, not ${JSON.stringify(value)}`);
  }
  return parsed;
}

/** Parses the benchmark's flags (`--flag value` or `--flag=value`). Pure, so it is tested on its own. */
export function parseBenchOptions(argv: readonly string[] = process.argv.slice(2)): BenchOptions {
  const given = new Map<string, string | undefined>();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    switch (flag) {
      case '--quick':
      case '--help':
      case '--register-only':
      case '--storm-1000':
      case '--storm-only':
        if (inline !== undefined) throw new BenchUsageError(`${flag} takes no value`);
        given.set(flag, 'true');
        break;
      case '-h':
        given.set('--help', 'true');
        break;
      case '--duration':
      case '--github-latency-ms':
      case '--out':
      case '--upstream-bin':
      case '--cpu-prof':
        given.set(flag, inline ?? argv[(i += 1)]);
        break;
      default:
        throw new BenchUsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  const quick = given.has('--quick');
  const out = given.get('--out');
  if (given.has('--out') && (out === undefined || out.trim() === ''))
    throw new BenchUsageError('--out needs a file name');
  const upstreamBin = given.get('--upstream-bin');
  if (given.has('--upstream-bin') && (upstreamBin === undefined || upstreamBin.trim() === ''))
    throw new BenchUsageError('--upstream-bin needs the path of the upstream proxy binary');
  const cpuProfDir = given.get('--cpu-prof');
  if (given.has('--cpu-prof') && (cpuProfDir === undefined || cpuProfDir.trim() === ''))
    throw new BenchUsageError('--cpu-prof needs a directory');
  return {
    quick,
    registerOnly: given.has('--register-only'),
    stormOnly: given.has('--storm-only'),
    jitStorms: quick ? [20] : given.has('--storm-1000') ? [100, 1000] : [100],
    ...(cpuProfDir === undefined ? {} : { cpuProfDir }),
    help: given.has('--help'),
    durationSeconds: given.has('--duration')
      ? number('--duration', given.get('--duration'), 1, 600)
      : quick
        ? 1
        : 5,
    githubLatencyMs: given.has('--github-latency-ms')
      ? number('--github-latency-ms', given.get('--github-latency-ms'), 0, 10_000)
      : 20,
    ...(out !== undefined ? { out } : quick ? {} : { out: 'bench/results/latest.md' }),
    coldStarts: quick ? 1 : 7,
    stormSize: quick ? 200 : 1000,
    ...(quick ? { maxRequestsPerRun: 200 } : {}),
    ...(upstreamBin === undefined ? {} : { upstreamBin }),
  };
}
