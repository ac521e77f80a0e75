export { createApp } from './app.js';
export type { InstanceDeleterDeps } from './app.js';
export { checkScaleDown } from './check-scale-down.js';
export type { ScaleDownDecision, ScaleDownReason, StabilizeClock } from './check-scale-down.js';
export { createComputeClient } from './compute-client.js';
export type {
  ComputeClient,
  ComputeClientOptions,
  InstanceInfo,
  ManagedInstanceInfo,
  MigInfo,
} from './compute-client.js';
export { parseComputeEndpoint } from './compute-endpoint.js';
export type { ComputeClientEndpoint } from './compute-endpoint.js';
export { ComputeError, computeFailure, toComputeError, withComputeContext } from './compute-error.js';
export { loadConfig } from './config.js';
export type { InstanceDeleterConfig } from './config.js';
export { createInstanceDeleter } from './create-instance-deleter.js';
export type { InstanceDeleterOverrides } from './create-instance-deleter.js';
export { deleteOwnInstance } from './delete-own-instance.js';
export type { DeleteOwnInstanceDeps, DeletionOutcome } from './delete-own-instance.js';
export { createKeyedMutex } from './keyed-mutex.js';
export type { KeyedMutex } from './keyed-mutex.js';
export {
  CREATED_BY_KEY,
  describeResource,
  formatMigRef,
  parseCreatedBy,
  parseResourceUrl,
} from './resource-ref.js';
export type { ResourceRef } from './resource-ref.js';
export { resolveCallerMig } from './resolve-caller-mig.js';
export type { ResolveCallerMigDeps } from './resolve-caller-mig.js';
