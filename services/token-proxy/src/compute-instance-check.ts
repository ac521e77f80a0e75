import { HttpError, withDeadline } from '#shared';
import type { ComputeEngineClaims } from '#shared';
import type * as ComputeV1Module from '@google-cloud/compute/build/src/v1/index.js';
import type { ComputeClientEndpoint } from '#shared';

// The v1 clients alone, as the instance deleter loads them: the package root also loads a 30 MB protobuf
// module. Imported (below) only when the check is on, so a proxy without it starts as fast as before.
type ComputeV1 = typeof ComputeV1Module;

/** The options every `@google-cloud/compute` v1 client constructor takes. */
export type ComputeClientOptions = NonNullable<ConstructorParameters<ComputeV1['InstancesClient']>[0]>;

/**
 * Whether the calling VM still exists: an identity token stays valid for up to an hour after its VM is
 * deleted, and a token copied off a VM works anywhere until then.
 */
export interface InstanceExistenceCheck {
  /**
   * Resolves when `instance` exists in Compute Engine with the token's instance id and is RUNNING; 403
   * when it is gone, replaced by another VM of the same name, or stopped; 503 when Compute Engine cannot
   * tell within the deadline (fail closed).
   */
  assertExists(instance: ComputeEngineClaims): Promise<void>;
}

export interface ComputeInstanceCheckOptions {
  endpoint?: ComputeClientEndpoint;
  /** Credentials; Application Default Credentials (the proxy's service account) when absent. */
  authClient?: ComputeClientOptions['authClient'];
  /** How long one check may take, in ms. */
  deadlineMs: number;
}

/** The HTTP status of an `@google-cloud/compute` error (a GaxiosError's `status`, or an HTTP-range `code`). */
function statusOf(error: unknown): number | undefined {
  const { status, code } = (error ?? {}) as { status?: unknown; code?: unknown };
  return [status, code].find((value): value is number => typeof value === 'number' && value >= 100);
}

/**
 * Checks instances with `instances.get`, which needs `compute.instances.get` on the VMs' projects (the
 * role `roles/compute.viewer` has it).
 * https://cloud.google.com/compute/docs/reference/rest/v1/instances/get
 */
export function createComputeInstanceCheck(options: ComputeInstanceCheckOptions): InstanceExistenceCheck {
  let client: Promise<InstanceType<ComputeV1['InstancesClient']>> | undefined;
  const instances = () =>
    (client ??= import('@google-cloud/compute/build/src/v1/index.js').then(
      ({ InstancesClient }) =>
        new InstancesClient({
          ...options.endpoint,
          ...(options.authClient ? { authClient: options.authClient } : {}),
        }),
    ));

  return {
    async assertExists(instance) {
      const what = `instance ${instance.instanceName} (id ${instance.instanceId}) in ${instance.projectId}/${instance.zone}`;
      let found: { id?: unknown; status?: unknown } | undefined;
      try {
        found = await withDeadline(
          options.deadlineMs,
          () => new HttpError(503, `Compute Engine did not say in time whether ${what} exists; retry later`),
          async () => {
            const [result] = await (
              await instances()
            ).get(
              { project: instance.projectId, zone: instance.zone, instance: instance.instanceName },
              { timeout: options.deadlineMs, maxRetries: 0 },
            );
            return result;
          },
        );
      } catch (error) {
        if (error instanceof HttpError) throw error;
        if (statusOf(error) === 404) throw new HttpError(403, `${what} no longer exists`);
        const status = statusOf(error);
        throw new HttpError(
          503,
          `cannot check that ${what} exists: Compute Engine ${status === undefined ? 'failed' : `answered HTTP ${status}`}`,
          { 'Retry-After': '5' },
        );
      }
      // Decoded with `longs: String`, so the id arrives as the exact decimal string.
      if (String(found?.id ?? '') !== instance.instanceId) {
        throw new HttpError(403, `${what} no longer exists: a VM of that name has another id`);
      }
      if (found?.status !== 'RUNNING') {
        throw new HttpError(403, `${what} is not running (${String(found?.status ?? 'no status')})`);
      }
    },
  };
}
