import crypto from 'node:crypto';
import http from 'node:http';
import type { v1 } from '@google-cloud/compute';
import type { NextFunction, Request, Response } from 'express';
import { createFakeApp, listenOnLoopback } from './fake-server.js';
import type { FakeControls, RunningFake } from './fake-server.js';

/** Resource URLs in Compute responses always use this root, whatever endpoint the client called. */
export const COMPUTE_API_ROOT = 'https://www.googleapis.com/compute/v1';

/** `zones` for a zonal resource, `regions` for a regional one: the path segment that names the location. */
export type LocationScope = 'zones' | 'regions';

export interface FakeProject {
  readonly projectId: string;
  /** Decimal string; paths and `created-by` may name the project by it. */
  readonly projectNumber: string;
}

/** A VM. Records are live: mutate `status` or `metadata` to change what instances.get serves. */
export interface FakeInstance {
  readonly project: FakeProject;
  readonly zone: string;
  readonly name: string;
  /** A 19-digit decimal string (uint64): beyond a JS number's exact range, so never convert it. */
  readonly id: string;
  readonly selfLink: string;
  readonly creationTimestamp: string;
  status: string;
  metadata: Record<string, string>;
  readonly mig?: FakeMig;
}

/** A MIG's view of one member, as listManagedInstances reports it (`instanceStatus` is the VM's `status`). */
export interface FakeManagedInstance {
  readonly instance: FakeInstance;
  currentAction: string;
}

export interface FakeAutoscaler {
  readonly name: string;
  readonly id: string;
  /** `null` is served by omitting the field, as Compute does before it has a prediction. */
  recommendedSize: number | null;
  mode: string;
  status: string;
}

/** A managed instance group. Records are live, like {@link FakeInstance}. */
export interface FakeMig {
  readonly project: FakeProject;
  readonly scope: LocationScope;
  readonly location: string;
  readonly name: string;
  readonly id: string;
  readonly selfLink: string;
  targetSize: number;
  /** `undefined`: stable exactly when every member's currentAction is NONE. */
  stableOverride: boolean | undefined;
  readonly autoscaler?: FakeAutoscaler;
  /** Keyed by instance name. */
  readonly members: Map<string, FakeManagedInstance>;
}

/** Names a MIG: exactly one of `region` or `zone`. `project` may be the id or the number. */
export interface MigRef {
  project: string;
  region?: string;
  zone?: string;
  name: string;
}

export interface AddMigOptions extends MigRef {
  /** Default 0. The fake never creates VMs to reach it; {@link FakeComputeApi.addInstance} raises it. */
  targetSize?: number;
  autoscaler?: { name?: string; recommendedSize?: number | null; mode?: string };
}

export interface AddInstanceOptions {
  project: string;
  zone: string;
  name: string;
  id?: string;
  /** Makes the VM a member (currentAction NONE) and adds its `created-by` metadata item. */
  mig?: FakeMig;
  /** Merged over the generated `created-by` item, so a test can override it. */
  metadata?: Record<string, string>;
  /** Default `RUNNING`. */
  status?: string;
}

/** How the next mutating call's Operation fails (reference §2.7). */
export interface OperationFailure {
  httpErrorStatusCode: number;
  /** E.g. `RESOURCE_NOT_FOUND`. */
  code: string;
  message: string;
  /** Default: the status's reason phrase in capitals, e.g. `NOT FOUND`. */
  httpErrorMessage?: string;
}

/** What `@google-cloud/compute` needs to reach the fake (reference §3: always pass `port`). */
export interface ComputeEndpoint {
  apiEndpoint: '127.0.0.1';
  port: number;
  protocol: 'http';
  fallback: true;
}

/** The options every `@google-cloud/compute` v1 client constructor takes. */
export type ComputeClientOptions = NonNullable<ConstructorParameters<typeof v1.InstancesClient>[0]>;

