export { createApp } from './app.js';
export type { TokenProxyDeps } from './app.js';
export {
  authorizeScope,
  assertMayHaveToken,
  assertMayUseScope,
  resolveRunnerShape,
} from './authorize-caller.js';
export type { RunnerShape, ScopeLimits, ScopeLists } from './authorize-caller.js';
export { loadConfig } from './config.js';
export type { GitHubCredentials, TokenProxyConfig } from './config.js';
export { createTokenProxy } from './create-token-proxy.js';
export type { TokenProxyOverrides } from './create-token-proxy.js';
export { askGitHub, GitHubCallError, gitHubHttpError, toGitHubCallError } from './github-call-error.js';
export type { GitHubFailure } from './github-call-error.js';
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
export { issueJitConfig } from './issue-jit-config.js';
export type { IssueJitConfigDeps, JitRunnerRequest } from './issue-jit-config.js';
export { issueRunnerToken } from './issue-runner-token.js';
export type { IssueRunnerTokenDeps } from './issue-runner-token.js';
export { DEFAULT_RUNNER_GROUP, OPEN_POLICY, parsePolicy, PolicyError } from './policy.js';
export type { Policy, PolicyRule } from './policy.js';
export { removeOwnRunner } from './remove-own-runner.js';
export type { RemoveOwnRunnerDeps } from './remove-own-runner.js';
export { createRunnerGroupResolver } from './runner-group-resolver.js';
export type { RunnerGroupResolver } from './runner-group-resolver.js';
export { formatScope, parseScope, ScopeError, scopeCacheKey, scopePath } from './scope.js';
export type { Scope } from './scope.js';
export { createTokenCache } from './token-cache.js';
export type { TokenCache } from './token-cache.js';
