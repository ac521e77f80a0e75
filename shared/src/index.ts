export { abbreviate, MAX_ECHOED_LENGTH } from './abbreviate.js';
export { createAuthMiddleware, callerOf, SERVERLESS_AUTHORIZATION } from './auth-middleware.js';
export type { AuthMiddlewareOptions } from './auth-middleware.js';
export { describeCaller, requireComputeEngineClaims } from './caller-identity.js';
export type { CallerIdentity, ComputeEngineClaims } from './caller-identity.js';
export { audienceProblem, commonEnvShape, commonConfigFrom } from './common-config.js';
export type { CommonConfig } from './common-config.js';
export { ConfigError, describeIssues } from './config-error.js';
export { createServiceApp } from './create-service-app.js';
export type { RouteMethod, RouteMethods, ServiceAppOptions } from './create-service-app.js';
export { createDeadlineFetch } from './deadline-fetch.js';
export { createErrorMiddleware, notFound, methodNotAllowed } from './error-middleware.js';
export { HttpError } from './http-error.js';
export { AuthError, AuthUnavailableError, createIdTokenVerifier } from './id-token-verifier.js';
export type { AuthFailureReason, IdTokenVerifier, IdTokenVerifierOptions } from './id-token-verifier.js';
export { createIapMiddleware, viewerOf } from './iap-middleware.js';
export { createIapVerifier, IAP_ASSERTION_HEADER, IAP_ISSUER, IapAssertionError } from './iap-verifier.js';
export type { IapFailureReason, IapIdentity, IapVerifier, IapVerifierOptions } from './iap-verifier.js';
export { isIapViewer, parseIapViewers, IapViewersError } from './iap-viewers.js';
export type { IapViewers } from './iap-viewers.js';
export { createSigningKeyCache, maxAgeMs, SigningKeysUnavailableError } from './signing-key-cache.js';
export type { SigningKeyCache, SigningKeyCacheOptions, SigningKeys } from './signing-key-cache.js';
export { createLogger } from './logger.js';
export type { Logger, LoggerOptions } from './logger.js';
export { envInteger, parseEnv } from './parse-env.js';
export { parseList } from './parse-list.js';
export { parseStrictJson, StrictJsonError } from './parse-strict-json.js';
export type { JsonRefusal } from './parse-strict-json.js';
export type { Env } from './parse-env.js';
export { compilePattern, compileAnchoredRegex, matchesAny, PatternError } from './pattern.js';
export type { PatternOptions, ValuePattern } from './pattern.js';
export { createRequestLogger, requestLog } from './request-logger.js';
export { runService } from './run-service.js';
export type { RunServiceOptions } from './run-service.js';
export { startServer } from './start-server.js';
export type { RunningServer, StartServerOptions } from './start-server.js';
export { parseTraceContext } from './trace-context.js';
export type { TraceContext } from './trace-context.js';
export { withDeadline } from './with-deadline.js';
export type { Deadline } from './with-deadline.js';
export { parseComputeEndpoint } from './compute-endpoint.js';
export type { ComputeClientEndpoint } from './compute-endpoint.js';
export { createRunnerReleasesApi, RunnerReleasesError } from './runner-releases-api.js';
export type {
  RunnerReleaseList,
  RunnerReleasesApi,
  RunnerReleasesApiOptions,
} from './runner-releases-api.js';
export {
  compareRunnerVersions,
  ERROR_AFTER_DAYS,
  oldestVersion,
  parseRunnerVersion,
  UPDATE_WINDOW_DAYS,
  versionDeadline,
  WARN_AFTER_DAYS,
} from './runner-version-deadline.js';
export type { DeadlineLevel, RunnerRelease, VersionDeadline } from './runner-version-deadline.js';
