// `npm run fleet`: how to run it in process (tests), its exit codes and help, and its planning functions.
export { ComputeCallError, createComputeRolloutApi } from './compute-rollout-api.js';
export type { ComputeRolloutApi } from './compute-rollout-api.js';
export {
  canaryOf,
  planCanary,
  planDirectUpdate,
  planPromote,
  selectMigs,
  stableTemplateOf,
  updatePolicyFor,
} from './plan-rollout.js';
export type { MigChange, RolloutPlan, UpdateType } from './plan-rollout.js';
export { RESOURCE_NAME, templateArgumentProblems, templateFrom } from './plan-template.js';
export { runFleetCli } from './run-fleet-cli.js';
export type { FleetCliDeps } from './run-fleet-cli.js';
export { EXIT, USAGE } from './usage.js';
