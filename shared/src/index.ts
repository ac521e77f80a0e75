export { createAuthMiddleware, callerOf, bearerToken } from './auth-middleware.js';
export { describeCaller, requireComputeEngineClaims } from './caller-identity.js';
export type { CallerIdentity, ComputeEngineClaims } from './caller-identity.js';
export { commonEnvShape, commonConfigFrom } from './common-config.js';
export type { CommonConfig } from './common-config.js';
export { ConfigError, describeIssues } from './config-error.js';
export { createServiceApp } from './create-service-app.js';
export type { RouteMethod, RouteMethods, ServiceAppOptions } from './create-service-app.js';
export { createErrorMiddleware, notFound, methodNotAllowed } from './error-middleware.js';
export { HttpError } from './http-error.js';
export {
  AuthError,
  AuthUnavailableError,
  createIdTokenVerifier,
  normalizeAudience,
  GOOGLE_ISSUERS,
  GOOGLE_PEM_CERTS_URL,
  MAX_TOKEN_LIFETIME_SECONDS,
} from './id-token-verifier.js';
export type { AuthFailureReason, IdTokenVerifier, IdTokenVerifierOptions } from './id-token-verifier.js';
export { createLogger } from './logger.js';
export type { Logger, LoggerOptions } from './logger.js';
export { envInteger, parseEnv } from './parse-env.js';
export type { Env } from './parse-env.js';
export { compilePattern, compileAnchoredRegex, matchesAny, PatternError } from './pattern.js';
export type { PatternOptions, ValuePattern } from './pattern.js';
export { createRequestLogger, requestLog } from './request-logger.js';
export { runMain } from './run-main.js';
export { runService } from './run-service.js';
export type { RunServiceOptions } from './run-service.js';
export { startServer } from './start-server.js';
export type { RunningServer, StartServerOptions } from './start-server.js';
export { parseTraceContext, traceLogFields } from './trace-context.js';
export type { TraceContext } from './trace-context.js';
export { withDeadline } from './with-deadline.js';
export type { Deadline } from './with-deadline.js';
