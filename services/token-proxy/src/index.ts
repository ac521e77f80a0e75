// The token proxy's public surface: how to build it (createTokenProxy, or createApp from its parts), its
// configuration, and the pure helpers its tests use. Everything else stays inside the service.
export { createApp } from './app.js';
export type { TokenProxyDeps } from './app.js';
export { loadConfig } from './config.js';
export type { GitHubCredentials, TokenProxyConfig } from './config.js';
export { createTokenProxy } from './create-token-proxy.js';
export type { TokenProxyOverrides } from './create-token-proxy.js';
export type { GitHubRunnerApi, RunnerToken } from './github-runner-api.js';
export { parsePolicy, PolicyError } from './policy.js';
export type { Policy, PolicyRule } from './policy.js';
export { formatScope, parseScope, ScopeError, scopeCacheKey, scopePath } from './scope.js';
export type { Scope } from './scope.js';
export { createTokenCache } from './token-cache.js';
export type { TokenCache } from './token-cache.js';