export interface FakeComputeApi extends RunningFake {
  readonly controls: FakeControls;
  readonly endpoint: ComputeEndpoint;
  /** `endpoint` plus `authClient`, for `new v1.XxxClient(...)`. */
  clientOptions(authClient: NonNullable<ComputeClientOptions['authClient']>): ComputeClientOptions;
  /**
   * New Operations answer `RUNNING` until this many operations.get/wait calls have been made on them; the
   * last of those answers `DONE`. 0 (default): the mutating call already answers `DONE`, as Compute does.
   */
  operationsPendingPolls: number;
  addProject(project: { projectId: string; projectNumber: string | number }): FakeProject;
  addMig(options: AddMigOptions): FakeMig;
  addInstance(options: AddInstanceOptions): FakeInstance;
  getInstance(project: string, zone: string, name: string): FakeInstance | undefined;
  getMig(ref: MigRef): FakeMig | undefined;
  /** Forces `status.isStable`; `undefined` goes back to deriving it from the members. */
  setStable(mig: FakeMig, stable: boolean | undefined): void;
  setRecommendedSize(mig: FakeMig, size: number | null): void;
  setCurrentAction(mig: FakeMig, instanceName: string, action: string): void;
  /** The next mutating call answers an Operation that is `DONE` with this error and changes nothing. */
  failNextOperation(failure: OperationFailure): void;
  /** Called when a deleted VM is finally gone. Returns a function that unsubscribes. */
  onInstanceDeleted(listener: (instance: FakeInstance) => void): () => void;
  /** Finishes every deletion still lingering in DELETING now (for `deletionDelayMs: Infinity`). */
  completeDeletions(): void;
}

export interface FakeComputeApiOptions {
  port?: number;
  /** Default true: a request without `Authorization: Bearer …` gets a Google-shaped 401. */
  requireAuth?: boolean;
  /**
   * How long a DELETING managed instance lingers before it is gone and its MIG is stable again. Default 0
   * (the next turn of the event loop); `Infinity` waits for {@link FakeComputeApi.completeDeletions}.
   */
  deletionDelayMs?: number;
  operationsPendingPolls?: number;
}

/** The counters of `InstanceGroupManager.currentActions` (reference §2.3). */
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

/** gRPC-style `status` and legacy `reason` of a Google error body, by HTTP status. */
const ERROR_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/** The one error type of this fake; the error middleware turns it into a Google error body. */
export class ComputeApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
  ) {
    super(message);
    this.name = 'ComputeApiError';
  }
}

/** A Google error body (reference §2.8), also handy as a fault body: `addFault({ status, body })`. */
export function googleErrorBody(code: number, message: string, reason = 'backendError'): unknown {
  return {
    error: {
      code,
      message,
      errors: [{ message, domain: 'global', reason }],
      status: ERROR_STATUS[code] ?? 'UNKNOWN',
    },
  };
}

const notFound = (resource: string): ComputeApiError =>
  new ComputeApiError(404, `The resource '${resource}' was not found`, 'notFound');
const badRequest = (message: string): ComputeApiError => new ComputeApiError(400, message, 'invalid');

/** A random 19-digit decimal id, first digit 1-9, like Compute's uint64 ids. */
function randomId(): string {
  let id = String(crypto.randomInt(1, 10));
  for (let i = 0; i < 18; i += 1) id += String(crypto.randomInt(0, 10));
  return id;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Full or partial instance URL → its parts; `undefined` when malformed (reference §2.5). */
function parseInstanceUrl(url: string): { project?: string; zone: string; name: string } | undefined {
  const match =
    /^(?:(?:https?:\/\/[^/]+\/compute\/v1\/)?projects\/([^/]+)\/)?zones\/([^/]+)\/instances\/([^/]+)$/.exec(
      url,
    );
  if (!match) return undefined;
  const [, project, zone = '', name = ''] = match;
  return project === undefined ? { zone, name } : { project, zone, name };
}

/** Zone `us-central1-a` is in region `us-central1`. */
function migCovers(mig: FakeMig, zone: string): boolean {
  return mig.scope === 'zones' ? zone === mig.location : zone.startsWith(`${mig.location}-`);
}

function locationUrl(project: FakeProject, scope: LocationScope, location: string): string {
  return `${COMPUTE_API_ROOT}/projects/${project.projectId}/${scope}/${location}`;
}

/** `{ zone: url }` or `{ region: url }`, the field every located resource carries. */
function locationField(project: FakeProject, scope: LocationScope, location: string): Record<string, string> {
  return { [scope === 'zones' ? 'zone' : 'region']: locationUrl(project, scope, location) };
}

function metadataFingerprint(metadata: Record<string, string>): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify(metadata))
    .digest()
    .subarray(0, 8)
    .toString('base64');
}

