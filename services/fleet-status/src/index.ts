// The fleet status service's public surface: how to build it, its configuration, and the pieces its tests and
// `npm run fleet` reuse (the Compute rollout reader); the runner-version deadline and the releases reader are in #shared.
export { createApp } from './app.js';
export type { FleetStatusDeps } from './app.js';
export { AutoscalerFleetError, createAutoscalerFleetApi } from './autoscaler-fleet.js';
export type { AutoscalerFleetApi, AutoscalerFleetApiOptions } from './autoscaler-fleet.js';
export {
  ComputeReadError,
  computeErrorMessage,
  createComputeRolloutReader,
  migRolloutOf,
  RUNNER_SHA256_KEY,
  RUNNER_VERSION_KEY,
  templateName,
} from './compute-rollouts.js';
export type {
  ComputeClientOptions,
  ComputeRolloutReader,
  MigMemberTemplate,
  MigRollout,
  MigVersion,
  TemplateInfo,
} from './compute-rollouts.js';
export { loadConfig } from './config.js';
export type { FleetStatusConfig } from './config.js';
export { createService } from './create-service.js';
export type { FleetStatusOverrides, FleetStatusService } from './create-service.js';
export { describeStatus, VERSION_SOURCE } from './describe-status.js';
export type { MigStatus, PoolStatus, StatusView, TemplateUse, VmStatus } from './describe-status.js';
export type { FleetView } from './fleet-view.js';
export { escapeHtml, html, SafeHtml } from './html.js';
export { formatMigRef, parseMigRef, regionOf } from './mig-ref.js';
export type { MigRef } from './mig-ref.js';
export { REFRESH_SECONDS, renderStatusPage, STATUS_PAGE_CSP } from './render-status-page.js';
export { createStatusSnapshots } from './status-snapshots.js';
export type { StatusSnapshots } from './status-snapshots.js';
