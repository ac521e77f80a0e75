// The instance deleter's public surface: how to build it (createInstanceDeleter, or createApp from its
// parts), its configuration, and the pure helpers its tests use. Everything else stays inside the service.
export { createApp } from './app.js';
export type { InstanceDeleterDeps } from './app.js';
export type { ConditionalDeletion, ConditionalDeletionReason } from './delete-own-instance.js';
export { createCallerLimit } from './caller-limit.js';
export type { CallerLimit } from './caller-limit.js';
export { ComputeAuthClient } from './compute-auth-client.js';
export type { ComputeAuthClientOptions, CredentialSource } from './compute-auth-client.js';
export type { ComputeClient } from './compute-client.js';
export { ComputeError, computeFailure, toComputeError } from './compute-error.js';
export { loadConfig } from './config.js';
export type { InstanceDeleterConfig } from './config.js';
export { createDeleterComputeClient, createInstanceDeleter } from './create-instance-deleter.js';
export type { DeleterComputeOptions, InstanceDeleterOverrides } from './create-instance-deleter.js';
export { createKeyedMutex } from './keyed-mutex.js';
export type { KeyedMutex } from './keyed-mutex.js';
export { formatMigRef, parseCreatedBy, parseResourceUrl } from './resource-ref.js';
export type { ResourceRef } from './resource-ref.js';
