import type { v1 } from '@google-cloud/compute';
import { fakeComputeErrorHandler } from './compute/compute-error.js';
import { ComputeState } from './compute/compute-state.js';
import type {
  AddInstanceOptions,
  AddMigOptions,
  DuplicateNameAnswer,
  FakeInstance,
  FakeMig,
  FakeMigLocator,
  FakeProject,
  OperationFailure,
  ZoneShortage,
} from './compute/compute-state.js';
import { createComputeRouter } from './compute/rest-routes.js';
import { InstanceTemplates } from './compute/instance-templates.js';
import type { FakeInstanceTemplate } from './compute/instance-templates.js';
import { createRolloutRouter } from './compute/rollout-routes.js';
import { createFakeApp, listenOnLoopback } from './fake-server.js';
import type { FakeControls, RunningFake } from './fake-server.js';

export { FakeComputeError, googleErrorBody } from './compute/compute-error.js';
export { COMPUTE_API_ROOT } from './compute/compute-state.js';
export type { FakeInstanceTemplate } from './compute/instance-templates.js';
export type { FakeMigVersion } from './compute/mig-versions.js';
export type {
  AddInstanceOptions,
  AddMigOptions,
  DuplicateNameAnswer,
  FakeAttemptError,
  FakeAutoscaler,
  FakeInstance,
  FakeManagedInstance,
  FakeMig,
  FakeMigLocator,
  FakeProject,
  LocationScope,
  OperationFailure,
  ZoneShortage,
} from './compute/compute-state.js';

/** What `@google-cloud/compute` needs to reach the fake (always pass `port`: the clients default it to 443). */
export interface FakeComputeConnection {
  apiEndpoint: '127.0.0.1';
  port: number;
  protocol: 'http';
  fallback: true;
}

/** The options every `@google-cloud/compute` v1 client constructor takes. */
export type FakeComputeClientOptions = NonNullable<ConstructorParameters<typeof v1.InstancesClient>[0]>;

/** Called when a VM that createInstances asked for starts running (not for VMs added with `addInstance`). */
export type InstanceListener = (instance: FakeInstance, mig: FakeMig | undefined) => void;

export interface FakeComputeApi extends RunningFake {
  readonly controls: FakeControls;
  readonly endpoint: FakeComputeConnection;
  /** `endpoint` plus `authClient`, for `new v1.XxxClient(...)`. */
  clientOptions(authClient: NonNullable<FakeComputeClientOptions['authClient']>): FakeComputeClientOptions;
  /**
   * New Operations answer `RUNNING` until this many operations.get/wait calls have been made on them; the
   * last of those answers `DONE`. 0 (default): the mutating call already answers `DONE`, as Compute does.
   */
  operationsPendingPolls: number;
  /** How long a member created by createInstances stays CREATING before its VM runs; default 0. */
  bootDelayMs: number;
  /** What createInstances answers when a listed name exists already; default `http-409`. */
  duplicateNameAnswer: DuplicateNameAnswer;
  addProject(project: { projectId: string; projectNumber: string | number }): FakeProject;
  addMig(options: AddMigOptions): FakeMig;
  addInstance(options: AddInstanceOptions): FakeInstance;
  getInstance(project: string, zone: string, name: string): FakeInstance | undefined;
  getMig(ref: FakeMigLocator): FakeMig | undefined;
  /** Forces `status.isStable`; `undefined` goes back to deriving it from the members. */
  setStable(mig: FakeMig, stable: boolean | undefined): void;
  setRecommendedSize(mig: FakeMig, size: number | null): void;
  setCurrentAction(mig: FakeMig, instanceName: string, action: string): void;
  /** The next mutating call answers an Operation that is `DONE` with this error and changes nothing. */
  failNextOperation(failure: OperationFailure): void;
  /**
   * Lets `zone` start only `remaining` more VMs (a stock-out at 0): members beyond stay CREATING with
   * `lastAttempt.errors` of `code`, and start once capacity returns (a VM deleted there, or `undefined`).
   */
  setZoneCapacity(project: string, zone: string, shortage: ZoneShortage | undefined): void;
  /**
   * Called when a VM created through createInstances starts running: the hook where the sandbox gives it a
   * metadata server and a life. Returns a function that unsubscribes.
   */
  onInstanceCreated(listener: InstanceListener): () => void;
  /** Called when a deleted VM is finally gone. Returns a function that unsubscribes. */
  onInstanceDeleted(listener: (instance: FakeInstance) => void): () => void;
  /** Finishes every deletion still lingering in DELETING now (for `deletionDelayMs: Infinity`). */
  completeDeletions(): void;
  /** Starts every VM still waiting out its boot delay now (for `bootDelayMs: Infinity`). */
  completeBoots(): void;

