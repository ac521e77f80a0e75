// The instance deleter's public surface: how to build it (createInstanceDeleter, or createApp from its
// parts), its configuration, and the pure helpers its tests use. Everything else stays inside the service.
export { createApp } from './app.js';
export type { InstanceDeleterDeps } from './app.js';
export type { ComputeClient } from './compute-client.js';
export { parseComputeEndpoint } from './compute-endpoint.js';
export type { ComputeClientEndpoint } from './compute-endpoint.js';
export { ComputeError, computeFailure, toComputeError } from './compute-error.js';
export { loadConfig } from './config.js';
export type { InstanceDeleterConfig } from './config.js';
export { createInstanceDeleter } from './create-instance-deleter.js';
export type { InstanceDeleterOverrides } from './create-instance-deleter.js';
export { createKeyedMutex } from './keyed-mutex.js';
export type { KeyedMutex } from './keyed-mutex.js';
export { formatMigRef, parseCreatedBy, parseResourceUrl } from './resource-ref.js';
export type { ResourceRef } from './resource-ref.js';
