import { HttpError } from '#shared';
import type { ComputeEngineClaims } from '#shared';
import type { ComputeClient } from './compute-client.js';
import { withComputeContext } from './compute-error.js';
import { formatMigRef, parseCreatedBy } from './resource-ref.js';
import type { ResourceRef } from './resource-ref.js';

/** What resolving the caller's MIG needs. */
export interface ResolveCallerMigDeps {
  compute: ComputeClient;
  /** Anchored: the whole MIG name must match. */
  migPattern: RegExp;
}

/**
 * The calling VM's MIG, once the token's VM is proven to be the live instance (same name and id) and its
 * `created-by` MIG is one of its own project's that this service serves; 403 otherwise, 404 when the
 * instance does not exist. The MIG comes back named by project id, as every later call names it.
 * https://cloud.google.com/compute/docs/instance-groups/getting-info-about-migs#checking_if_a_vm_is_part_of_a_mig
 */
export async function resolveCallerMig(
  deps: ResolveCallerMigDeps,
  vm: ComputeEngineClaims,
): Promise<ResourceRef> {
  const name = vm.instanceName;
  const instance = await withComputeContext(
    `look up instance ${name} in zone ${vm.zone} of project ${vm.projectId}`,
    () => deps.compute.getInstance(vm.projectId, vm.zone, name),
  );
  // Names are reused and ids are not; ids exceed a JS number's precision, so compare the strings.
  if (instance.id !== vm.instanceId) {
    throw new HttpError(403, `instance ${name} is not the VM this token was issued to: its id differs`);
  }
  if (instance.createdBy === undefined) {
    throw new HttpError(403, `instance ${name} is not in a managed instance group`);
  }
  const mig = parseCreatedBy(instance.createdBy);
  if (!mig) {
    throw new HttpError(
      403,
      `instance ${name} is not in a managed instance group: its created-by metadata names no MIG`,
    );
  }
  if (mig.project !== vm.projectNumber && mig.project !== vm.projectId) {
    throw new HttpError(
      403,
      `instance ${name} was created by MIG ${formatMigRef(mig)}, outside its own project ${vm.projectId}`,
    );
  }
  if (!deps.migPattern.test(mig.name)) {
    throw new HttpError(403, `MIG ${mig.name} is not one this service may delete VMs from`);
  }
  // The token names the project by id; so does every call from here on.
  return { ...mig, project: vm.projectId };
}