  // --- Instance templates and rollouts (mig-versions.ts) -------------------------------------------

  /**
   * Adds a global instance template whose `properties.metadata.items` hold `metadata` (over `properties`);
   * returns its URL, the value MIGs and members name it by.
   */
  addInstanceTemplate(options: {
    project: string;
    name: string;
    metadata?: Record<string, string>;
    properties?: Record<string, unknown>;
  }): string;
  getInstanceTemplate(project: string, name: string): FakeInstanceTemplate | undefined;
  /**
   * Sets the template new members of `mig` get, as setInstanceTemplate does (versions cleared); members without
   * a template yet get it too (VMs the test added before).
   */
  setInstanceTemplate(mig: FakeMig, templateUrl: string): void;
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
  /** Default 0; `Infinity` waits for {@link FakeComputeApi.completeBoots}. */
  bootDelayMs?: number;
  duplicateNameAnswer?: DuplicateNameAnswer;
}

/**
 * Starts a stateful fake of the Compute Engine v1 REST API on 127.0.0.1: instances.get and aggregatedList
 * (with a subset of the `filter` syntax: `labels.KEY = "VALUE"` and the like), (region)
 * instanceGroupManagers get/createInstances/deleteInstances/listManagedInstances, autoscalers get, and
 * operations get/wait, with Google-shaped errors. Every call is recorded and faults can be injected through
 * `controls`.
 */
export async function startFakeComputeApi(options: FakeComputeApiOptions = {}): Promise<FakeComputeApi> {
  const settings = {
    deletionDelayMs: options.deletionDelayMs ?? 0,
    bootDelayMs: options.bootDelayMs ?? 0,
    operationsPendingPolls: options.operationsPendingPolls ?? 0,
    duplicateNameAnswer: options.duplicateNameAnswer ?? 'http-409',
  };
  const state = new ComputeState(settings);
  const templates = new InstanceTemplates(settings);
  const { app, controls } = createFakeApp();
  app.use(createRolloutRouter(state, templates, { requireAuth: options.requireAuth ?? true }));
  app.use(createComputeRouter(state, { requireAuth: options.requireAuth ?? true }));
  app.use(fakeComputeErrorHandler);

  const server = await listenOnLoopback(app, options.port ?? 0);
  const endpoint: FakeComputeConnection = {
    apiEndpoint: '127.0.0.1',
    port: server.port,
    protocol: 'http',
    fallback: true,
  };

  return {
    url: server.url,
    port: server.port,
    controls,
    endpoint,
    // The settings object is the state's own options: these accessors change what it does next.
    get operationsPendingPolls() {
      return settings.operationsPendingPolls;
    },
    set operationsPendingPolls(value: number) {
      settings.operationsPendingPolls = value;
    },
    get bootDelayMs() {
      return settings.bootDelayMs;
    },
    set bootDelayMs(value: number) {
      settings.bootDelayMs = value;
    },
    get duplicateNameAnswer() {
      return settings.duplicateNameAnswer;
    },
    set duplicateNameAnswer(value: DuplicateNameAnswer) {
      settings.duplicateNameAnswer = value;
    },
    clientOptions: (authClient) => ({ ...endpoint, authClient }),
    close: async () => {
      state.stopTimers();
      await server.close();
    },
    addProject: (project) => state.addProject(project),
    addMig: (o) => state.addMig(o),
    addInstance: (o) => state.addInstance(o),
    getInstance: (project, zone, name) => state.getInstance(project, zone, name),
    getMig: (ref) => state.getMig(ref),
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
    failNextOperation: (failure) => state.failNextOperation(failure),
    setZoneCapacity: (project, zone, shortage) => state.setZoneCapacity(project, zone, shortage),
    onInstanceCreated: (listener) => state.onInstanceCreated(listener),
    onInstanceDeleted: (listener) => state.onInstanceDeleted((instance) => listener(instance)),
    completeDeletions: () => state.completeDeletions(),
    completeBoots: () => state.completeBoots(),
    addInstanceTemplate: ({ project, name, metadata = {}, properties = {} }) =>
      templates.add(state.projectOrThrow(project), name, {
        ...properties,
        metadata: { items: Object.entries(metadata).map(([key, value]) => ({ key, value })) },
      }).selfLink,
    getInstanceTemplate: (project, name) => templates.get(state.projectOrThrow(project), name),
    setInstanceTemplate: (mig, templateUrl) => {
      mig.versions = undefined;
      mig.instanceTemplate = templateUrl;
      for (const member of mig.members.values()) member.instanceTemplate ??= templateUrl;
    },
  };
}
