import fs from 'node:fs';
import { createRequire, Module } from 'node:module';
import type * as V1 from '@google-cloud/compute/build/src/v1/index.js';
import type { protos } from '@google-cloud/compute';
import { withDeadline } from '#shared';
import { ComputeError, toComputeError } from './compute-error.js';
import { CREATED_BY_KEY, parseResourceUrl } from './resource-ref.js';
import type { ResourceRef } from './resource-ref.js';
import { COMPUTE_CLIENT_FILES, COMPUTE_DESCRIPTOR_FILE, COMPUTE_SERVICES } from './compute-client-files.js';
import type { TrimmedComputeDescriptor } from './compute-client-files.js';

type Operation = protos.google.cloud.compute.v1.IOperation;

/** The options every `@google-cloud/compute` v1 client constructor takes. */
export type ComputeClientOptions = NonNullable<ConstructorParameters<typeof V1.InstancesClient>[0]>;

type ClientName = keyof typeof COMPUTE_CLIENT_FILES;
type V1Clients = Pick<typeof V1, ClientName>;

const require = createRequire(import.meta.url);
const PROTOS_JSON = '@google-cloud/compute/build/protos/protos.json';

/** Which API descriptor the clients of this process were built with. */
export type ComputeDescriptorKind = 'trimmed' | 'full';

/**
 * Makes the client files' `require("../../protos/protos.json")` return the build's trimmed descriptor
 * (services/instance-deleter/build/build-compute-descriptor.mjs), when it exists and was cut from the installed
 * `@google-cloud/compute` for the same services; otherwise changes nothing ('full'). No client option
 * takes a smaller descriptor, and each constructor parses (and hashes) the one its file required.
 */
function preferTrimmedDescriptor(): ComputeDescriptorKind {
  let trimmed: Partial<TrimmedComputeDescriptor>;
  try {
    trimmed = JSON.parse(
      fs.readFileSync(new URL(COMPUTE_DESCRIPTOR_FILE, import.meta.url), 'utf8'),
    ) as Partial<TrimmedComputeDescriptor>;
  } catch {
    return 'full'; // not built (tests run the sources), or unreadable
  }
  const { version } = require('@google-cloud/compute/package.json') as { version: string };
  const protosPath = require.resolve(PROTOS_JSON);
  if (
    trimmed.computeVersion !== version ||
    JSON.stringify(trimmed.services) !== JSON.stringify(COMPUTE_SERVICES) ||
    typeof trimmed.descriptor !== 'object' ||
    require.cache[protosPath] !== undefined
  ) {
    return 'full';
  }
  const module = new Module(protosPath);
  module.filename = protosPath;
  module.loaded = true;
  module.exports = trimmed.descriptor;
  require.cache[protosPath] = module;
  return 'trimmed';
}

/** The descriptor this process's Compute clients use: the trimmed one in a build, the full one otherwise. */
export const computeDescriptor: ComputeDescriptorKind = preferTrimmedDescriptor();

/** The `google-gax` root module (build/src/index.js) the Compute client files require. */
const GAX_ROOT = createRequire(require.resolve('@google-cloud/compute/package.json')).resolve('google-gax');

/** What the client files and constructors use of `google-gax`: its REST half and two helpers. */
interface RestOnlyGax {
  fallback: unknown;
  loggingUtils: unknown;
  decodeAnyProtosInArray: unknown;
}

/**
 * `google-gax` without its gRPC half, for the Compute client files. Each of them starts with
 * `require("google-gax")`, whose root loads @grpc/grpc-js and @grpc/proto-loader (about 80 files) that a
 * REST client never calls: Compute's clients use HTTP/1.1 with JSON (`fallback`, their default). So while
 * they load, `google-gax` is this object: the REST half (`google-gax/fallback`, the module each
 * constructor picks when it is given one, as their own docstrings suggest: "avoids loading google-gax with
 * gRPC"), plus the two names the client files read from the root, `loggingUtils` (their debug log) and
 * `decodeAnyProtosInArray` (error details), taken from the same files the root takes them from. Any other
 * name, which a later `@google-cloud/compute` might read, comes from the real root, loaded then, so a
 * changed client costs time and never breaks.
 */
function restOnlyGax(): RestOnlyGax {
  const gaxRequire = createRequire(GAX_ROOT);
  const light: RestOnlyGax = {
    fallback: gaxRequire('./fallback.js'),
    loggingUtils: gaxRequire('google-logging-utils'),
    decodeAnyProtosInArray: (gaxRequire('./util.js') as { decodeAnyProtosInArray: unknown })
      .decodeAnyProtosInArray,
  };
  let root: Record<string | symbol, unknown> | undefined;
  return new Proxy(light, {
    get: (target, name) =>
      name in target
        ? target[name as keyof RestOnlyGax]
        : (root ??= gaxRequire(GAX_ROOT) as Record<string | symbol, unknown>)[name],
  });
}

