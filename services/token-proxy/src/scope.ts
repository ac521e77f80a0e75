/**
 * Where runners are registered: an organization, a repository, or (PAT only) an enterprise.
 * Every part is checked against GitHub's naming rules before any URL is built from it.
 */
export type Scope =
  | { kind: 'org'; org: string }
  | { kind: 'repo'; owner: string; repo: string }
  | { kind: 'enterprise'; enterprise: string };

/** Thrown for a scope that is not a valid org, owner/repo or enterprise:slug; the message names which. */
export class ScopeError extends Error {
  override readonly name = 'ScopeError';
}

/** A GitHub user or organization login: alphanumerics and single inner hyphens, at most 39 characters. */
const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
/** A repository name: ASCII letters, digits, `.`, `-` and `_`, at most 100 characters, not `.` or `..`. */
const REPO = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}$/;
/** An enterprise slug: like a login. */
const ENTERPRISE = LOGIN;
const MAX_SCOPE_LENGTH = 256;

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/**
 * Parses `ORG`, `OWNER/REPO` (leading and trailing slashes trimmed, as the upstream proxy does) or
 * `enterprise:SLUG`.
 */
export function parseScope(input: string): Scope {
  if (input.length > MAX_SCOPE_LENGTH)
    throw new ScopeError(`scope is longer than ${MAX_SCOPE_LENGTH} characters`);
  if (input.startsWith('enterprise:')) {
    const enterprise = input.slice('enterprise:'.length);
    if (!ENTERPRISE.test(enterprise)) throw new ScopeError(`scope ${show(input)}: invalid enterprise slug`);
    return { kind: 'enterprise', enterprise };
  }
  const trimmed = input.replace(/^\/+|\/+$/g, '');
  const parts = trimmed.split('/');
  if (parts.length === 1) {
    if (!LOGIN.test(parts[0]!)) {
      throw new ScopeError(
        `scope ${show(input)}: not a valid organization name, OWNER/REPO or enterprise:SLUG`,
      );
    }
    return { kind: 'org', org: parts[0]! };
  }
  if (parts.length === 2) {
    const [owner, repo] = parts as [string, string];
    if (!LOGIN.test(owner)) throw new ScopeError(`scope ${show(input)}: invalid owner name`);
    if (!REPO.test(repo)) throw new ScopeError(`scope ${show(input)}: invalid repository name`);
    return { kind: 'repo', owner, repo };
  }
  throw new ScopeError(`scope ${show(input)}: expected ORG, OWNER/REPO or enterprise:SLUG`);
}

/** The scope as written in configuration and policies: `org`, `owner/repo` or `enterprise:slug`. */
export function formatScope(scope: Scope): string {
  switch (scope.kind) {
    case 'org':
      return scope.org;
    case 'repo':
      return `${scope.owner}/${scope.repo}`;
    case 'enterprise':
      return `enterprise:${scope.enterprise}`;
  }
}

/** A case-folded key: GitHub names are case-insensitive, so `My-Org` and `my-org` share a cache entry. */
export function scopeCacheKey(scope: Scope): string {
  return formatScope(scope).toLowerCase();
}

/**
 * The REST path prefix of a scope's runner endpoints. Safe to interpolate: every part matched a pattern
 * that admits no `/`, `%`, `?`, `#`, whitespace or non-ASCII character.
 */
export function scopePath(scope: Scope): string {
  switch (scope.kind) {
    case 'org':
      return `/orgs/${scope.org}`;
    case 'repo':
      return `/repos/${scope.owner}/${scope.repo}`;
    case 'enterprise':
      return `/enterprises/${scope.enterprise}`;
  }
}
