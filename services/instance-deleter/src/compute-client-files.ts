/**
 * The seven `@google-cloud/compute` v1 clients the deleter uses, each with its file in
 * `@google-cloud/compute/build/src/v1/` (`<file>_client.js`). The client named `XClient` serves the API
 * service `google.cloud.compute.v1.X`. A module of its own so the build step that trims Compute's API
 * descriptor (services/instance-deleter/build/build-compute-descriptor.mjs) can read it without loading the clients.
 */
export const COMPUTE_CLIENT_FILES = {
  InstancesClient: 'instances',
  InstanceGroupManagersClient: 'instance_group_managers',
  RegionInstanceGroupManagersClient: 'region_instance_group_managers',
  AutoscalersClient: 'autoscalers',
  RegionAutoscalersClient: 'region_autoscalers',
  ZoneOperationsClient: 'zone_operations',
  RegionOperationsClient: 'region_operations',
} as const;

/** The API services of {@link COMPUTE_CLIENT_FILES}, such as `Instances`, in its order. */
export const COMPUTE_SERVICES: readonly string[] = Object.keys(COMPUTE_CLIENT_FILES).map((name) =>
  name.replace(/Client$/, ''),
);

/** Where the build writes the trimmed descriptor, relative to the compiled `compute-client.js`. */
export const COMPUTE_DESCRIPTOR_FILE = '../compute-descriptor.json';

/** What that file holds. */
export interface TrimmedComputeDescriptor {
  /** The `@google-cloud/compute` version it was cut from; any other version uses the full descriptor. */
  computeVersion: string;
  /** {@link COMPUTE_SERVICES} when it was written. */
  services: string[];
  /** protobufjs JSON: the services whole, and every message and enum reachable from their methods. */
  descriptor: object;
}
