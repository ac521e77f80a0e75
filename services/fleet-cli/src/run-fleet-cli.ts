import { parseArgs } from 'node:util';
import { GoogleAuth } from 'google-auth-library';
import { compileAnchoredRegex } from '#shared';
import type { Env, PatternError } from '#shared';
import { parseComputeEndpoint } from '#shared';
import { createComputeRolloutReader, RUNNER_VERSION_KEY, templateName } from '#fleet-status';
import type { ComputeClientOptions, ComputeRolloutReader, MigRollout } from '#fleet-status';
import { ComputeCallError, createComputeRolloutApi } from './compute-rollout-api.js';
import type { ComputeRolloutApi } from './compute-rollout-api.js';
import { planCanary, planDirectUpdate, planPromote, selectMigs } from './plan-rollout.js';
import type { RolloutPlan, UpdateType } from './plan-rollout.js';
import { templateArgumentProblems, templateFrom } from './plan-template.js';
import { loadFleetCliDefaults } from './fleet-cli-config.js';
import { EXIT, USAGE } from './usage.js';

/** Where the CLI writes, and what it may be given instead of what it would build (tests). */
export interface FleetCliDeps {
  env?: Env;
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** Merged over the endpoint: credentials in tests (`authClient`); Application Default Credentials otherwise. */
  computeOptions?: ComputeClientOptions;
  /** The project when neither --project nor GOOGLE_CLOUD_PROJECT names one; ADC's project by default. */
  defaultProject?: () => Promise<string>;
}

/** A wrong command line: exit 2 with the message and a pointer to --help. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

const OPTIONS = {
  project: { type: 'string' },
  'compute-endpoint': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  'dry-run': { type: 'boolean' },
  from: { type: 'string' },
  name: { type: 'string' },
  'runner-version': { type: 'string' },
  'runner-sha256': { type: 'string' },
  template: { type: 'string' },
  regions: { type: 'string' },
  group: { type: 'string' },
  'canary-size': { type: 'string' },
  proactive: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const COMMON_OPTIONS = ['project', 'compute-endpoint', 'help'];
/** The options each command takes, besides the common ones. */
const COMMAND_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  'templates create': ['from', 'name', 'runner-version', 'runner-sha256', 'dry-run'],
  'templates list': [],
  'rollout canary': ['template', 'regions', 'group', 'canary-size', 'proactive', 'dry-run'],
  'rollout promote': ['regions', 'group', 'proactive', 'dry-run'],
  'rollout direct-update': ['template', 'regions', 'group', 'proactive', 'dry-run'],
  'rollout status': ['regions', 'group', 'json'],
};

const TEMPLATE_URL =
  /^(?:https:\/\/[^/]+\/compute\/v1\/)?projects\/([^/]+)\/global\/instanceTemplates\/([^/]+)$/;

function required(values: Values, name: keyof Values): string {
  const value = values[name];
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${String(name)} is required`);
  return value.trim();
}

function pattern(values: Values, name: 'regions' | 'group', fallback?: string): RegExp | undefined {
  const source = values[name] ?? fallback;
  if (source === undefined) return undefined;
  try {
    return compileAnchoredRegex(source);
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as PatternError).message}`);
  }
}

/**
 * `npm run fleet -- <command>`: parses `argv` (without `node` and the script), runs the command against
 * Compute Engine with the operator's credentials, and returns the exit code ({@link EXIT}). Nothing is thrown:
 * failures are written to `err`.
 */
export async function runFleetCli(argv: readonly string[], deps: FleetCliDeps = {}): Promise<number> {
  const defaults = loadFleetCliDefaults(deps.env);
  const out = deps.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const err = deps.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  let command = '';
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    command = positionals.join(' ');
    if (command === '' || (values.help && !(command in COMMAND_OPTIONS))) {
      if (command !== '' && !values.help) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
      (values.help ? out : err)(USAGE['']!);
      return values.help ? EXIT.ok : EXIT.usage;
    }
    const allowed = COMMAND_OPTIONS[command];
    if (!allowed) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    if (values.help) {
      out(USAGE[command]!);
      return EXIT.ok;
    }
    const extra = Object.keys(values).filter(
      (name) => !COMMON_OPTIONS.includes(name) && !allowed.includes(name),
    );
    if (extra.length > 0)
      throw new UsageError(`${command} takes no ${extra.map((o) => `--${o}`).join(', ')}`);

    const endpoint = values['compute-endpoint'] ?? defaults.computeEndpoint;
    let clientOptions: ComputeClientOptions = {};
    if (endpoint !== undefined && endpoint !== '') {
      try {
        clientOptions = { ...parseComputeEndpoint(endpoint) };
      } catch (error) {
        throw new UsageError(`--compute-endpoint: ${(error as Error).message}`);
      }
    }
    const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
    if (deps.computeOptions) {
      clientOptions = { ...clientOptions, ...deps.computeOptions };
    } else {
      // Found once here, so a missing login is one clear line rather than a failure in every client.
      try {
        clientOptions = { ...clientOptions, authClient: await auth.getClient() };
      } catch {
        err(
          'fleet: no Google credentials: run gcloud auth application-default login (Application Default Credentials)',
        );
        return EXIT.failure;
      }
    }
    let project = values.project ?? defaults.project;
    if (project === undefined || project === '') {
      try {
        project = await (deps.defaultProject ?? (() => auth.getProjectId()))();
      } catch {
        throw new UsageError('no project: pass --project or set GOOGLE_CLOUD_PROJECT');
      }
    }
    const run: CommandRun = {
      values,
      project,
      api: createComputeRolloutApi(clientOptions),
      reader: createComputeRolloutReader(clientOptions, { timeoutMs: 30_000 }),
      out,
      err,
    };
    return await COMMANDS[command]!(run);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`fleet: ${error.message}`);
      err(`Run npm run fleet -- ${command in COMMAND_OPTIONS ? `${command} ` : ''}--help for usage.`);
      return EXIT.usage;
    }
    if (error instanceof ComputeCallError) {
      err(`fleet: ${error.message}`);
      return EXIT.failure;
    }
    err(
      `fleet: failed (${(error as Error | undefined)?.name ?? 'Error'}: ${(error as Error | undefined)?.message?.slice(0, 300) ?? ''})`,
    );
    return EXIT.failure;
  }
}

