export { createApp } from './app.js';
export type { InstanceDeleterDeps } from './app.js';
export { createGoogleComputeApi } from './compute-api.js';
export type {
  ComputeApi,
  ComputeClientOptions,
  InstanceInfo,
  ManagedInstanceInfo,
  MigInfo,
} from './compute-api.js';
export { parseComputeEndpoint } from './compute-endpoint.js';
export type { ComputeEndpoint } from './compute-endpoint.js';
export { ComputeError, computeFailure, toComputeError, withComputeContext } from './compute-error.js';
export { loadConfig } from './config.js';
export type { InstanceDeleterConfig } from './config.js';
export { createAppFromConfig } from './create-app-from-config.js';
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
export { checkScaleDown } from './scale-down-check.js';
export type { ScaleDownDecision, ScaleDownReason, StabilizeClock } from './scale-down-check.js';
