// The v1 clients alone: the package root also loads the beta clients and a 30 MB protobuf module.
import * as v1 from '@google-cloud/compute/build/src/v1/index.js';
import type { protos } from '@google-cloud/compute';
import type { CallOptions } from 'google-gax';
import { withDeadline } from '#shared';
import { ComputeError, operationError, toComputeError } from './compute-error.js';
import type { MigRef } from './mig-ref.js';

type Operation = protos.google.cloud.compute.v1.IOperation;

/** The options every `@google-cloud/compute` v1 client constructor takes. */
export type ComputeClientOptions = NonNullable<ConstructorParameters<typeof v1.InstancesClient>[0]>;

/** Why the MIG could not create a member at its last attempt (`lastAttempt.errors.errors[]`). */
export interface AttemptError {
  code: string;
  message: string;
}

/** A MIG member as listManagedInstances reports it. */
export interface MigMember {
  name: string;
  /** The VM's instance id (a uint64 as a decimal string); '' until the VM exists. */
  id: string;
  /** Known as soon as the member is, before its VM exists (instance URLs are zonal even in regional MIGs). */
  zone: string;
  /** `NONE`, `CREATING`, `DELETING`, … */
  currentAction: string;
  /** The VM's status; '' until the VM exists. */
  instanceStatus: string;
  /** Non-empty while the MIG fails to create the VM. */
  lastAttemptErrors: AttemptError[];
}

/** The Compute Engine calls the autoscaler makes. Every failure is a {@link ComputeError}. */
export interface ComputeMigApi {
  getTargetSize(mig: MigRef): Promise<number>;
  listMembers(mig: MigRef): Promise<MigMember[]>;
  /**
   * Asks the MIG to create VMs with these names (at most 1000) and resolves once Compute accepted the
   * request: the Operation is DONE at that point, and the VMs appear as CREATING members.
   * https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers/createInstances
   */
  createInstances(mig: MigRef, names: readonly string[]): Promise<void>;
  /** Deletes members (also ones still CREATING) and resolves once Compute accepted the request. */
  deleteInstances(mig: MigRef, members: ReadonlyArray<{ zone: string; name: string }>): Promise<void>;
  /**
   * The VMs of a project labelled {@link KEEP_LABEL} (`github-runner-keep=true`), in every zone: one
   * filtered `instances.aggregatedList` (pages of 500), whatever the number of MIGs and zones.
   * https://cloud.google.com/compute/docs/reference/rest/v1/instances/aggregatedList
   */
  listKeptInstances(project: string): Promise<KeptInstance[]>;
}

/** A VM someone marked to be left alone (debugging a runner, say). */
export interface KeptInstance {
  id: string;
  name: string;
  zone: string;
}

/** The VM label that tells the reaper to leave a VM alone: never deleted, nor its runner. */
export const KEEP_LABEL = { key: 'github-runner-keep', value: 'true' } as const;

export interface ComputeMigApiOptions {
  /** Each method's deadline, in ms (default 4 s); past it the call fails as `unavailable`. */
  timeoutMs?: number;
}

const MEMBER_URL = /\/zones\/([^/]+)\/instances\/([^/]+)$/;
/** Operations.wait returns after about two minutes at most, or earlier; ask a few times. */
const MAX_OPERATION_WAITS = 3;

/**
 * The {@link ComputeMigApi} on the `@google-cloud/compute` v1 REST clients (regional and zonal MIGs).
 * `clientOptions` carry the endpoint (a loopback fake in tests) and credentials (Application Default
 * Credentials when absent).
 */
