import { HttpError, matchesAny } from '#shared';
import type { CallerIdentity, ComputeEngineClaims, ValuePattern } from '#shared';
import { DERIVED_LABEL_PREFIX, DerivedLabelError, derivedLabels, isReservedLabel } from './derived-labels.js';
import type { DerivedLabelKey } from './derived-labels.js';
import { allowsGroup, allowsLabel, allowsScope, DEFAULT_RUNNER_GROUP, ruleMatchesCaller } from './policy.js';
import type { Policy, PolicyRule } from './policy.js';
import { formatScope, parseScope, ScopeError } from './scope.js';
import type { Scope } from './scope.js';

/** The allow and deny lists from ALLOWED_SCOPES and DENIED_SCOPES. */
export interface ScopeLists {
  allowed: readonly ValuePattern[];
  denied: readonly ValuePattern[];
}

/** Refuses a scope that is denied or not allowed. Deny wins; nothing is allowed by default. */
function assertScopeListed(lists: ScopeLists, scope: string): void {
  if (matchesAny(lists.denied, scope) || !matchesAny(lists.allowed, scope)) {
    throw new HttpError(403, `scope ${JSON.stringify(scope)} is not allowed`);
  }
}

/** What {@link authorizeScope} checks a scope against: the deployment's lists and credentials. */
export interface ScopeLimits {
  scopes: ScopeLists;
  /** 'app' credentials cannot manage enterprise runners. */
  credentialsKind: 'pat' | 'app';
}

/**
 * Parses a requested scope and checks it against the deployment's limits and the allow/deny lists: 400
 * for a malformed scope or an enterprise with App credentials, 403 for one not listed. Returns the scope
 * and its canonical name.
 */
export function authorizeScope(limits: ScopeLimits, input: string): { scope: Scope; name: string } {
  let scope: Scope;
  try {
    scope = parseScope(input);
  } catch (error) {
    if (error instanceof ScopeError) throw new HttpError(400, error.message);
    throw error;
  }
  const name = formatScope(scope);
  if (scope.kind === 'enterprise' && limits.credentialsKind === 'app') {
    throw new HttpError(
      400,
      `scope ${JSON.stringify(name)}: enterprise runners need a proxy configured with a PAT; GitHub App tokens cannot manage them`,
    );
  }
  assertScopeListed(limits.scopes, name);
  return { scope, name };
}

/** The rules that name this caller and allow this scope, in policy order. */
function rulesFor(policy: Policy, caller: CallerIdentity, scope: string): PolicyRule[] {
  return policy.rules.filter((rule) => ruleMatchesCaller(rule, caller) && allowsScope(rule, scope));
}

/**
 * Decides whether the caller may have a registration or remove token for `scope`. Those tokens let their
 * holder choose a runner's name, group and labels, so callers whose every applicable rule is `jitOnly` are
 * sent to the endpoints that bind those to their identity.
 */
export function assertMayHaveToken(
  policy: Policy,
  caller: CallerIdentity,
  scope: string,
  kind: 'registration' | 'remove',
): void {
  const rules = rulesFor(policy, caller, scope);
  if (rules.length === 0)
    throw new HttpError(403, `this caller may not get tokens for scope ${JSON.stringify(scope)}`);
  if (rules.every((rule) => rule.jitOnly)) {
    throw new HttpError(
      403,
      kind === 'registration'
        ? 'this caller may not get registration tokens: use POST /jitconfig'
        : 'this caller may not get remove tokens: use DELETE /runner',
    );
  }
}

/** Refuses a caller no rule lets act on `scope`; returns the applicable rules otherwise. */
export function assertMayUseScope(policy: Policy, caller: CallerIdentity, scope: string): PolicyRule[] {
  const rules = rulesFor(policy, caller, scope);
  if (rules.length === 0)
    throw new HttpError(403, `this caller may not manage runners in scope ${JSON.stringify(scope)}`);
  return rules;
}

/** The most scopes `GET /runner` searches without being told which. */
export const MAX_SEARCHED_SCOPES = 10;

/**
 * The scopes a caller may manage runners in, for a request that names none (`GET /runner`): the literal
 * entries of ALLOWED_SCOPES and of the caller's rules that pass {@link authorizeScope} and a rule of the
 * caller, in configuration order, at most {@link MAX_SEARCHED_SCOPES}. `complete` is false when more
 * scopes may exist: `match:` patterns on both sides (the lists and the rules), or more than the maximum.
 */
