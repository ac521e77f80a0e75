import crypto from 'node:crypto';

/**
 * Compute Engine instance names: 1-63 characters, a lower-case letter first, then letters, digits and
 * hyphens, not ending in a hyphen. https://cloud.google.com/compute/docs/naming-resources#resource-name-format
 */
export const INSTANCE_NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/** Longest prefix that leaves room for `-<job id>-<attempt>`: job ids are int64 (19 digits), attempts < 1000. */
export const MAX_INSTANCE_NAME_PREFIX_LENGTH = 63 - '-'.length - 19 - '-999'.length;

/**
 * The VM requested for a job: `<prefix>-<job id>` for the first request, `<prefix>-<job id>-<attempt>` when a
 * VM for that job is requested again (a stock-out moved it to another MIG, or it was taken by another job).
 * The same delivery twice gives the same name, so Compute refuses the second VM.
 */
export function instanceNameFor(prefix: string, jobId: number, attempt = 1): string {
  return attempt <= 1 ? `${prefix}-${jobId}` : `${prefix}-${jobId}-${attempt}`;
}

/** The job and attempt a name of {@link instanceNameFor} encodes, or `undefined` for another VM's name. */
export function parseInstanceName(
  prefix: string,
  name: string,
): { jobId: number; attempt: number } | undefined {
  if (!name.startsWith(`${prefix}-`)) return undefined;
  const match = /^(\d{1,19})(?:-(\d{1,3}))?$/.exec(name.slice(prefix.length + 1));
  if (!match) return undefined;
  const jobId = Number(match[1]);
  const attempt = match[2] === undefined ? 1 : Number(match[2]);
  if (!Number.isSafeInteger(jobId)) return undefined;
  // `-1` is never written: the first attempt has no suffix, so `x-5-1` is not ours.
  if (match[2] !== undefined && attempt < 2) return undefined;
  return { jobId, attempt };
}

/** The suffix of a warm pool's VM: `-w` and 10 random letters or digits (not a job id, so never parsed as one). */
const WARM_SUFFIX = /^-w[a-z0-9]{10}$/;

/**
 * A name for a VM the warm pool asks for, bound to no job: `<prefix>-w<10 random [a-z0-9]>` (at most 51
 * characters with the longest prefix).
 */
export function warmInstanceName(prefix: string): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let suffix = '';
  for (const byte of crypto.randomBytes(10)) suffix += alphabet[byte % alphabet.length];
  return `${prefix}-w${suffix}`;
}

/** True for a name {@link warmInstanceName} gives with `prefix`. */
export function isWarmInstanceName(prefix: string, name: string): boolean {
  return name.startsWith(prefix) && WARM_SUFFIX.test(name.slice(prefix.length));
}
