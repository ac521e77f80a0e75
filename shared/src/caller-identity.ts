import { HttpError } from './http-error.js';

/** The Compute Engine claims of a `format=full` identity token: which VM is calling. */
export interface ComputeEngineClaims {
  projectId: string;
  /** Kept as a decimal string, like every Compute Engine number we compare. */
  projectNumber: string;
  zone: string;
  /** A uint64 as a decimal string: 19-digit ids do not fit a JS number exactly. */
  instanceId: string;
  instanceName: string;
}

/** Who called, as proven by a verified Google identity token. */
export interface CallerIdentity {
  /** The service account's unique numeric id. */
  sub: string;
  /** The service account's email, present only when Google marked it verified. */
  email?: string;
  /** Present when the VM asked its metadata server for `format=full`. */
  compute?: ComputeEngineClaims;
}

/** A short description of a caller for logs and audit lines (never the token). */
export function describeCaller(caller: CallerIdentity): Record<string, string> {
  const fields: Record<string, string> = { sub: caller.sub };
  if (caller.email !== undefined) fields.email = caller.email;
  if (caller.compute) {
    fields.project = caller.compute.projectId;
    fields.zone = caller.compute.zone;
    fields.instance = caller.compute.instanceName;
    fields.instanceId = caller.compute.instanceId;
  }
  return fields;
}

/**
 * The calling VM: the Compute Engine claims a `format=full` identity token carries. A token without them
 * is genuine but names no instance, which every VM-bound endpoint needs: 401 with `invalid_token`, since
 * the remedy is another token (RFC 6750 §3.1, https://www.rfc-editor.org/rfc/rfc6750#section-3.1).
 * https://cloud.google.com/compute/docs/instances/verifying-instance-identity#token_format
 */
export function requireComputeEngineClaims(caller: CallerIdentity): ComputeEngineClaims {
  if (!caller.compute) {
    throw new HttpError(
      401,
      'identity token has no Compute Engine claims: request it from the metadata server with format=full',
      { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    );
  }
  return caller.compute;
}
