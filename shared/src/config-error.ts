import type { z } from 'zod';

/**
 * Thrown by a service's `loadConfig` with every problem found, so an operator fixes them all in one go.
 * Messages name variables, never their values: some of them are secrets.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Formats zod issues as `VARIABLE: message` lines, without the values that failed. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = issue.path.map(String).join('.');
    return where === '' ? issue.message : `${where}: ${issue.message}`;
  });
}
