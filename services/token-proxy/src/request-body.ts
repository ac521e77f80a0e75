import express from 'express';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { HttpError, parseStrictJson } from '#shared';
import type { StrictJsonError } from '#shared';

/** Bodies larger than this are refused with 413 before they are parsed. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads the body as text whatever its Content-Type: existing VM scripts send JSON with
 * `curl --data-binary`, which labels it `application/x-www-form-urlencoded`.
 */
export function readBodyAsText(): RequestHandler {
  return express.text({ type: () => true, limit: MAX_BODY_BYTES });
}

/** Labels become a comma-separated list for the runner, so commas and spaces are out. */
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,99}$/;
const GROUP = /^[^\p{Cc}]{1,128}$/u;
const WORK_FOLDER = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._/-]{1,200}$/;

const scopeField = z
  .string({ error: (issue) => (issue.input === undefined ? 'scope is required' : 'scope must be a string') })
  .min(1, 'scope must not be empty');

/** `{"scope": "..."}`, for /register, /remove and DELETE /runner. */
export const scopeBody = z.strictObject({ scope: scopeField });

/** The body of /jitconfig. The runner's name is not among the fields: it always comes from the token. */
export const jitConfigBody = z.strictObject({
  scope: scopeField,
  labels: z
    .array(
      z
        .string({ error: 'labels must be strings' })
        .regex(
          LABEL,
          'each label must be 1-100 characters: letters, digits and . _ : + = / - (starting with a letter or digit)',
        ),
      {
        error: 'labels must be an array of strings',
      },
    )
    .min(1, 'labels must list at least one label')
    .max(100, 'labels must list at most 100 labels')
    .refine(
      (labels) => new Set(labels.map((l) => l.toLowerCase())).size === labels.length,
      'labels must not repeat',
    )
    .optional(),
  runner_group: z
    .string({ error: 'runner_group must be a string' })
    .regex(GROUP, 'runner_group must be 1-128 printable characters')
    .optional(),
  work_folder: z
    .string({ error: 'work_folder must be a string' })
    .regex(
      WORK_FOLDER,
      'work_folder must be a relative path of letters, digits and . _ / - without ".." segments',
    )
    .optional(),
});

/** Whether `value` is exactly what {@link scopeBody} accepts: one own key, `scope`, a non-empty string. */
function isPlainScopeBody(value: object): value is z.output<typeof scopeBody> {
  let keys = 0;
  for (const key in value) {
    if (key !== 'scope') return false;
    keys += 1;
  }
  const scope = (value as { scope?: unknown }).scope;
  return keys === 1 && typeof scope === 'string' && scope.length > 0;
}

/**
 * Parses the text body as JSON and validates it, answering 400 with every problem named. A key written
 * twice in one object is refused (400), since readers disagree on which one counts. JSON.parse keeps
 * `__proto__` as a plain own key, which the strict schema then refuses as an unknown field.
 */
export function parseBody<S extends z.ZodType>(text: unknown, schema: S): z.output<S> {
  const raw = typeof text === 'string' ? text : '';
  if (raw.trim() === '')
    throw new HttpError(400, 'request body is empty: send a JSON object such as {"scope": "my-org"}');
  let value: unknown;
  try {
    value = parseStrictJson(raw);
  } catch (error) {
    throw new HttpError(
      400,
      (error as StrictJsonError).reason === 'duplicate-key'
        ? `request body is ambiguous: ${(error as Error).message}`
        : 'request body is not valid JSON',
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'request body must be a JSON object');
  }
  // Every registration in a boot storm sends exactly `{"scope": "..."}`: what scopeBody accepts, taken
  // as it is without building a copy. Anything else goes through the schema and its messages.
  if ((schema as z.ZodType) === scopeBody && isPlainScopeBody(value)) return value as z.output<S>;
  const result = schema.safeParse(value);
  if (!result.success) {
    const messages = result.error.issues.map((issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
        : issue.message,
    );
    throw new HttpError(400, [...new Set(messages)].join('; '));
  }
  return result.data;
}
