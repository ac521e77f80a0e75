/**
 * The messages of the log lines that deploy/monitoring/metrics/ counts (`jsonPayload.message`): the code logs
 * them through these constants, and a test checks that every metric filter names one of them, so a filter
 * and the line it counts cannot drift apart.
 */
export const METRIC_LOG_MESSAGES = {
  /** INFO, each reconciliation (WARNING when a step failed): `failedDeliveries`, `problems`, per pool counts. */
  reconciled: 'reconciled',
  /**
   * WARNING: a queued job got no VM (`outcome` `at-capacity` or `failed`, answered 503; `blocked`, a pool
   * past its runner version's deadline, answered 200), `pool`.
   */
  noVmForQueuedJob: 'no VM for queued job',
  /** WARNING: createInstances refused in a MIG; its VMs went on to the pool's next MIG (`pool`, `mig`). */
  migDidNotCreate: 'MIG did not create VMs; trying the next MIG of the pool',
  /** WARNING: a member CREATING past STUCK_CREATING_SECONDS, deleted and requested in the next MIG. */
  stuckMoved: 'VM stuck in creation moved to the next MIG',
  /** WARNING, each reconciliation, per MIG with CREATING members whose last attempt failed. */
  migMembersFailing: 'MIG members failing to create',
  /** WARNING: GitHub refused or did not answer one redelivery (`deliveryId`, `guid`, `action`, `reason`). */
  redeliveryFailed: 'redelivery failed',
  /** INFO: an `in_progress` delivery of a job a pool serves (`jobId`, `pool`, `runnerName`, `waitSeconds`). */
  jobStarted: 'job started',
  /**
   * WARNING from 14 days into GitHub's 30-day update window, ERROR from 25, once per pool per reconciliation
   * (`pool`, `version`, `daysLeft`); see runner-version-check.ts.
   */
  runnerVersionOutOfDate: 'runner version out of date',
} as const;
