import { z } from 'zod';
import { compilePattern, matchesAny, parseStrictJson } from '#shared';
import type { CallerIdentity, StrictJsonError, ValuePattern } from '#shared';
import { isReservedLabel, OPTIONAL_DERIVED_LABEL_KEYS } from './derived-labels.js';
import type { DerivedLabelKey } from './derived-labels.js';
import { compileScopePattern } from './scope-pattern.js';

/** One compiled rule of the caller policy. */
export interface PolicyRule {
  name: string;
  callers: {
    serviceAccounts?: ValuePattern[];
    projects?: ValuePattern[];
    instanceNames?: ValuePattern[];
  };
  scopes: ValuePattern[];
  /** Runner groups a matching caller may join; absent means only `Default`. */
  runnerGroups?: ValuePattern[];
  /** Labels a matching caller may carry; absent means any. */
  labels?: ValuePattern[];
  defaultRunnerGroup?: string;
  defaultLabels?: string[];
  /** Callers of this rule get only JIT configs, never registration tokens (which let them pick labels). */
  jitOnly: boolean;
  /** Labels the proxy adds to this rule's JIT runners from the verified token (derived-labels.ts). */
  derivedLabels?: DerivedLabelKey[];
}

/** The caller policy: which verified callers may ask for what. */
export interface Policy {
  rules: PolicyRule[];
}

/** Thrown for a policy that cannot be used; the message points at the bad entry. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

/**
 * The runner group every org and enterprise has, id 1, and the only one a repository has.
 * https://docs.github.com/actions/hosting-your-own-runners/managing-self-hosted-runners/managing-access-to-self-hosted-runners-using-groups
 */
export const DEFAULT_RUNNER_GROUP = 'Default';

const entries = z.array(z.string().min(1, 'must not be empty')).min(1, 'must list at least one entry');

const ruleSchema = z.strictObject({
  name: z.string().min(1),
  callers: z
    .strictObject({
      serviceAccounts: entries.optional(),
      projects: entries.optional(),
      instanceNames: entries.optional(),
    })
    .default({}),
  scopes: entries,
  runnerGroups: entries.optional(),
  labels: entries.optional(),
  defaultRunnerGroup: z.string().min(1).optional(),
  defaultLabels: entries.optional(),
  jitOnly: z.boolean().default(false),
  derivedLabels: z
    .array(
      z.enum(OPTIONAL_DERIVED_LABEL_KEYS, {
        error: `must be one of ${OPTIONAL_DERIVED_LABEL_KEYS.map((k) => JSON.stringify(k)).join(', ')} (instance-id is always added)`,
      }),
    )
    .optional(),
});

const policySchema = z.strictObject({ rules: z.array(ruleSchema).min(1, 'must contain at least one rule') });

function where(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (text, key) =>
      typeof key === 'number' ? `${text}[${key}]` : text === '' ? String(key) : `${text}.${String(key)}`,
    '',
  );
}

/**
 * Parses and compiles a policy document. Names (emails, scopes, groups, labels) match case-insensitively;
 * instance names and projects, which Compute Engine keeps lowercase, match exactly. Every `match:` regex
 * must match the whole value. Refused: a key written twice in one object, a rule whose callers name neither
 * `serviceAccounts` nor `projects`, and a scope entry that can never match what it seems to mean.
 */
