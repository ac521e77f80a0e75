import crypto from 'node:crypto';
import http from 'node:http';
import type {
  FakeAutoscaler,
  FakeInstance,
  FakeManagedInstance,
  FakeMig,
  OperationRecord,
} from './compute-state.js';
import { locationField, locationUrl, memberUrl } from './compute-state.js';
import { renderMemberVersion, renderMigVersionFields, versionTargetReached } from './mig-versions.js';

/** The counters of `InstanceGroupManager.currentActions` (https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers). */
const CURRENT_ACTION_COUNTERS = [
  'none',
  'creating',
  'creatingWithoutRetries',
  'verifying',
  'recreating',
  'deleting',
  'abandoning',
  'restarting',
  'refreshing',
  'starting',
  'stopping',
  'suspending',
  'resuming',
];

function fingerprintOf(metadata: Record<string, string>): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify(metadata))
    .digest()
    .subarray(0, 8)
    .toString('base64');
}

/** An Operation as get/wait and the mutating calls answer it: RUNNING while polls are left, then DONE. */
export function renderOperation(op: OperationRecord): Record<string, unknown> {
  if (op.pollsLeft > 0) return { ...op.body, status: 'RUNNING', progress: 0 };
  const failure = op.failure
    ? {
        error: { errors: [{ code: op.failure.code, message: op.failure.message }] },
        httpErrorStatusCode: op.failure.httpErrorStatusCode,
        httpErrorMessage:
          op.failure.httpErrorMessage ??
          (http.STATUS_CODES[op.failure.httpErrorStatusCode] ?? 'ERROR').toUpperCase(),
      }
    : {};
  return { ...op.body, status: 'DONE', progress: 100, endTime: op.body.startTime, ...failure };
}

export function renderInstance(instance: FakeInstance): Record<string, unknown> {
  return {
    kind: 'compute#instance',
    id: instance.id,
    creationTimestamp: instance.creationTimestamp,
    name: instance.name,
    status: instance.status,
    zone: locationUrl(instance.project, 'zones', instance.zone),
    selfLink: instance.selfLink,
    metadata: {
      kind: 'compute#metadata',
      fingerprint: fingerprintOf(instance.metadata),
      items: Object.entries(instance.metadata).map(([key, value]) => ({ key, value })),
    },
    ...(Object.keys(instance.labels).length > 0 && { labels: { ...instance.labels } }),
    labelFingerprint: fingerprintOf(instance.labels),
  };
}

export function autoscalerUrl(mig: FakeMig, autoscaler: FakeAutoscaler): string {
  return `${locationUrl(mig.project, mig.scope, mig.location)}/autoscalers/${autoscaler.name}`;
}

export function renderMig(mig: FakeMig): Record<string, unknown> {
  const currentActions = Object.fromEntries(CURRENT_ACTION_COUNTERS.map((counter) => [counter, 0]));
  for (const member of mig.members.values()) {
    // CREATING_WITHOUT_RETRIES → creatingWithoutRetries
    const counter = member.currentAction
      .toLowerCase()
      .replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
    if (counter in currentActions) currentActions[counter] = (currentActions[counter] ?? 0) + 1;
  }
  const members = [...mig.members.values()];
  return {
    kind: 'compute#instanceGroupManager',
    id: mig.id,
    name: mig.name,
    ...locationField(mig.project, mig.scope, mig.location),
    selfLink: mig.selfLink,
    baseInstanceName: mig.name,
    instanceGroup: `${locationUrl(mig.project, mig.scope, mig.location)}/instanceGroups/${mig.name}`,
    targetSize: mig.targetSize,
    currentActions,
    status: {
      isStable: mig.stableOverride ?? members.every((member) => member.currentAction === 'NONE'),
      ...(mig.autoscaler ? { autoscaler: autoscalerUrl(mig, mig.autoscaler) } : {}),
      versionTarget: { isReached: versionTargetReached(mig) },
    },
    listManagedInstancesResults: 'PAGELESS',
    ...renderMigVersionFields(mig),
  };
}

/**
 * One entry of listManagedInstances. `instance` is there from the start; `id` and `instanceStatus` only
 * once the VM exists; `lastAttempt` while the MIG fails to create it
 * (https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers/listManagedInstances).
 */
export function renderManagedInstance(mig: FakeMig, member: FakeManagedInstance): Record<string, unknown> {
  return {
    instance: memberUrl(mig, member),
    name: member.name,
    currentAction: member.currentAction,
    ...(member.instance && { id: member.instance.id, instanceStatus: member.instance.status }),
    ...(member.lastAttemptErrors && { lastAttempt: { errors: { errors: member.lastAttemptErrors } } }),
    ...renderMemberVersion(mig, member),
  };
}

export function renderAutoscaler(mig: FakeMig, autoscaler: FakeAutoscaler): Record<string, unknown> {
  return {
    kind: 'compute#autoscaler',
    id: autoscaler.id,
    name: autoscaler.name,
    ...locationField(mig.project, mig.scope, mig.location),
    selfLink: autoscalerUrl(mig, autoscaler),
    target: mig.selfLink,
    status: autoscaler.status,
    ...(autoscaler.recommendedSize === null ? {} : { recommendedSize: autoscaler.recommendedSize }),
    autoscalingPolicy: {
      mode: autoscaler.mode,
      minNumReplicas: 0,
      maxNumReplicas: 10,
      coolDownPeriodSec: 60,
    },
  };
}
