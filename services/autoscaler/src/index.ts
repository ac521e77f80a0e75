export { admitWithinCap } from './admit-within-cap.js';
export { createApp, MAX_WEBHOOK_BYTES } from './app.js';
export type { AutoscalerRoutes } from './app.js';
export { createBatcher } from './batcher.js';
export type { Batcher, BatcherOptions } from './batcher.js';
export {
  ComputeError,
  computeFailure,
  NO_CAPACITY_CODES,
  operationError,
  toComputeError,
} from './compute-error.js';
export type { ComputeFailure } from './compute-error.js';
export { createComputeMigApi, KEEP_LABEL } from './compute-mig-api.js';
export type {
  AttemptError,
  ComputeClientOptions,
  ComputeMigApi,
  ComputeMigApiOptions,
  KeptInstance,
  MigMember,
} from './compute-mig-api.js';
export { loadConfig } from './config.js';
export type { AutoscalerConfig, GitHubAppCredentials, LoadConfigOptions, ReaperSettings } from './config.js';
export { createService } from './create-service.js';
export type { AutoscalerService, ServiceOverrides } from './create-service.js';
export { createFleetHandler, describeFleet, describeRow } from './describe-fleet.js';
export type { FleetView, PoolView, RowView } from './describe-fleet.js';
export { createFleetState, JOB_MEMORY_MS } from './fleet-state.js';
export type { DeliveryRecord, FleetState, JobStatus, ScaleDecision, TrackedJob } from './fleet-state.js';
export { createGitHubAppApi } from './github-app-api.js';
export type { GitHubAppApi, GitHubAppApiOptions, HookDelivery, RunnerInfo } from './github-app-api.js';
export { GitHubError, toGitHubError } from './github-error.js';
export type { GitHubFailure } from './github-error.js';
export { CHECK_JOBS_OLDER_THAN_MS, handleWorkflowJob, parseWorkflowJob } from './handle-workflow-job.js';
export type { WorkflowJobDeps, WorkflowJobResult } from './handle-workflow-job.js';
export {
  INSTANCE_NAME,
  instanceNameFor,
  isWarmInstanceName,
  MAX_INSTANCE_NAME_PREFIX_LENGTH,
  parseInstanceName,
  warmInstanceName,
} from './instance-name.js';
export { createFleetMemory, FLEET_MEMORY_MS, joinFleet } from './join-fleet.js';
export { METRIC_LOG_MESSAGES } from './log-messages.js';
export type { FleetMemory, FleetRow, JoinInput, RowState, RunnerView } from './join-fleet.js';
export { labelsCover, matchPool, servesRepository } from './match-pool.js';
export type { PoolMatch } from './match-pool.js';
export { formatMigRef, parseMigRef } from './mig-ref.js';
export type { MigRef } from './mig-ref.js';
export { createMutex } from './mutex.js';
export type { Mutex } from './mutex.js';
export { planReaping } from './plan-reaping.js';
export type {
  HeldReaping,
  PlannedReaping,
  PlanReapingOptions,
  ReapAction,
  ReapingPlan,
  ReapKind,
} from './plan-reaping.js';
export { formatRunnerScope, parsePoolConfig, parseRunnerScope, PoolConfigError } from './pool-config.js';
export type { Pool, PoolConfigOptions, RunnerScope } from './pool-config.js';
export { createPoolScaler } from './pool-scaler.js';
export type { CreateOutcome, MigView, PoolScaler, PoolScalerOptions } from './pool-scaler.js';
export { reapPool } from './reap-pool.js';
export type { ReaperDecision, ReapPoolDeps } from './reap-pool.js';
export { createRunnerVersionCheck } from './runner-version-check.js';
export type {
  PoolVersionState,
  ReleasesRead,
  RunnerVersionCheck,
  RunnerVersionCheckOptions,
} from './runner-version-check.js';
export { createWebhookHandler } from './receive-webhook.js';
export type { WebhookDeps } from './receive-webhook.js';
export { createReconcileHandler, createReconciler } from './reconcile.js';
export type { PoolReconciliation, ReconcileDeps, ReconcileSummary, Reconciler } from './reconcile.js';
export { requireCaller } from './require-caller.js';
export { INSTANCE_ID_LABEL_PREFIX, instanceIdOfLabels } from './runner-instance-id.js';
export type { InstanceIdOfLabels } from './runner-instance-id.js';
export { createWebhookSignatureVerifier } from './verify-webhook-signature.js';
export type { WebhookSignatureVerifier } from './verify-webhook-signature.js';
export { compileSchedule, isTimeZone, minIdleAt } from './warm-pool.js';
export type { MinIdleSchedule, WarmSchedule } from './warm-pool.js';