/**
 * Requires `file` with `google-gax` resolving to `gax` (when nothing loaded the real one yet), and puts
 * the cache back afterwards, so any other module of this process that asks for `google-gax` gets the real
 * one.
 */
function requireWithGax(file: string, gax: RestOnlyGax): Record<string, unknown> {
  if (require.cache[GAX_ROOT] !== undefined) return require(file) as Record<string, unknown>;
  const module = new Module(GAX_ROOT);
  module.filename = GAX_ROOT;
  module.loaded = true;
  module.exports = gax;
  require.cache[GAX_ROOT] = module;
  try {
    return require(file) as Record<string, unknown>;
  } finally {
    delete require.cache[GAX_ROOT];
  }
}

const gax = restOnlyGax();

/**
 * Each client class from its own file rather than the package root (a 30 MB protobuf module and the beta
 * clients) or `v1/index.js` (about a hundred clients, 249 files): about a second of CPU less per cold
 * start. No `exports` map forbids these paths. Loaded with this module, so a moved file fails the start.
 */
const v1 = Object.fromEntries(
  Object.entries(COMPUTE_CLIENT_FILES).map(([name, file]) => {
    const module = requireWithGax(
      require.resolve(`@google-cloud/compute/build/src/v1/${file}_client.js`),
      gax,
    );
    if (typeof module[name] !== 'function') {
      throw new Error(`@google-cloud/compute/build/src/v1/${file}_client.js has no ${name}`);
    }
    return [name, module[name]];
  }),
) as unknown as V1Clients;
// The client files hold the descriptor now; any other Compute client in this process gets the full one.
if (computeDescriptor === 'trimmed') delete require.cache[require.resolve(PROTOS_JSON)];

/**
 * A client built on first use: each constructor parses Compute's whole API descriptor, which a cold
 * start should not pay for the clients its first requests do not need.
 */
function lazy<T>(build: () => T): () => T {
  let client: T | undefined;
  return () => (client ??= build());
}

/** What the deleter needs to know about a VM. */
export interface InstanceInfo {
  /** A uint64 as a decimal string; compare it as a string. */
  id: string;
  /** The `created-by` metadata value, when there is one. */
  createdBy?: string;
}

/** A MIG member as listManagedInstances reports it. */
export interface ManagedInstanceInfo {
  zone: string;
  name: string;
  /** `NONE`, `DELETING`, `CREATING`, … */
  currentAction: string;
}

export interface MigInfo {
  targetSize: number;
  isStable: boolean;
  /** The autoscaler that targets the MIG, if any. */
  autoscaler?: ResourceRef;
}

/** The Compute Engine calls the deleter makes. Every failure is a {@link ComputeError}. */
export interface ComputeClient {
  getInstance(project: string, zone: string, name: string): Promise<InstanceInfo>;
  getMig(mig: ResourceRef): Promise<MigInfo>;
  listManagedInstances(mig: ResourceRef): Promise<ManagedInstanceInfo[]>;
  /** `undefined` while the autoscaler has no recommendation yet. */
  getRecommendedSize(autoscaler: ResourceRef): Promise<number | undefined>;
  /**
   * Asks the MIG to delete one of its VMs and waits for the operation's outcome. Compute marks it done as
   * soon as the request is accepted; the VM itself goes away later.
   * https://cloud.google.com/compute/docs/reference/rest/v1/regionInstanceGroupManagers/deleteInstances
   */
  deleteInstance(mig: ResourceRef, zone: string, name: string): Promise<void>;
}

/**
 * Operations.wait returns after about two minutes at most, or earlier; ask a few times.
 * https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/wait
 */
const MAX_OPERATION_WAITS = 5;

const MANAGED_INSTANCE_URL = /\/zones\/([^/]+)\/instances\/([^/]+)$/;

/** How long one Compute call may take by default (a deleteInstances with its operation wait included). */
export const DEFAULT_COMPUTE_CALL_TIMEOUT_MS = 10_000;

/**
 * The {@link ComputeClient} on the `@google-cloud/compute` v1 REST clients. `options` carry the endpoint
 * (the sandbox points it at a loopback fake) and credentials (Application Default Credentials when absent;
 * the deleter passes a `ComputeAuthClient` with deadlines of its own, compute-auth-client.ts). Every call
 * fails with a {@link ComputeError} of kind `timeout` after `callTimeoutMs`: over REST, gax enforces no
 * deadline of its own (google-gax's `fallbackServiceStub.ts` sends the request without one), and a read
 * shared by many requests must not hang them all.
 */