export function createComputeMigApi(
  clientOptions: ComputeClientOptions = {},
  options: ComputeMigApiOptions = {},
): ComputeMigApi {
  const instances = new v1.InstancesClient(clientOptions);
  const zoneMigs = new v1.InstanceGroupManagersClient(clientOptions);
  const regionMigs = new v1.RegionInstanceGroupManagersClient(clientOptions);
  const zoneOperations = new v1.ZoneOperationsClient(clientOptions);
  const regionOperations = new v1.RegionOperationsClient(clientOptions);
  const timeoutMs = options.timeoutMs ?? 4000;
  // No gax retries: a caller waits on every call, and the reconciler tries again next minute. gax turns
  // `timeout` into a gRPC deadline, which its HTTP/JSON transport (the one these clients use) does not
  // enforce, so `run` below races every method against its own timer as well.
  const call: CallOptions = { timeout: timeoutMs, retry: null };

  const zonal = (mig: MigRef) => ({
    project: mig.project,
    zone: mig.location,
    instanceGroupManager: mig.name,
  });
  const regional = (mig: MigRef) => ({
    project: mig.project,
    region: mig.location,
    instanceGroupManager: mig.name,
  });

  async function run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(
        timeoutMs,
        () => new ComputeError('unavailable', 0, `no answer within ${timeoutMs} ms`),
        work,
      );
    } catch (error) {
      throw toComputeError(error);
    }
  }

  /** Waits until a mutating call's Operation is DONE (Compute answers DONE once it accepted the request). */
  async function accepted(mig: MigRef, started: Operation): Promise<void> {
    let operation = started;
    for (let waits = 0; operation.status !== 'DONE'; waits += 1) {
      if (waits === MAX_OPERATION_WAITS || !operation.name) {
        throw new ComputeError(
          'unavailable',
          0,
          `operation ${operation.name ?? '(unnamed)'} did not finish in time`,
        );
      }
      const request = { project: mig.project, operation: operation.name };
      [operation] =
        mig.scope === 'zones'
          ? await zoneOperations.wait({ ...request, zone: mig.location }, call)
          : await regionOperations.wait({ ...request, region: mig.location }, call);
    }
    if (operation.error) throw operationError(operation);
  }

  return {
    getTargetSize: (mig) =>
      run(async () => {
        const [group] =
          mig.scope === 'zones'
            ? await zoneMigs.get(zonal(mig), call)
            : await regionMigs.get(regional(mig), call);
        return group.targetSize ?? 0;
      }),

    listMembers: (mig) =>
      run(async () => {
        const [members] =
          mig.scope === 'zones'
            ? await zoneMigs.listManagedInstances(zonal(mig), call)
            : await regionMigs.listManagedInstances(regional(mig), call);
        return members.flatMap((member): MigMember[] => {
          const match = MEMBER_URL.exec(member.instance ?? '');
          if (!match) return [];
          return [
            {
              name: match[2]!,
              id: member.id ? String(member.id) : '',
              zone: match[1]!,
              currentAction: member.currentAction ?? 'NONE',
              instanceStatus: member.instanceStatus ?? '',
              lastAttemptErrors: (member.lastAttempt?.errors?.errors ?? []).map((e) => ({
                code: e.code ?? '',
                message: e.message ?? '',
              })),
            },
          ];
        });
      }),

    createInstances: (mig, names) =>
      run(async () => {
        const resource = { instances: names.map((name) => ({ name })) };
        const [started] =
          mig.scope === 'zones'
            ? await zoneMigs.createInstances(
                { ...zonal(mig), instanceGroupManagersCreateInstancesRequestResource: resource },
                call,
              )
            : await regionMigs.createInstances(
                { ...regional(mig), regionInstanceGroupManagersCreateInstancesRequestResource: resource },
                call,
              );
        await accepted(mig, started.latestResponse as Operation);
      }),

    listKeptInstances: (project) =>
      run(async () => {
        const kept: KeptInstance[] = [];
        const pages = instances.aggregatedListAsync(
          { project, filter: `labels.${KEEP_LABEL.key} = "${KEEP_LABEL.value}"`, maxResults: 500 },
          // The async iterator pages by itself; gax warns unless its own autoPaginate is off.
          { ...call, autoPaginate: false },
        );
        for await (const [scope, list] of pages) {
          const zone = /^zones\/(.+)$/.exec(scope)?.[1];
          for (const instance of list.instances ?? []) {
            if (zone && instance.id && instance.name) {
              kept.push({ id: String(instance.id), name: instance.name, zone });
            }
          }
        }
        return kept;
      }),

    deleteInstances: (mig, members) =>
      run(async () => {
        // skipInstancesOnValidationError: a member that went away meanwhile must not fail the others.
        const resource = {
          instances: members.map(({ zone, name }) => `zones/${zone}/instances/${name}`),
          skipInstancesOnValidationError: true,
        };
        const [started] =
          mig.scope === 'zones'
            ? await zoneMigs.deleteInstances(
                { ...zonal(mig), instanceGroupManagersDeleteInstancesRequestResource: resource },
                call,
              )
            : await regionMigs.deleteInstances(
                { ...regional(mig), regionInstanceGroupManagersDeleteInstancesRequestResource: resource },
                call,
              );
        await accepted(mig, started.latestResponse as Operation);
      }),
  };
}
