import { compilePattern, PatternError } from '#shared';
import type { ValuePattern } from '#shared';
import { formatScope, parseScope, ScopeError } from './scope.js';

/**
 * Where a `match:` regex has a `*` right after a literal `/` or `-`, outside brackets: the upstream proxy's
 * glob-like spelling (`match:my-org/*`). Here regexes are anchored to the whole scope, so `/*` means "zero
 * or more slashes" and `match:my-org/*` matches only `my-org`; upstream, unanchored, it matched any scope
 * containing `my-org` (`evil-my-org` included). Neither is what it looks like. Returns the index of the `*`.
 */
function globLikeStar(source: string): number {
  let inClass = false;
  for (let i = 0; i < source.length; i += 1) {
    const ch = source[i];
    if (ch === '\\') {
      i += 1;
    } else if (inClass) {
      if (ch === ']') inClass = false;
    } else if (ch === '[') {
      inClass = true;
    } else if (ch === '*' && (source[i - 1] === '/' || source[i - 1] === '-') && source[i - 2] !== '\\') {
      return i;
    }
  }
  return -1;
}

/** What to write instead of a literal that can never be a scope, when the mistake is a common one. */
function literalHint(entry: string): string {
  if (entry === '*') return ': to allow every scope write "match:.*" (not recommended)';
  if (entry.includes('*'))
    return ': a wildcard needs "match:" and a regular expression, such as "match:my-org/.*"';
  if (/\s/.test(entry)) return ': separate entries with ";"';
  return '';
}

/**
 * Compiles one scope entry of `ALLOWED_SCOPES`, `DENIED_SCOPES` or a policy rule's `scopes`, refusing the
 * entries that can never match what they seem to mean:
 * - a literal that is not a scope (`my org`, `*`, `my-org/a/b`): it would match no request;
 * - a `match:` regex in the upstream glob style (`match:my-org/*`), with the regex that was meant.
 * A literal is kept in its canonical form (`/my-org/app/` → `my-org/app`), the form requests are matched in.
 * Scopes match case-insensitively, as GitHub names do.
 *
 * @throws PatternError with a message that names the entry and says what to write.
 */
export function compileScopePattern(entry: string): ValuePattern {
  if (entry.startsWith('match:')) {
    const source = entry.slice('match:'.length);
    const star = globLikeStar(source);
    if (star !== -1) {
      const meant = `match:${source.slice(0, star)}.${source.slice(star)}`;
      throw new PatternError(
        `${JSON.stringify(entry)} is written as a glob, but it is a regular expression that must match the whole scope: "${source.slice(star - 1, star + 1)}" means zero or more "${source[star - 1]}", not "anything". Write ${JSON.stringify(meant)} for what it seems to mean (and list the org itself too, if it is meant)`,
      );
    }
    try {
      return compilePattern(entry, { caseInsensitive: true });
    } catch (error) {
      const hint = source.startsWith('*') ? ': to allow every scope write "match:.*" (not recommended)' : '';
      throw new PatternError(`${(error as Error).message}${hint}`);
    }
  }
  let canonical: string;
  try {
    // Configured literals match case-insensitively, the `enterprise:` prefix included.
    canonical = formatScope(parseScope(entry.replace(/^enterprise:/i, 'enterprise:')));
  } catch (error) {
    if (!(error instanceof ScopeError)) throw error;
    throw new PatternError(
      `${JSON.stringify(entry)} can never be a scope (ORG, OWNER/REPO or enterprise:SLUG)${literalHint(entry)}`,
    );
  }
  return compilePattern(canonical, { caseInsensitive: true });
}