export function parsePolicy(text: string): Policy {
  let document: unknown;
  try {
    document = parseStrictJson(text);
  } catch (error) {
    throw new PolicyError(
      (error as StrictJsonError).reason === 'duplicate-key'
        ? `policy is ambiguous: ${(error as Error).message}`
        : 'policy is not valid JSON',
    );
  }
  const parsed = policySchema.safeParse(document);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${where(issue.path)}: ${issue.message}`);
    throw new PolicyError(`policy is invalid: ${problems.join('; ')}`);
  }

  const problems: string[] = [];
  const compileAll = (path: string, list: string[] | undefined, caseInsensitive: boolean) =>
    list?.map((entry, index) => {
      try {
        return compilePattern(entry, { caseInsensitive });
      } catch (error) {
        problems.push(`${path}[${index}]: ${(error as Error).message}`);
        return { source: entry, test: () => false };
      }
    });

  // Scopes get the checks of ALLOWED_SCOPES: no literal that can never be a scope, no glob-style regex.
  const compileScopes = (path: string, list: string[]) =>
    list.map((entry, index) => {
      try {
        return compileScopePattern(entry);
      } catch (error) {
        problems.push(`${path}[${index}]: ${(error as Error).message}`);
        return { source: entry, test: () => false };
      }
    });

  const rules = parsed.data.rules.map((raw, index): PolicyRule => {
    const at = `rules[${index}]`;
    const rule: PolicyRule = {
      name: raw.name,
      callers: {},
      scopes: compileScopes(`${at}.scopes`, raw.scopes),
      jitOnly: raw.jitOnly,
    };
    if (raw.callers.serviceAccounts === undefined && raw.callers.projects === undefined) {
      problems.push(
        `${at}.callers: rule ${JSON.stringify(raw.name)} names neither serviceAccounts nor projects, so it would match every caller that reaches the service, whatever its project or account (instanceNames alone are names anyone can give a VM). Name the runners' service accounts ("serviceAccounts": ["runner@my-project.iam.gserviceaccount.com"]) or projects ("projects": ["my-project"]); to trust every verified caller alike, set POLICY=open instead of a policy`,
      );
    }
    if (raw.derivedLabels !== undefined) rule.derivedLabels = [...new Set(raw.derivedLabels)];
    const serviceAccounts = compileAll(`${at}.callers.serviceAccounts`, raw.callers.serviceAccounts, true);
    const projects = compileAll(`${at}.callers.projects`, raw.callers.projects, false);
    const instanceNames = compileAll(`${at}.callers.instanceNames`, raw.callers.instanceNames, false);
    const runnerGroups = compileAll(`${at}.runnerGroups`, raw.runnerGroups, true);
    const labels = compileAll(`${at}.labels`, raw.labels, true);
    if (serviceAccounts) rule.callers.serviceAccounts = serviceAccounts;
    if (projects) rule.callers.projects = projects;
    if (instanceNames) rule.callers.instanceNames = instanceNames;
    if (runnerGroups) rule.runnerGroups = runnerGroups;
    if (labels) rule.labels = labels;
    if (raw.defaultRunnerGroup !== undefined) {
      rule.defaultRunnerGroup = raw.defaultRunnerGroup;
      if (!allowsGroup(rule, raw.defaultRunnerGroup)) {
        problems.push(
          `${at}.defaultRunnerGroup: ${JSON.stringify(raw.defaultRunnerGroup)} is not in runnerGroups`,
        );
      }
    }
    if (raw.defaultLabels !== undefined) {
      rule.defaultLabels = raw.defaultLabels;
      raw.defaultLabels.forEach((label, i) => {
        if (isReservedLabel(label)) {
          problems.push(`${at}.defaultLabels[${i}]: ${JSON.stringify(label)} is reserved for derived labels`);
        } else if (!allowsLabel(rule, label)) {
          problems.push(`${at}.defaultLabels[${i}]: ${JSON.stringify(label)} is not allowed by labels`);
        }
      });
    }
    return rule;
  });
  if (problems.length > 0) throw new PolicyError(`policy is invalid: ${problems.join('; ')}`);
  return { rules };
}

/** True when every caller field the rule names matches; a rule naming Compute fields needs those claims. */
export function ruleMatchesCaller(rule: PolicyRule, caller: CallerIdentity): boolean {
  const { serviceAccounts, projects, instanceNames } = rule.callers;
  if (serviceAccounts && (caller.email === undefined || !matchesAny(serviceAccounts, caller.email)))
    return false;
  if (projects) {
    const compute = caller.compute;
    if (
      !compute ||
      !(matchesAny(projects, compute.projectId) || matchesAny(projects, compute.projectNumber))
    ) {
      return false;
    }
  }
  if (instanceNames && (!caller.compute || !matchesAny(instanceNames, caller.compute.instanceName)))
    return false;
  return true;
}

export function allowsScope(rule: PolicyRule, scope: string): boolean {
  return matchesAny(rule.scopes, scope);
}

export function allowsGroup(rule: PolicyRule, group: string): boolean {
  return rule.runnerGroups
    ? matchesAny(rule.runnerGroups, group)
    : group.toLowerCase() === DEFAULT_RUNNER_GROUP.toLowerCase();
}

export function allowsLabel(rule: PolicyRule, label: string): boolean {
  return rule.labels ? matchesAny(rule.labels, label) : true;
}

/**
 * The policy used when none is configured: any verified caller, any scope (the allow and deny lists
 * still apply), any group and labels. This is the upstream proxy's behaviour, plus caller verification.
 */
export const OPEN_POLICY: Policy = {
  rules: [
    {
      name: 'open (no policy configured)',
      callers: {},
      scopes: [{ source: 'match:.*', test: () => true }],
      runnerGroups: [{ source: 'match:.*', test: () => true }],
      jitOnly: false,
    },
  ],
};
