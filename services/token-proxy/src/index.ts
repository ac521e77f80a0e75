// The token proxy's public surface: how to build it (createTokenProxy, or createApp from its parts), its
// configuration, and the pure helpers its tests use. Everything else stays inside the service.
export { createApp } from './app.js';
export type { TokenProxyDeps } from './app.js';
export { loadConfig } from './config.js';
export type { GitHubCredentials, TokenProxyConfig } from './config.js';
export { createTokenProxy } from './create-token-proxy.js';
export type { TokenProxyOverrides } from './create-token-proxy.js';
// The runner labels the proxy derives from a caller's identity token: the autoscaler and reaper join
// runners to VMs with these.
export {
  DERIVED_LABEL_PREFIX,
  derivedLabels,
  instanceIdLabel,
  instanceIdOfLabels,
  isBoundToInstance,
  isReservedLabel,
  OPTIONAL_DERIVED_LABEL_KEYS,
  parseDerivedLabel,
  regionOfZone,
} from './derived-labels.js';
export type { DerivedLabelKey } from './derived-labels.js';
export type { GitHubCallContext, GitHubRunnerApi, RunnerInfo, RunnerToken } from './github-runner-api.js';
export { CallerGoneError, createMutationScheduler, SERVICE_CALLER } from './mutation-scheduler.js';
export type {
  MutationCaller,
  MutationQueueStats,
  MutationScheduler,
  MutationSchedulerOptions,
} from './mutation-scheduler.js';
export { parsePolicy, PolicyError } from './policy.js';
export type { Policy, PolicyRule } from './policy.js';
export { formatScope, parseScope, ScopeError, scopeCacheKey, scopePath } from './scope.js';
export type { Scope } from './scope.js';
export { createTokenCache } from './token-cache.js';
export type { TokenCache } from './token-cache.js';
