export { createApp } from './app.js';
export type { TokenProxyDeps } from './app.js';
export { loadConfig } from './config.js';
export type { GitHubCredentials, TokenProxyConfig } from './config.js';
export { GitHubError, toGitHubError } from './github-error.js';
export type { GitHubFailure } from './github-error.js';
export { createOctokitRunnerApi } from './github-runner-api.js';
export type {
  GitHubRunnerApi,
  JitConfig,
  JitConfigRequest,
  OctokitRunnerApiOptions,
  RunnerGroupInfo,
  RunnerInfo,
  RunnerToken,
} from './github-runner-api.js';
export { OPEN_POLICY, parsePolicy, PolicyError } from './policy.js';
export type { Policy, PolicyRule } from './policy.js';
export { createRunnerGroupResolver } from './runner-group-resolver.js';
export type { RunnerGroupResolver } from './runner-group-resolver.js';
export { formatScope, parseScope, ScopeError, scopeKey, scopePath } from './scope.js';
export type { Scope } from './scope.js';
export { createTokenCache } from './token-cache.js';
export type { TokenCache } from './token-cache.js';