export function createComputeClient(
  options: ComputeClientOptions = {},
  callTimeoutMs = DEFAULT_COMPUTE_CALL_TIMEOUT_MS,
): ComputeClient {
  /** Runs one Compute call, turning whatever it throws into a {@link ComputeError}. */
  const call = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await withDeadline(
        callTimeoutMs,
        () => new ComputeError(0, `no answer within ${callTimeoutMs / 1000} s`, 'timeout'),
        work,
      );
    } catch (error) {
      throw toComputeError(error);
    }
  };

  const instances = lazy(() => new v1.InstancesClient(options, gax as never));
  const zoneMigs = lazy(() => new v1.InstanceGroupManagersClient(options, gax as never));
  const regionMigs = lazy(() => new v1.RegionInstanceGroupManagersClient(options, gax as never));
  const zoneAutoscalers = lazy(() => new v1.AutoscalersClient(options, gax as never));
  const regionAutoscalers = lazy(() => new v1.RegionAutoscalersClient(options, gax as never));
  const zoneOperations = lazy(() => new v1.ZoneOperationsClient(options, gax as never));
  const regionOperations = lazy(() => new v1.RegionOperationsClient(options, gax as never));

  const zonal = (mig: ResourceRef) => ({
    project: mig.project,
    zone: mig.location,
    instanceGroupManager: mig.name,
  });
  const regional = (mig: ResourceRef) => ({
    project: mig.project,
    region: mig.location,
    instanceGroupManager: mig.name,
  });

  const waitFor = async (mig: ResourceRef, started: Operation): Promise<Operation> => {
    let operation = started;
    for (let waits = 0; operation.status !== 'DONE'; waits += 1) {
      if (waits === MAX_OPERATION_WAITS || !operation.name) {
        throw new ComputeError(0, `operation ${operation.name ?? '(unnamed)'} did not finish`);
      }
      const request = { project: mig.project, operation: operation.name };
      [operation] =
        mig.scope === 'zones'
          ? await zoneOperations().wait({ ...request, zone: mig.location })
          : await regionOperations().wait({ ...request, region: mig.location });
    }
    return operation;
  };

  return {
    getInstance: (project, zone, name) =>
      call(async () => {
        const [instance] = await instances().get({ project, zone, instance: name });
        const createdBy = instance.metadata?.items?.find((item) => item.key === CREATED_BY_KEY)?.value;
        // Decoded with `longs: String`, so the id arrives as the exact decimal string.
        const info: InstanceInfo = { id: String(instance.id ?? '') };
        if (typeof createdBy === 'string') info.createdBy = createdBy;
        return info;
      }),

    getMig: (mig) =>
      call(async () => {
        const [group] =
          mig.scope === 'zones' ? await zoneMigs().get(zonal(mig)) : await regionMigs().get(regional(mig));
        const info: MigInfo = {
          targetSize: group.targetSize ?? 0,
          isStable: group.status?.isStable === true,
        };
        const url = group.status?.autoscaler;
        if (url) {
          const autoscaler = parseResourceUrl(url, 'autoscalers');
          if (!autoscaler) throw new ComputeError(0, `unrecognised autoscaler URL ${JSON.stringify(url)}`);
          info.autoscaler = autoscaler;
        }
        return info;
      }),

    listManagedInstances: (mig) =>
      call(async () => {
        const [members] =
          mig.scope === 'zones'
            ? await zoneMigs().listManagedInstances(zonal(mig))
            : await regionMigs().listManagedInstances(regional(mig));
        return members.flatMap((member) => {
          // Instance URLs are zonal even in a regional MIG.
          // https://cloud.google.com/compute/docs/reference/rest/v1/regionInstanceGroupManagers/listManagedInstances
          const match = MANAGED_INSTANCE_URL.exec(member.instance ?? '');
          if (!match) return [];
          return [{ zone: match[1]!, name: match[2]!, currentAction: member.currentAction ?? 'NONE' }];
        });
      }),

    getRecommendedSize: (autoscaler) =>
      call(async () => {
        const [found] =
          autoscaler.scope === 'zones'
            ? await zoneAutoscalers().get({
                project: autoscaler.project,
                zone: autoscaler.location,
                autoscaler: autoscaler.name,
              })
            : await regionAutoscalers().get({
                project: autoscaler.project,
                region: autoscaler.location,
                autoscaler: autoscaler.name,
              });
        return typeof found.recommendedSize === 'number' ? found.recommendedSize : undefined;
      }),

    deleteInstance: (mig, zone, name) =>
      call(async () => {
        // Without skipInstancesOnValidationError, an instance that is not (or no longer) a member fails
        // the operation instead of being skipped silently, so success means this VM is being deleted.
        const resource = {
          instances: [`zones/${zone}/instances/${name}`],
          skipInstancesOnValidationError: false,
        };
        const [started] =
          mig.scope === 'zones'
            ? await zoneMigs().deleteInstances({
                ...zonal(mig),
                instanceGroupManagersDeleteInstancesRequestResource: resource,
              })
            : await regionMigs().deleteInstances({
                ...regional(mig),
                regionInstanceGroupManagersDeleteInstancesRequestResource: resource,
              });
        const operation = await waitFor(mig, started.latestResponse as Operation);
        if (operation.error) {
          const message =
            operation.error.errors?.[0]?.message ?? operation.httpErrorMessage ?? 'operation failed';
          throw new ComputeError(operation.httpErrorStatusCode ?? 0, message);
        }
      }),
  };
}
