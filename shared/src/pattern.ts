/**
 * A configured matcher: a literal, or `match:REGEX`. A regex always has to match the whole value (it is
 * wrapped in `^(?:…)$`), so `match:my-org/.*` never matches `evil-my-org/x`, unlike the upstream proxy.
 */
export interface ValuePattern {
  /** The text as configured, for messages. */
  readonly source: string;
  test(value: string): boolean;
}

export interface PatternOptions {
  /** GitHub names are case-insensitive; Compute Engine names are not. */
  caseInsensitive?: boolean;
}

/** Thrown when a `match:` entry is not a valid regular expression. */
export class PatternError extends Error {
  override readonly name = 'PatternError';
}

/** Compiles an anchored regular expression from `source` (no `match:` prefix expected). */
export function compileAnchoredRegex(source: string, options: PatternOptions = {}): RegExp {
  try {
    // The `u` flag makes the syntax strict (no silently literal escapes such as `\-` outside classes).
    return new RegExp(`^(?:${source})$`, options.caseInsensitive ? 'iu' : 'u');
  } catch (error) {
    throw new PatternError(
      `invalid regular expression ${JSON.stringify(source)}: ${(error as Error).message}`,
    );
  }
}

/** Compiles one literal or `match:REGEX` entry. */
export function compilePattern(entry: string, options: PatternOptions = {}): ValuePattern {
  if (entry.startsWith('match:')) {
    const regex = compileAnchoredRegex(entry.slice('match:'.length), options);
    return { source: entry, test: (value) => regex.test(value) };
  }
  if (options.caseInsensitive) {
    const expected = entry.toLowerCase();
    return { source: entry, test: (value) => value.toLowerCase() === expected };
  }
  return { source: entry, test: (value) => value === entry };
}

/** True when any of `patterns` matches `value`. */
export function matchesAny(patterns: readonly ValuePattern[], value: string): boolean {
  return patterns.some((pattern) => pattern.test(value));
}
