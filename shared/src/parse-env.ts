import { z } from 'zod';
import { ConfigError, describeIssues } from './config-error.js';

/** The environment as the services see it: a plain map of strings. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * A variable holding a whole number from `min` to `max` (decimal digits only: no sign, no exponent, no
 * spaces), as a number. `message` is the one problem reported for anything else.
 */
export function envInteger(
  min: number,
  max: number,
  message = `must be a whole number from ${min} to ${max}`,
) {
  return z
    .string()
    .regex(/^\d+$/, message)
    .transform(Number)
    .refine((n) => n >= min && n <= max, message);
}

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
