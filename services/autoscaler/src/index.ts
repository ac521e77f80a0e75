export { parseComputeEndpoint } from './compute-endpoint.js';
export type { ComputeEndpoint } from './compute-endpoint.js';
export { loadConfig } from './config.js';
export type { AutoscalerConfig, GitHubAppCredentials, LoadConfigOptions } from './config.js';
export {
  INSTANCE_NAME,
  instanceNameFor,
  MAX_INSTANCE_NAME_PREFIX_LENGTH,
  parseInstanceName,
} from './instance-name.js';
export { labelsCover, matchPool, servesRepository } from './match-pool.js';
export type { PoolMatch } from './match-pool.js';
export { formatMigRef, parseMigRef } from './mig-ref.js';
export type { MigRef } from './mig-ref.js';
export { formatRunnerScope, parsePoolConfig, parseRunnerScope, PoolConfigError } from './pool-config.js';
export type { Pool, RunnerScope } from './pool-config.js';