interface OperationRecord {
  readonly body: Record<string, unknown>;
  pollsLeft: number;
  readonly failure: OperationFailure | undefined;
}

/**
 * Starts a stateful fake of the Compute Engine v1 REST API on 127.0.0.1: instances.get, (region)
 * instanceGroupManagers get/deleteInstances/listManagedInstances, autoscalers get, and operations get/wait,
 * with Google-shaped errors. Every call is recorded and faults can be injected through `controls`.
 */
export async function startFakeComputeApi(options: FakeComputeApiOptions = {}): Promise<FakeComputeApi> {
  const requireAuth = options.requireAuth ?? true;
  const deletionDelayMs = options.deletionDelayMs ?? 0;
  const projects = new Map<string, FakeProject>(); // by id and by number
  const instances = new Map<string, FakeInstance>(); // by `${projectId}/${zone}/${name}`
  const migs = new Map<string, FakeMig>(); // by `${projectId}/${scope}/${location}/${name}`
  const operations = new Map<string, OperationRecord>(); // by `${projectId}/${scope}/${location}/${name or id}`
  const deletions = new Map<FakeManagedInstance, { mig: FakeMig; timer: NodeJS.Timeout | undefined }>();
  const listeners = new Set<(instance: FakeInstance) => void>();
  let nextFailure: OperationFailure | undefined;

  const projectOrThrow = (idOrNumber: string): FakeProject => {
    const project = projects.get(idOrNumber);
    if (!project) throw notFound(`projects/${idOrNumber}`);
    return project;
  };
  const migKey = (project: FakeProject, scope: string, location: string, name: string): string =>
    `${project.projectId}/${scope}/${location}/${name}`;
  const scopeOf = (ref: MigRef): [LocationScope, string] => {
    if ((ref.region === undefined) === (ref.zone === undefined)) {
      throw new Error(`MIG ${ref.name}: give exactly one of region or zone`);
    }
    return ref.region !== undefined ? ['regions', ref.region] : ['zones', ref.zone ?? ''];
  };

  const finishDeletion = (member: FakeManagedInstance): void => {
    const pending = deletions.get(member);
    if (!pending) return;
    clearTimeout(pending.timer);
    deletions.delete(member);
    const { instance } = member;
    pending.mig.members.delete(instance.name);
    instances.delete(`${instance.project.projectId}/${instance.zone}/${instance.name}`);
    for (const listener of listeners) listener(instance);
  };

  const startDeletion = (mig: FakeMig, member: FakeManagedInstance): void => {
    member.currentAction = 'DELETING';
    mig.targetSize = Math.max(0, mig.targetSize - 1);
    // setTimeout would turn Infinity (or anything past 2^31-1 ms) into 1 ms, so such delays wait for
    // completeDeletions() instead.
    const timer =
      deletionDelayMs <= 2 ** 31 - 1 ? setTimeout(() => finishDeletion(member), deletionDelayMs) : undefined;
    deletions.set(member, { mig, timer });
  };

  const createOperation = (
    mig: FakeMig,
    operationType: string,
    refusal?: OperationFailure,
  ): OperationRecord => {
    const failure = nextFailure ?? refusal;
    nextFailure = undefined;
    const now = new Date().toISOString();
    const id = randomId();
    const name = `operation-${Date.now()}-${crypto.randomBytes(6).toString('hex')}`;
    const op: OperationRecord = {
      failure,
      pollsLeft: fake.operationsPendingPolls,
      body: {
        kind: 'compute#operation',
        id,
        name,
        operationType,
        targetLink: mig.selfLink,
        targetId: mig.id,
        user: 'fake-caller@example.iam.gserviceaccount.com',
        insertTime: now,
        startTime: now,
        ...locationField(mig.project, mig.scope, mig.location),
        selfLink: `${locationUrl(mig.project, mig.scope, mig.location)}/operations/${name}`,
      },
    };
    // The client library hands back the Operation's id as the LRO `name`, so accept either in paths.
    for (const key of [name, id]) operations.set(migKey(mig.project, mig.scope, mig.location, key), op);
    return op;
  };

  const renderOperation = (op: OperationRecord): Record<string, unknown> => {
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
  };

  const renderInstance = (instance: FakeInstance): Record<string, unknown> => ({
    kind: 'compute#instance',
    id: instance.id,
    creationTimestamp: instance.creationTimestamp,
    name: instance.name,
    status: instance.status,
    zone: locationUrl(instance.project, 'zones', instance.zone),
    selfLink: instance.selfLink,
    metadata: {
      kind: 'compute#metadata',
      fingerprint: metadataFingerprint(instance.metadata),
      items: Object.entries(instance.metadata).map(([key, value]) => ({ key, value })),
    },
  });

  const autoscalerUrl = (mig: FakeMig, autoscaler: FakeAutoscaler): string =>
    `${locationUrl(mig.project, mig.scope, mig.location)}/autoscalers/${autoscaler.name}`;

  const renderMig = (mig: FakeMig): Record<string, unknown> => {
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
      },
      listManagedInstancesResults: 'PAGELESS',
    };
  };

  const renderAutoscaler = (mig: FakeMig, autoscaler: FakeAutoscaler): Record<string, unknown> => ({
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
  });

  const { app, controls } = createFakeApp();

  app.use((req: Request, _res: Response, next: NextFunction) => {
    if (requireAuth && !/^Bearer \S+/i.test(req.headers.authorization ?? '')) {
      throw new ComputeApiError(
        401,
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
        'required',
      );
    }
    next();
  });

  const base = '/compute/v1/projects/:project/:scope/:location';
  /** The MIG (or other located parent) a request path names; 404 when the path matches no resource. */
  const migFromPath = (params: Record<string, string | undefined>): FakeMig => {
    const { project = '', scope = '', location = '', mig = '' } = params;
    const resource = `projects/${project}/${scope}/${location}/instanceGroupManagers/${mig}`;
    if (scope !== 'zones' && scope !== 'regions') throw notFound(resource);
    const found = migs.get(migKey(projectOrThrow(project), scope, location, mig));
    if (!found) throw notFound(resource);
    return found;
  };

  app.get('/compute/v1/projects/:project/zones/:zone/instances/:instance', (req, res) => {
    const { project, zone, instance } = req.params;
    const found = instances.get(`${projectOrThrow(project).projectId}/${zone}/${instance}`);
    if (!found) throw notFound(`projects/${project}/zones/${zone}/instances/${instance}`);
    res.json(renderInstance(found));
  });

  app.get(`${base}/instanceGroupManagers/:mig`, (req, res) => {
    res.json(renderMig(migFromPath(req.params)));
  });

  // The client sends the literal JSON body "" here (reference §3); the body carries nothing, so ignore it.
  app.post(`${base}/instanceGroupManagers/:mig/listManagedInstances`, (req, res) => {
    const mig = migFromPath(req.params);
    res.json({
      managedInstances: [...mig.members.values()].map(({ instance, currentAction }) => ({
        instance: instance.selfLink,
        id: instance.id,
        name: instance.name,
        currentAction,
        instanceStatus: instance.status,
      })),
    });
  });

  app.post(`${base}/instanceGroupManagers/:mig/deleteInstances`, (req, res) => {
    const mig = migFromPath(req.params);
    const body: unknown = req.body;
    const urls = isRecord(body) ? body.instances : undefined;
    if (!Array.isArray(urls) || urls.length === 0) {
      throw new ComputeApiError(400, "Required field 'instances' not specified", 'required');
    }
    const skip = isRecord(body) && body.skipInstancesOnValidationError === true;
    const chosen: FakeManagedInstance[] = [];
    let refusal: OperationFailure | undefined;
    for (const [index, url] of urls.entries()) {
      const parsed = typeof url === 'string' ? parseInstanceUrl(url) : undefined;
      if (!parsed) {
        throw badRequest(`Invalid value for field 'resource.instances[${index}]': '${String(url)}'.`);
      }
      const projectMatches =
        parsed.project === undefined ||
        parsed.project === mig.project.projectId ||
        parsed.project === mig.project.projectNumber;
      if (!projectMatches || !migCovers(mig, parsed.zone)) {
        throw badRequest(
          `Invalid value for field 'resource.instances[${index}]': '${String(url)}'. Instance is not in ${mig.scope === 'zones' ? 'zone' : 'region'} ${mig.location} of project ${mig.project.projectId}.`,
        );
      }
      const member = mig.members.get(parsed.name);
      const usable =
        member !== undefined &&
        member.instance.zone === parsed.zone &&
        member.currentAction !== 'DELETING' &&
        member.currentAction !== 'ABANDONING' &&
        !chosen.includes(member);
      if (usable) chosen.push(member);
      else if (!skip) {
        // §2.5: without skipInstancesOnValidationError the *operation* fails; nothing is deleted.
        refusal ??= {
          httpErrorStatusCode: 400,
          httpErrorMessage: 'BAD REQUEST',
          code: 'CONDITION_NOT_MET',
          message: member
            ? `Instance '${String(url)}' is already being deleted or abandoned.`
            : `Instance '${String(url)}' is not a member of instance group manager '${mig.name}'.`,
        };
      }
    }
    const op = createOperation(mig, 'deleteInstances', refusal);
    if (!op.failure) for (const member of chosen) startDeletion(mig, member);
    res.json(renderOperation(op));
  });

  app.get(`${base}/autoscalers/:autoscaler`, (req, res) => {
    const { project = '', scope = '', location = '', autoscaler = '' } = req.params;
    const projectRecord = projectOrThrow(project);
    const mig = [...migs.values()].find(
      (m) =>
        m.project === projectRecord &&
        m.scope === scope &&
        m.location === location &&
        m.autoscaler?.name === autoscaler,
    );
    if (!mig?.autoscaler)
      throw notFound(`projects/${project}/${scope}/${location}/autoscalers/${autoscaler}`);
    res.json(renderAutoscaler(mig, mig.autoscaler));
  });

  // `wait` may answer before the operation is DONE (reference §2.7), so here it counts as one poll like get.
  type OperationParams = { project: string; scope: string; location: string; operation: string };
  const pollOperation = (req: Request<OperationParams>, res: Response): void => {
    const { project, scope, location, operation } = req.params;
    const op = operations.get(migKey(projectOrThrow(project), scope, location, operation));
    if (!op) throw notFound(`projects/${project}/${scope}/${location}/operations/${operation}`);
    if (op.pollsLeft > 0) op.pollsLeft -= 1;
    res.json(renderOperation(op));
  };
  app.get(`${base}/operations/:operation`, pollOperation);
  app.post(`${base}/operations/:operation/wait`, pollOperation);

  app.use((req: Request) => {
    throw notFound(req.path);
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    // Unexpected errors keep their text: this is a test fake, and the text is what a failing test needs.
    const error =
      err instanceof ComputeApiError
        ? err
        : new ComputeApiError(500, `Internal error in fake: ${String(err)}`, 'backendError');
    if (error.status === 401) res.set('WWW-Authenticate', 'Bearer realm="https://accounts.google.com/"');
    res.status(error.status).json(googleErrorBody(error.status, error.message, error.reason));
  });

  const server = await listenOnLoopback(app, options.port ?? 0);
  const endpoint: ComputeEndpoint = {
    apiEndpoint: '127.0.0.1',
    port: server.port,
    protocol: 'http',
    fallback: true,
  };

  const fake: FakeComputeApi = {
    url: server.url,
    port: server.port,
    controls,
    endpoint,
    operationsPendingPolls: options.operationsPendingPolls ?? 0,
    clientOptions: (authClient) => ({
      ...endpoint,
      authClient,
    }),
    close: async () => {
      for (const { timer } of deletions.values()) clearTimeout(timer);
      deletions.clear();
      await server.close();
    },

    addProject: ({ projectId, projectNumber }) => {
      const project: FakeProject = { projectId, projectNumber: String(projectNumber) };
      projects.set(projectId, project);
      projects.set(project.projectNumber, project);
      return project;
    },

    addMig: (options) => {
      const project = projectOrThrow(options.project);
      const [scope, location] = scopeOf(options);
      const key = migKey(project, scope, location, options.name);
      if (migs.has(key)) throw new Error(`MIG ${key} already exists`);
      const as = options.autoscaler;
      const mig: FakeMig = {
        project,
        scope,
        location,
        name: options.name,
        id: randomId(),
        selfLink: `${locationUrl(project, scope, location)}/instanceGroupManagers/${options.name}`,
        targetSize: options.targetSize ?? 0,
        stableOverride: undefined,
        members: new Map(),
        ...(as && {
          autoscaler: {
            name: as.name ?? options.name,
            id: randomId(),
            recommendedSize: as.recommendedSize ?? null,
            mode: as.mode ?? 'ON',
            status: 'ACTIVE',
          },
        }),
      };
      migs.set(key, mig);
      return mig;
    },

    addInstance: (options) => {
      const project = projectOrThrow(options.project);
      const key = `${project.projectId}/${options.zone}/${options.name}`;
      if (instances.has(key)) throw new Error(`Instance ${key} already exists`);
      const { mig } = options;
      if (mig && (mig.project !== project || !migCovers(mig, options.zone))) {
        throw new Error(`Instance ${key} cannot join MIG ${mig.selfLink}`);
      }
      const createdBy = mig
        ? {
            'created-by': `projects/${project.projectNumber}/${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}`,
          }
        : {};
      const instance: FakeInstance = {
        project,
        zone: options.zone,
        name: options.name,
        id: options.id ?? randomId(),
        selfLink: `${locationUrl(project, 'zones', options.zone)}/instances/${options.name}`,
        creationTimestamp: new Date().toISOString(),
        status: options.status ?? 'RUNNING',
        metadata: { ...createdBy, ...options.metadata },
        ...(mig && { mig }),
      };
      instances.set(key, instance);
      if (mig) {
        mig.members.set(instance.name, { instance, currentAction: 'NONE' });
        mig.targetSize = Math.max(mig.targetSize, mig.members.size);
      }
      return instance;
    },

    getInstance: (project, zone, name) => {
      const projectId = projects.get(project)?.projectId;
      return projectId === undefined ? undefined : instances.get(`${projectId}/${zone}/${name}`);
    },

    getMig: (ref) => {
      const project = projects.get(ref.project);
      return project ? migs.get(migKey(project, ...scopeOf(ref), ref.name)) : undefined;
    },

    setStable: (mig, stable) => {
      mig.stableOverride = stable;
    },

    setRecommendedSize: (mig, size) => {
      if (!mig.autoscaler) throw new Error(`MIG ${mig.name} has no autoscaler`);
      mig.autoscaler.recommendedSize = size;
    },

    setCurrentAction: (mig, instanceName, action) => {
      const member = mig.members.get(instanceName);
      if (!member) throw new Error(`${instanceName} is not a member of MIG ${mig.name}`);
      member.currentAction = action;
    },

    failNextOperation: (failure) => {
      nextFailure = failure;
    },

    onInstanceDeleted: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    completeDeletions: () => {
      for (const member of [...deletions.keys()]) finishDeletion(member);
    },
  };
  return fake;
}