interface CommandRun {
  values: Values;
  project: string;
  api: ComputeRolloutApi;
  reader: ComputeRolloutReader;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** The template a command names: its name, read to check it exists; a URL of another project is refused. */
async function resolveTemplate(run: CommandRun): Promise<string> {
  const given = required(run.values, 'template');
  const match = TEMPLATE_URL.exec(given);
  if (match && match[1] !== run.project) {
    throw new UsageError(`--template names a template of project ${match[1]}, not ${run.project}`);
  }
  const template = await run.api.getTemplate(run.project, match ? match[2]! : given);
  return template.selfLink ?? given;
}

async function selected(run: CommandRun, defaultRegions?: string): Promise<MigRollout[]> {
  const regions = pattern(run.values, 'regions', defaultRegions);
  if (!regions) throw new UsageError('--regions is required');
  const group = pattern(run.values, 'group');
  const migs = selectMigs(await run.api.listMigs(run.project), { regions, group });
  if (migs.length === 0) {
    throw new ComputeCallError(
      0,
      `no MIG of project ${run.project} is in a region matching --regions ${run.values.regions ?? defaultRegions}${run.values.group ? ` with a name matching --group ${run.values.group}` : ''}`,
    );
  }
  return migs;
}

/** Prints a plan, applies it unless --dry-run, and says what happened. */
async function carryOut(run: CommandRun, plan: RolloutPlan, type: UpdateType): Promise<number> {
  const dryRun = run.values['dry-run'] === true;
  for (const { mig, reason } of plan.skipped)
    run.out(`unchanged: ${mig.ref.scope}/${mig.ref.location}/${mig.ref.name} ${reason}`);
  if (plan.changes.length === 0) {
    run.out('nothing to change');
    return EXIT.ok;
  }
  if (type === 'PROACTIVE' && !dryRun) {
    run.err('fleet: --proactive: running VMs are replaced now, and the jobs running on them are killed');
  }
  let failed = 0;
  for (const change of plan.changes) {
    if (dryRun) {
      run.out(`would change ${change.summary}`);
      continue;
    }
    try {
      await run.api.patchMig(change.mig.ref, change.patch);
      run.out(`changed ${change.summary}`);
    } catch (error) {
      if (!(error instanceof ComputeCallError)) throw error;
      failed += 1;
      run.err(`fleet: ${error.message}`);
    }
  }
  if (dryRun) {
    run.out(
      `dry run: ${plan.changes.length} MIG${plan.changes.length === 1 ? '' : 's'} would change; nothing was changed`,
    );
    return EXIT.ok;
  }
  run.out(
    `${plan.changes.length - failed} of ${plan.changes.length} MIGs changed; follow with: npm run fleet -- rollout status --regions '${run.values.regions ?? '.*'}'`,
  );
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

const updateType = (values: Values): UpdateType => (values.proactive ? 'PROACTIVE' : 'OPPORTUNISTIC');

const COMMANDS: Readonly<Record<string, (run: CommandRun) => Promise<number>>> = {
  'templates create': async (run) => {
    const options = {
      name: required(run.values, 'name'),
      version: required(run.values, 'runner-version'),
      sha256: required(run.values, 'runner-sha256'),
    };
    const from = required(run.values, 'from');
    const problems = templateArgumentProblems(options);
    if (problems.length > 0) throw new UsageError(problems.join('; '));
    const base = await run.api.getTemplate(run.project, from);
    const template = templateFrom(base, options);
    const what = `instance template ${options.name} from ${from}: actions/runner ${options.version} (sha256 ${options.sha256.toLowerCase()})`;
    if (run.values['dry-run']) {
      run.out(`would create ${what}`);
      run.out('dry run: nothing was created');
      return EXIT.ok;
    }
    const url = await run.api.insertTemplate(run.project, template);
    run.out(`created ${what}`);
    run.out(url);
    return EXIT.ok;
  },

  'templates list': async (run) => {
    for (const template of await run.api.listTemplates(run.project)) {
      const version = template.properties?.metadata?.items?.find((i) => i.key === RUNNER_VERSION_KEY)?.value;
      run.out(
        `${template.name ?? ''}\tactions/runner ${version ?? '(not set)'}\t${template.creationTimestamp ?? ''}`,
      );
    }
    return EXIT.ok;
  },

  'rollout canary': async (run) => {
    const sizeText = run.values['canary-size'] ?? '1';
    if (!/^\d+$/.test(sizeText) || Number(sizeText) < 1 || Number(sizeText) > 1000) {
      throw new UsageError('--canary-size must be a whole number from 1 to 1000');
    }
    const migs = await selected(run);
    const template = await resolveTemplate(run);
    const type = updateType(run.values);
    return carryOut(run, planCanary(migs, template, Number(sizeText), type), type);
  },

  'rollout promote': async (run) => {
    const type = updateType(run.values);
    const plan = planPromote(await selected(run), type);
    if (plan.changes.length === 0) {
      for (const { mig, reason } of plan.skipped)
        run.out(`unchanged: ${mig.ref.scope}/${mig.ref.location}/${mig.ref.name} ${reason}`);
      run.err('fleet: no matching MIG has a canary to promote');
      return EXIT.failure;
    }
    return carryOut(run, plan, type);
  },

  'rollout direct-update': async (run) => {
    const migs = await selected(run);
    const template = await resolveTemplate(run);
    const type = updateType(run.values);
    return carryOut(run, planDirectUpdate(migs, template, type), type);
  },

  'rollout status': async (run) => {
    const migs = await selected(run, '.*');
    const details = await Promise.all(migs.map((mig) => run.reader.describeMig(mig.ref)));
    const urls = new Set(
      details.flatMap((d) => [
        ...d.versions.map((v) => v.instanceTemplate),
        ...d.members.map((m) => m.instanceTemplate),
      ]),
    );
    const versions = new Map<string, string | null>();
    await Promise.all(
      [...urls].map(async (url) => {
        if (!url) return;
        versions.set(url, (await run.reader.template(url).catch(() => undefined))?.runnerVersion ?? null);
      }),
    );
    const report = details.map((mig) => {
      const live = mig.members.filter(
        (m) => m.currentAction !== 'DELETING' && m.currentAction !== 'ABANDONING',
      );
      const inUse = new Map<string, number>();
      for (const member of live) {
        const key = member.instanceTemplate ?? '(none)';
        inUse.set(key, (inUse.get(key) ?? 0) + 1);
      }
      return {
        mig: `${mig.ref.scope}/${mig.ref.location}/${mig.ref.name}`,
        targetSize: mig.targetSize,
        updateType: mig.updateType,
        done: mig.isReached !== false,
        versions: mig.versions.map((v) => ({
          name: v.name,
          template: templateName(v.instanceTemplate),
          runnerVersion: versions.get(v.instanceTemplate) ?? null,
          target: v.calculated,
          fixed: v.fixed,
          percent: v.percent,
        })),
        templatesInUse: [...inUse].map(([url, vms]) => ({
          template: templateName(url),
          runnerVersion: versions.get(url) ?? null,
          vms,
        })),
      };
    });
    if (run.values.json) {
      run.out(JSON.stringify({ project: run.project, migs: report }, null, 2));
    } else {
      for (const mig of report) {
        run.out(
          `${mig.mig}  target ${mig.targetSize}  ${(mig.updateType ?? 'no update policy').toLowerCase()}  ${mig.done ? 'done' : 'NOT DONE'}`,
        );
        for (const v of mig.versions) {
          const target =
            v.fixed !== null ? `fixed ${v.fixed}` : v.percent !== null ? `${v.percent}%` : 'the rest';
          run.out(
            `  version ${v.name || '(unnamed)'}: ${v.template} (actions/runner ${v.runnerVersion ?? '?'}), ${target} = ${v.target ?? '?'} VMs`,
          );
        }
        for (const t of mig.templatesInUse) {
          run.out(
            `  in use: ${t.template} (actions/runner ${t.runnerVersion ?? '?'}) on ${t.vms} VM${t.vms === 1 ? '' : 's'}`,
          );
        }
      }
    }
    const notDone = report.filter((m) => !m.done).length;
    if (notDone > 0) {
      run.err(`fleet: ${notDone} of ${report.length} MIGs have not finished their update`);
      return EXIT.notFinished;
    }
    return EXIT.ok;
  },
};