export function scopesOfCaller(
  limits: ScopeLimits,
  policy: Policy,
  caller: CallerIdentity,
): { scopes: Array<{ scope: Scope; name: string }>; complete: boolean } {
  const rules = policy.rules.filter((rule) => ruleMatchesCaller(rule, caller));
  const literal = (pattern: ValuePattern) => !pattern.source.startsWith('match:');
  const candidates = [
    ...limits.scopes.allowed.filter(literal),
    ...rules.flatMap((rule) => rule.scopes.filter(literal)),
  ];
  const found = new Map<string, { scope: Scope; name: string }>();
  for (const { source } of candidates) {
    let authorized: { scope: Scope; name: string };
    try {
      authorized = authorizeScope(limits, source);
    } catch {
      continue;
    }
    const key = authorized.name.toLowerCase();
    if (!found.has(key) && rules.some((rule) => allowsScope(rule, authorized.name))) {
      found.set(key, authorized);
    }
  }
  const scopes = [...found.values()];
  const enumerable =
    limits.scopes.allowed.every(literal) || rules.every((rule) => rule.scopes.every(literal));
  return {
    scopes: scopes.slice(0, MAX_SEARCHED_SCOPES),
    complete: enumerable && scopes.length <= MAX_SEARCHED_SCOPES,
  };
}

/**
 * The scopes `GET /runner` searches: the one the caller named, if it may use it (400/403 as for any scope),
 * else {@link scopesOfCaller} (403 when the caller may use none).
 */
export function scopesToSearch(
  limits: ScopeLimits,
  policy: Policy,
  caller: CallerIdentity,
  requested: string | undefined,
): { scopes: Array<{ scope: Scope; name: string }>; complete: boolean } {
  if (requested !== undefined) {
    const authorized = authorizeScope(limits, requested);
    assertMayUseScope(policy, caller, authorized.name);
    return { scopes: [authorized], complete: true };
  }
  const searched = scopesOfCaller(limits, policy, caller);
  if (searched.scopes.length === 0 && searched.complete) {
    throw new HttpError(403, 'this caller may not manage runners in any scope');
  }
  return searched;
}

/**
 * What a JIT runner will be: the group and labels after the rule's defaults are applied, and the keys of
 * the labels the proxy derives for it (the instance-id label is always added besides).
 */
export interface RunnerShape {
  group: string;
  labels: string[];
  derivedLabels: DerivedLabelKey[];
}

/**
 * Refuses a requested label that only the proxy may set (derived-labels.ts): 400, whatever the policy
 * allows, since a caller claiming another instance's id could take over that instance's runner.
 */
export function assertNoReservedLabels(labels: readonly string[] | undefined): void {
  const reserved = labels?.find((label) => isReservedLabel(label));
  if (reserved !== undefined) {
    throw new HttpError(
      400,
      `label ${JSON.stringify(reserved)} is reserved: the proxy sets ${DERIVED_LABEL_PREFIX}… labels from the caller's identity token`,
    );
  }
}

/**
 * Finds the first applicable rule that allows all of the requested runner (its defaults filling what the
 * request left out). When none does, the refusal names what the first rule refused. Reserved labels are
 * refused first (400).
 */
export function resolveRunnerShape(
  rules: readonly PolicyRule[],
  requested: { group?: string | undefined; labels?: string[] | undefined },
): RunnerShape {
  assertNoReservedLabels(requested.labels);
  let firstRefusal: HttpError | undefined;
  for (const rule of rules) {
    const group = requested.group ?? rule.defaultRunnerGroup ?? DEFAULT_RUNNER_GROUP;
    const labels = requested.labels ?? rule.defaultLabels;
    let refusal: HttpError | undefined;
    if (!labels) {
      refusal = new HttpError(400, 'labels are required: this caller has no default labels');
    } else if (!allowsGroup(rule, group)) {
      refusal = new HttpError(403, `this caller may not join runner group ${JSON.stringify(group)}`);
    } else {
      const refused = labels.find((label) => !allowsLabel(rule, label));
      if (refused !== undefined)
        refusal = new HttpError(403, `this caller may not use label ${JSON.stringify(refused)}`);
    }
    if (!refusal) return { group, labels: labels!, derivedLabels: rule.derivedLabels ?? [] };
    firstRefusal ??= refusal;
  }
  throw firstRefusal ?? new HttpError(403, 'this caller may not register runners here');
}

/** GitHub takes at most this many labels for one runner. */
const MAX_RUNNER_LABELS = 100;

/** The JIT runner's labels: the rule's or the request's, then the ones the proxy derives (400 past 100). */
export function jitRunnerLabels(shape: RunnerShape, instance: ComputeEngineClaims): string[] {
  let derived: string[];
  try {
    derived = derivedLabels(instance, shape.derivedLabels);
  } catch (error) {
    if (error instanceof DerivedLabelError) throw new HttpError(400, error.message);
    throw error;
  }
  const labels = [...shape.labels, ...derived];
  if (labels.length > MAX_RUNNER_LABELS) {
    throw new HttpError(
      400,
      `labels must list at most ${MAX_RUNNER_LABELS - derived.length} labels: the proxy adds ${derived.length} of its own and GitHub takes ${MAX_RUNNER_LABELS}`,
    );
  }
  return labels;
}
