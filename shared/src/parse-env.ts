import type { z } from 'zod';
import { ConfigError, describeIssues } from './config-error.js';

/** The environment as the services see it: a plain map of strings. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Validates `env` against `schema`, treating empty variables as unset, and throws one
 * {@link ConfigError} listing every problem.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: Env): z.output<S> {
  const present: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') present[key] = value;
  }
  const result = schema.safeParse(present);
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues));
  return result.data;
}
