// The v1 clients alone: the package root also loads the beta clients and a 30 MB protobuf module.
import * as v1 from '@google-cloud/compute/build/src/v1/index.js';
import type { protos } from '@google-cloud/compute';
import type { CallOptions } from 'google-gax';
import { withDeadline } from '#shared';
import { computeErrorMessage, migRolloutOf } from '#fleet-status';
import type { ComputeClientOptions, MigRef, MigRollout } from '#fleet-status';

type Operation = protos.google.cloud.compute.v1.IOperation;
type InstanceTemplate = protos.google.cloud.compute.v1.IInstanceTemplate;
type InstanceGroupManager = protos.google.cloud.compute.v1.IInstanceGroupManager;

/** A Compute call failed; the message is Compute's own (names resources, never credentials) with what was tried. */
export class ComputeCallError extends Error {
  override readonly name = 'ComputeCallError';

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What `npm run fleet` asks Compute Engine. */
export interface ComputeRolloutApi {
  /** Every zonal and regional MIG of the project (`instanceGroupManagers.aggregatedList`), without members. */
  listMigs(project: string): Promise<MigRollout[]>;
  getTemplate(project: string, name: string): Promise<InstanceTemplate>;
  /** The project's global instance templates, by name. */
  listTemplates(project: string): Promise<InstanceTemplate[]>;
  /** `instanceTemplates.insert`, waiting for its global Operation. Returns the new template's URL. */
  insertTemplate(project: string, template: InstanceTemplate): Promise<string>;
  /** `instanceGroupManagers.patch` (a JSON merge patch), waiting for its Operation. */
  patchMig(mig: MigRef, patch: InstanceGroupManager): Promise<void>;
}

const SCOPE_KEY = /^(zones|regions)\/([a-z0-9-]+)$/;
/** Operations.wait returns after about two minutes at most, or earlier; ask a few times. */
const MAX_OPERATION_WAITS = 5;

/**
 * The {@link ComputeRolloutApi} on the `@google-cloud/compute` v1 REST clients, with the operator's own
 * credentials (`clientOptions.auth`: Application Default Credentials). Every call has a deadline
 * (`timeoutMs`, default 60 s, operations waited for included) and no gax retries: a change is made once, and
 * a failed command is run again by the operator.
 */
export function createComputeRolloutApi(
  clientOptions: ComputeClientOptions = {},
  options: { timeoutMs?: number } = {},
): ComputeRolloutApi {
  const zoneMigs = new v1.InstanceGroupManagersClient(clientOptions);
  const regionMigs = new v1.RegionInstanceGroupManagersClient(clientOptions);
  const templates = new v1.InstanceTemplatesClient(clientOptions);
  const globalOperations = new v1.GlobalOperationsClient(clientOptions);
  const zoneOperations = new v1.ZoneOperationsClient(clientOptions);
  const regionOperations = new v1.RegionOperationsClient(clientOptions);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const call: CallOptions = { timeout: timeoutMs, retry: null };

  const run = <T>(what: string, work: () => Promise<T>): Promise<T> =>
    withDeadline(
      timeoutMs,
      () => new ComputeCallError(0, `${what}: no answer within ${timeoutMs / 1000} s`),
      async () => {
        try {
          return await work();
        } catch (error) {
          if (error instanceof ComputeCallError)
            throw new ComputeCallError(error.status, `${what}: ${error.message}`);
          const { status, message } = computeErrorMessage(error);
          throw new ComputeCallError(status, `${what}: ${message}`);
        }
      },
    );

  /** Waits until an Operation is DONE and fails with its first error, if it has one. */
  async function done(started: Operation, wait: (name: string) => Promise<Operation>): Promise<void> {
    let operation = started;
    for (let waits = 0; operation.status !== 'DONE'; waits += 1) {
      if (waits === MAX_OPERATION_WAITS || !operation.name) {
        throw new ComputeCallError(0, `operation ${operation.name ?? '(unnamed)'} did not finish in time`);
      }
      operation = await wait(operation.name);
    }
    const error = operation.error?.errors?.[0];
    if (error)
      throw new ComputeCallError(
        operation.httpErrorStatusCode ?? 0,
        error.message ?? error.code ?? 'operation failed',
      );
  }

  return {
    listMigs: (project) =>
      run(`listing the MIGs of ${project}`, async () => {
        const migs: MigRollout[] = [];
        const pages = zoneMigs.aggregatedListAsync(
          { project, maxResults: 500 },
          { ...call, autoPaginate: false },
        );
        for await (const [scope, list] of pages) {
          const match = SCOPE_KEY.exec(scope);
          if (!match) continue;
          for (const group of list.instanceGroupManagers ?? []) {
            if (!group.name) continue;
            const ref: MigRef = {
              project,
              scope: match[1] as MigRef['scope'],
              location: match[2]!,
              name: group.name,
            };
            migs.push(migRolloutOf(ref, group, []));
          }
        }
        return migs.sort((a, b) => a.mig.localeCompare(b.mig));
      }),

    getTemplate: (project, name) =>
      run(
        `reading instance template ${name}`,
        async () => (await templates.get({ project, instanceTemplate: name }, call))[0],
      ),

    listTemplates: (project) =>
      run(`listing the instance templates of ${project}`, async () => {
        const all: InstanceTemplate[] = [];
        for await (const template of templates.listAsync(
          { project, maxResults: 500 },
          { ...call, autoPaginate: false },
        )) {
          all.push(template);
        }
        return all.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
      }),

    insertTemplate: (project, template) =>
      run(`creating instance template ${template.name ?? ''}`, async () => {
        const [started] = await templates.insert({ project, instanceTemplateResource: template }, call);
        await done(
          started.latestResponse as Operation,
          async (operation) => (await globalOperations.wait({ project, operation }, call))[0],
        );
        return (
          (await templates.get({ project, instanceTemplate: template.name ?? '' }, call))[0].selfLink ?? ''
        );
      }),

    patchMig: (mig, patch) =>
      run(`updating ${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}`, async () => {
        if (mig.scope === 'zones') {
          const where = { project: mig.project, zone: mig.location, instanceGroupManager: mig.name };
          const [started] = await zoneMigs.patch({ ...where, instanceGroupManagerResource: patch }, call);
          await done(
            started.latestResponse as Operation,
            async (operation) =>
              (await zoneOperations.wait({ project: mig.project, zone: mig.location, operation }, call))[0],
          );
        } else {
          const where = { project: mig.project, region: mig.location, instanceGroupManager: mig.name };
          const [started] = await regionMigs.patch({ ...where, instanceGroupManagerResource: patch }, call);
          await done(
            started.latestResponse as Operation,
            async (operation) =>
              (
                await regionOperations.wait({ project: mig.project, region: mig.location, operation }, call)
              )[0],
          );
        }
      }),
  };
}
