import crypto from 'node:crypto';
import { FakeComputeError, badRequest, notFound } from './compute-error.js';
import { templateForNewMember } from './mig-versions.js';
import type { FakeMigVersion } from './mig-versions.js';

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
  /** Resource labels (`github-runner-keep: 'true'`, …); instances.get and the lists show them. */
  labels: Record<string, string>;
  readonly mig?: FakeMig;
}

/** One `lastAttempt.errors.errors[]` entry of a member the MIG cannot create. */
export interface FakeAttemptError {
  /** E.g. `ZONE_RESOURCE_POOL_EXHAUSTED`, `QUOTA_EXCEEDED`. */
  code: string;
  message: string;
}

/**
 * A MIG's view of one member, as listManagedInstances reports it (`instanceStatus` is the VM's `status`).
 * A member created by createInstances has no VM while it is `CREATING`; its zone is already chosen.
 */
export interface FakeManagedInstance {
  readonly name: string;
  readonly zone: string;
  /** The VM, once it exists. */
  instance: FakeInstance | undefined;
  currentAction: string;
  /** Why the MIG could not create the VM at its last attempt; it keeps trying. */
  lastAttemptErrors: FakeAttemptError[] | undefined;
  /** The instance template URL the member runs (`version.instanceTemplate`), when the MIG has one. */
  instanceTemplate?: string | undefined;
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
  /** The zones a regional MIG spreads its members over (its own zone for a zonal MIG). */
  readonly zones: readonly string[];
  targetSize: number;
  /** `undefined`: stable exactly when every member's currentAction is NONE. */
  stableOverride: boolean | undefined;
  readonly autoscaler?: FakeAutoscaler;
  /** Keyed by instance name. */
  readonly members: Map<string, FakeManagedInstance>;
  /** The template of new members when `versions` is unset (`setInstanceTemplate`); see mig-versions.ts. */
  instanceTemplate?: string | undefined;
  /** A rollout's versions (`patch`); unset: every member runs `instanceTemplate`. */
  versions?: FakeMigVersion[] | undefined;
  /** As `patch` set it; unset fields take Compute's defaults when rendered. */
  updatePolicy?: Record<string, unknown> | undefined;
}

/** Names a MIG: exactly one of `region` or `zone`. `project` may be the id or the number. */
export interface FakeMigLocator {
  project: string;
  region?: string;
  zone?: string;
  name: string;
}

export interface AddMigOptions extends FakeMigLocator {
  /** Default 0. The fake never creates VMs to reach it; {@link ComputeState.addInstance} raises it. */
  targetSize?: number;
  autoscaler?: { name?: string; recommendedSize?: number | null; mode?: string };
  /** Zones of a regional MIG; default `<region>-a`, `-b`, `-c`. */
  zones?: string[];
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
  labels?: Record<string, string>;
  /** Default `RUNNING`. */
  status?: string;
}

/** How a mutating call's Operation fails (https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations). */
export interface OperationFailure {
  httpErrorStatusCode: number;
  /** E.g. `RESOURCE_NOT_FOUND`. */
  code: string;
  message: string;
  /** Default: the status's reason phrase in capitals, e.g. `NOT FOUND`. */
  httpErrorMessage?: string;
}

/**
 * What createInstances answers when a listed name already exists. Google documents neither, so the fake
 * can answer either way: an HTTP 409 `alreadyExists`, or an Operation that is DONE with an error. Either
 * way nothing of the request is created.
 */
export type DuplicateNameAnswer = 'http-409' | 'operation-error';

/** Why a zone cannot create VMs, as listManagedInstances reports it in `lastAttempt.errors`. */
export interface ZoneShortage {
  /** How many more VMs the zone can start; 0 means none. */
  remaining: number;
  /** Default `ZONE_RESOURCE_POOL_EXHAUSTED`. */
  code?: string;
}

export interface OperationRecord {
  readonly body: Record<string, unknown>;
  pollsLeft: number;
  readonly failure: OperationFailure | undefined;
}

/** A random 19-digit decimal id, first digit 1-9, like Compute's uint64 ids. */
export function randomId(): string {
  let id = String(crypto.randomInt(1, 10));
  for (let i = 0; i < 18; i += 1) id += String(crypto.randomInt(0, 10));
  return id;
}

/** Zone `us-central1-a` is in region `us-central1`. */
export function migCovers(mig: FakeMig, zone: string): boolean {
  return mig.scope === 'zones' ? zone === mig.location : zone.startsWith(`${mig.location}-`);
}

export function locationUrl(project: FakeProject, scope: LocationScope, location: string): string {
  return `${COMPUTE_API_ROOT}/projects/${project.projectId}/${scope}/${location}`;
}

/** `{ zone: url }` or `{ region: url }`, the field every located resource carries. */
export function locationField(
  project: FakeProject,
  scope: LocationScope,
  location: string,
): Record<string, string> {
  return { [scope === 'zones' ? 'zone' : 'region']: locationUrl(project, scope, location) };
}

/** The URL of a member's VM: known as soon as the member is, even before the VM exists. */
export function memberUrl(mig: FakeMig, member: FakeManagedInstance): string {
  return `${locationUrl(mig.project, 'zones', member.zone)}/instances/${member.name}`;
}

/** Compute Engine resource names (https://cloud.google.com/compute/docs/naming-resources). */
const RESOURCE_NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** createInstances takes at most 1000 instances a request. */
const MAX_CREATE_INSTANCES = 1000;

export interface ComputeStateOptions {
  /** How long a DELETING member lingers; `Infinity` waits for {@link ComputeState.completeDeletions}. */
  deletionDelayMs: number;
  /** How long a created member stays CREATING before its VM runs (zone capacity permitting). */
  bootDelayMs: number;
  operationsPendingPolls: number;
  duplicateNameAnswer: DuplicateNameAnswer;
}

type InstanceListener = (instance: FakeInstance, mig: FakeMig | undefined) => void;

/**
 * The fake's world: projects, VMs, MIGs and their members, operations, zone capacity, and the timers that
 * move members from CREATING to running and from DELETING to gone. It holds no HTTP concerns, so the route
 * module stays about request and response shapes.
 */
export class ComputeState {
  private readonly projects = new Map<string, FakeProject>(); // by id and by number
  private readonly instances = new Map<string, FakeInstance>(); // by `${projectId}/${zone}/${name}`
  private readonly migs = new Map<string, FakeMig>(); // by `${projectId}/${scope}/${location}/${name}`
  private readonly operations = new Map<string, OperationRecord>(); // by `${migKey-ish}/${name or id}`
  private readonly requestIds = new Map<string, OperationRecord>();
  private readonly deletions = new Map<
    FakeManagedInstance,
    { mig: FakeMig; timer: NodeJS.Timeout | undefined }
  >();
  private readonly boots = new Map<
    FakeManagedInstance,
    { mig: FakeMig; timer: NodeJS.Timeout | undefined }
  >();
  private readonly shortages = new Map<string, Required<ZoneShortage>>(); // by `${projectId}/${zone}`
  private readonly deletedListeners = new Set<InstanceListener>();
  private readonly createdListeners = new Set<InstanceListener>();
  private nextFailure: OperationFailure | undefined;

  constructor(readonly options: ComputeStateOptions) {}

  // --- lookups -----------------------------------------------------------------------------------

  projectOrThrow(idOrNumber: string): FakeProject {
    const project = this.projects.get(idOrNumber);
    if (!project) throw notFound(`projects/${idOrNumber}`);
    return project;
  }

  static migKey(project: FakeProject, scope: string, location: string, name: string): string {
    return `${project.projectId}/${scope}/${location}/${name}`;
  }

  private static scopeOf(ref: FakeMigLocator): [LocationScope, string] {
    if ((ref.region === undefined) === (ref.zone === undefined)) {
      throw new Error(`MIG ${ref.name}: give exactly one of region or zone`);
    }
    return ref.region !== undefined ? ['regions', ref.region] : ['zones', ref.zone ?? ''];
  }

  findMig(project: FakeProject, scope: string, location: string, name: string): FakeMig | undefined {
    return this.migs.get(ComputeState.migKey(project, scope, location, name));
  }

  getMig(ref: FakeMigLocator): FakeMig | undefined {
    const project = this.projects.get(ref.project);
    return project
      ? this.migs.get(ComputeState.migKey(project, ...ComputeState.scopeOf(ref), ref.name))
      : undefined;
  }

  allMigs(): FakeMig[] {
    return [...this.migs.values()];
  }

  getInstance(project: string, zone: string, name: string): FakeInstance | undefined {
    const projectId = this.projects.get(project)?.projectId;
    return projectId === undefined ? undefined : this.instances.get(`${projectId}/${zone}/${name}`);
  }

  /** Every VM of a project, by zone and then name (the order Compute's lists use). */
  listInstances(project: FakeProject): FakeInstance[] {
    return [...this.instances.values()]
      .filter((instance) => instance.project === project)
      .sort((a, b) => a.zone.localeCompare(b.zone) || a.name.localeCompare(b.name));
  }

  // --- set-up ------------------------------------------------------------------------------------

  addProject(project: { projectId: string; projectNumber: string | number }): FakeProject {
    const record: FakeProject = {
      projectId: project.projectId,
      projectNumber: String(project.projectNumber),
    };
    this.projects.set(record.projectId, record);
    this.projects.set(record.projectNumber, record);
    return record;
  }

  addMig(options: AddMigOptions): FakeMig {
    const project = this.projectOrThrow(options.project);
    const [scope, location] = ComputeState.scopeOf(options);
    const key = ComputeState.migKey(project, scope, location, options.name);
    if (this.migs.has(key)) throw new Error(`MIG ${key} already exists`);
    const as = options.autoscaler;
    const zones =
      scope === 'zones' ? [location] : (options.zones ?? ['a', 'b', 'c'].map((z) => `${location}-${z}`));
    const mig: FakeMig = {
      project,
      scope,
      location,
      name: options.name,
      id: randomId(),
      selfLink: `${locationUrl(project, scope, location)}/instanceGroupManagers/${options.name}`,
      zones,
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
    this.migs.set(key, mig);
    return mig;
  }

  private createdBy(project: FakeProject, mig: FakeMig): Record<string, string> {
    return {
      'created-by': `projects/${project.projectNumber}/${mig.scope}/${mig.location}/instanceGroupManagers/${mig.name}`,
    };
  }

  /** Adds a VM directly (as if it had booted long ago). */
  addInstance(options: AddInstanceOptions): FakeInstance {
    const project = this.projectOrThrow(options.project);
    const key = `${project.projectId}/${options.zone}/${options.name}`;
    if (this.instances.has(key)) throw new Error(`Instance ${key} already exists`);
    const { mig } = options;
    if (mig && (mig.project !== project || !migCovers(mig, options.zone))) {
      throw new Error(`Instance ${key} cannot join MIG ${mig.selfLink}`);
    }
    const instance = this.newInstance(project, options.zone, options.name, {
      ...(mig && { mig }),
      ...(options.id !== undefined && { id: options.id }),
      status: options.status ?? 'RUNNING',
      metadata: { ...(mig ? this.createdBy(project, mig) : {}), ...options.metadata },
      labels: { ...options.labels },
    });
    if (mig) {
      mig.members.set(instance.name, {
        name: instance.name,
        zone: instance.zone,
        instance,
        currentAction: 'NONE',
        lastAttemptErrors: undefined,
      });
      mig.targetSize = Math.max(mig.targetSize, mig.members.size);
      mig.members.get(instance.name)!.instanceTemplate = templateForNewMember(mig);
    }
    return instance;
  }

  private newInstance(
    project: FakeProject,
    zone: string,
    name: string,
    fields: {
      mig?: FakeMig;
      id?: string;
      status: string;
      metadata: Record<string, string>;
      labels?: Record<string, string>;
    },
  ): FakeInstance {
    const instance: FakeInstance = {
      project,
      zone,
      name,
      id: fields.id ?? randomId(),
      selfLink: `${locationUrl(project, 'zones', zone)}/instances/${name}`,
      creationTimestamp: new Date().toISOString(),
      status: fields.status,
      metadata: fields.metadata,
      labels: fields.labels ?? {},
      ...(fields.mig && { mig: fields.mig }),
    };
    this.instances.set(`${project.projectId}/${zone}/${name}`, instance);
    return instance;
  }

  failNextOperation(failure: OperationFailure): void {
    this.nextFailure = failure;
  }

  onInstanceDeleted(listener: InstanceListener): () => void {
    this.deletedListeners.add(listener);
    return () => this.deletedListeners.delete(listener);
  }

  onInstanceCreated(listener: InstanceListener): () => void {
    this.createdListeners.add(listener);
    return () => this.createdListeners.delete(listener);
  }

  // --- operations --------------------------------------------------------------------------------

  /** A new Operation on `mig`; it carries the pending injected failure, else `refusal`, if any. */
  createOperation(mig: FakeMig, operationType: string, refusal?: OperationFailure): OperationRecord {
    const failure = this.nextFailure ?? refusal;
    this.nextFailure = undefined;
    const now = new Date().toISOString();
    const id = randomId();
    const name = `operation-${Date.now()}-${crypto.randomBytes(6).toString('hex')}`;
    const op: OperationRecord = {
      failure,
      pollsLeft: this.options.operationsPendingPolls,
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
    for (const key of [name, id]) {
      this.operations.set(ComputeState.migKey(mig.project, mig.scope, mig.location, key), op);
    }
    return op;
  }

  findOperation(
    project: FakeProject,
    scope: string,
    location: string,
    operation: string,
  ): OperationRecord | undefined {
    return this.operations.get(ComputeState.migKey(project, scope, location, operation));
  }

  /**
   * The Operation an earlier request with the same `requestId` started, if any: "if you make a request with
   * the same request ID, the server ignores the second request" and answers with the first Operation.
   * https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers/createInstances
   */
  repeatedRequest(mig: FakeMig, requestId: string | undefined, run: () => OperationRecord): OperationRecord {
    if (requestId === undefined || requestId === '') return run();
    const key = `${mig.selfLink}#${requestId}`;
    const earlier = this.requestIds.get(key);
    if (earlier) return earlier;
    const op = run();
    this.requestIds.set(key, op);
    return op;
  }

  // --- creating members --------------------------------------------------------------------------

  /** True when a VM or a member of any MIG already has `name` in the project's `zone`. */
  private nameTaken(project: FakeProject, zone: string, name: string): boolean {
    if (this.instances.has(`${project.projectId}/${zone}/${name}`)) return true;
    return [...this.migs.values()].some((mig) => {
      if (mig.project !== project) return false;
      const member = mig.members.get(name);
      return member !== undefined && member.zone === zone;
    });
  }

  /** Zones for `count` new members: each goes where the MIG has fewest (a regional MIG's `EVEN` shape). */
  private zonesFor(mig: FakeMig, count: number): string[] {
    const counts = new Map(mig.zones.map((zone) => [zone, 0]));
    for (const member of mig.members.values()) {
      if (counts.has(member.zone)) counts.set(member.zone, (counts.get(member.zone) ?? 0) + 1);
    }
    return Array.from({ length: count }, () => {
      const [zone, n] = [...counts].sort((a, b) => a[1] - b[1])[0]!;
      counts.set(zone, n + 1);
      return zone;
    });
  }

  /**
   * createInstances: validates the body as Compute does (names, at most 1000, no repeats) and, unless a
   * name exists already, adds every listed member as CREATING and raises targetSize by their number, all
   * or nothing. Each member's VM starts after `bootDelayMs` if its zone has capacity; otherwise it stays
   * CREATING with `lastAttempt.errors` and the MIG keeps trying, as Compute documents
   * (https://cloud.google.com/compute/docs/instance-groups/creating-groups-of-managed-instances).
   */
  createInstances(mig: FakeMig, body: unknown, requestId: string | undefined): OperationRecord {
    const list =
      typeof body === 'object' && body !== null ? (body as { instances?: unknown }).instances : undefined;
    if (!Array.isArray(list) || list.length === 0) {
      throw new FakeComputeError(400, "Required field 'instances' not specified", 'required');
    }
    if (list.length > MAX_CREATE_INSTANCES) {
      throw badRequest(
        `Invalid value for field 'resource.instances': at most ${MAX_CREATE_INSTANCES} instances are allowed.`,
      );
    }
    const names: string[] = list.map((entry, index) => {
      const name =
        typeof entry === 'object' && entry !== null ? (entry as { name?: unknown }).name : undefined;
      if (typeof name !== 'string' || !RESOURCE_NAME.test(name)) {
        throw badRequest(
          `Invalid value for field 'resource.instances[${index}].name': '${String(name)}'. Must be a match of regex '${RESOURCE_NAME.source}'`,
        );
      }
      return name;
    });
    const repeated = names.find((name, i) => names.indexOf(name) !== i);
    if (repeated !== undefined) {
      throw badRequest(
        `Invalid value for field 'resource.instances': instance '${repeated}' is listed twice.`,
      );
    }
    return this.repeatedRequest(mig, requestId, () => {
      const zones = this.zonesFor(mig, names.length);
      const planned = names.map((name, i) => ({ name, zone: mig.members.get(name)?.zone ?? zones[i]! }));
      const taken = planned.find(({ name, zone }) => this.nameTaken(mig.project, zone, name));
      let refusal: OperationFailure | undefined;
      if (taken) {
        const message = `The resource 'projects/${mig.project.projectId}/zones/${taken.zone}/instances/${taken.name}' already exists`;
        if (this.options.duplicateNameAnswer === 'http-409')
          throw new FakeComputeError(409, message, 'alreadyExists');
        refusal = { httpErrorStatusCode: 409, code: 'RESOURCE_ALREADY_EXISTS', message };
      }
      const op = this.createOperation(mig, 'createInstances', refusal);
      if (op.failure) return op;
      for (const { name, zone } of planned) {
        const member: FakeManagedInstance = {
          name,
          zone,
          instance: undefined,
          currentAction: 'CREATING',
          lastAttemptErrors: undefined,
        };
        mig.members.set(name, member);
        mig.targetSize += 1;
        member.instanceTemplate = templateForNewMember(mig);
        this.scheduleBoot(mig, member);
      }
      return op;
    });
  }

  private scheduleBoot(mig: FakeMig, member: FakeManagedInstance): void {
    const delay = this.options.bootDelayMs;
    const timer = delay <= 2 ** 31 - 1 ? setTimeout(() => this.boot(mig, member), delay) : undefined;
    this.boots.set(member, { mig, timer });
  }

  /** One creation attempt: the VM starts, or the member stays CREATING with the zone's shortage. */
  private boot(mig: FakeMig, member: FakeManagedInstance): void {
    const pending = this.boots.get(member);
    if (!pending || mig.members.get(member.name) !== member || member.currentAction !== 'CREATING') return;
    clearTimeout(pending.timer);
    const shortage = this.shortages.get(`${mig.project.projectId}/${member.zone}`);
    if (shortage && shortage.remaining <= 0) {
      member.lastAttemptErrors = [
        {
          code: shortage.code,
          message:
            shortage.code === 'QUOTA_EXCEEDED'
              ? `Quota 'CPUS' exceeded. Limit reached in region ${member.zone.replace(/-[a-z]$/, '')}.`
              : `The zone 'projects/${mig.project.projectId}/zones/${member.zone}' does not have enough resources available to fulfill the request. Try a different zone, or try again later.`,
        },
      ];
      pending.timer = undefined; // retried when the zone gets capacity back
      return;
    }
    if (shortage) shortage.remaining -= 1;
    this.boots.delete(member);
    member.instance = this.newInstance(mig.project, member.zone, member.name, {
      mig,
      status: 'RUNNING',
      metadata: this.createdBy(mig.project, mig),
    });
    member.currentAction = 'NONE';
    member.lastAttemptErrors = undefined;
    for (const listener of this.createdListeners) listener(member.instance, mig);
  }

  /** Limits how many more VMs `zone` can start (`undefined`: no limit), and retries stalled members. */
  setZoneCapacity(project: string, zone: string, shortage: ZoneShortage | undefined): void {
    const key = `${this.projectOrThrow(project).projectId}/${zone}`;
    if (shortage === undefined) this.shortages.delete(key);
    else
      this.shortages.set(key, {
        remaining: shortage.remaining,
        code: shortage.code ?? 'ZONE_RESOURCE_POOL_EXHAUSTED',
      });
    this.retryStalled();
  }

  private retryStalled(): void {
    for (const [member, { mig, timer }] of [...this.boots]) {
      if (timer === undefined && member.lastAttemptErrors !== undefined) this.boot(mig, member);
    }
  }

  /** Starts every member still waiting for its boot delay now (for `bootDelayMs: Infinity`). */
  completeBoots(): void {
    for (const [member, { mig }] of [...this.boots])
      if (member.lastAttemptErrors === undefined) this.boot(mig, member);
  }

  // --- deleting members --------------------------------------------------------------------------

  private finishDeletion(member: FakeManagedInstance): void {
    const pending = this.deletions.get(member);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.deletions.delete(member);
    pending.mig.members.delete(member.name);
    const { instance } = member;
    if (!instance) return;
    this.instances.delete(`${instance.project.projectId}/${instance.zone}/${instance.name}`);
    const shortage = this.shortages.get(`${instance.project.projectId}/${instance.zone}`);
    if (shortage) shortage.remaining += 1;
    for (const listener of this.deletedListeners) listener(instance, pending.mig);
    if (shortage) this.retryStalled();
  }

  startDeletion(mig: FakeMig, member: FakeManagedInstance): void {
    const boot = this.boots.get(member);
    if (boot) {
      clearTimeout(boot.timer);
      this.boots.delete(member);
    }
    member.currentAction = 'DELETING';
    mig.targetSize = Math.max(0, mig.targetSize - 1);
    // setTimeout would turn Infinity (or anything past 2^31-1 ms) into 1 ms, so such delays wait for
    // completeDeletions() instead. A member that never got a VM has nothing to shut down.
    const delay = member.instance ? this.options.deletionDelayMs : 0;
    const timer = delay <= 2 ** 31 - 1 ? setTimeout(() => this.finishDeletion(member), delay) : undefined;
    this.deletions.set(member, { mig, timer });
  }

  /** Finishes every deletion still lingering in DELETING now (for `deletionDelayMs: Infinity`). */
  completeDeletions(): void {
    for (const member of [...this.deletions.keys()]) this.finishDeletion(member);
  }

  /** Stops every timer (the fake is closing). */
  stopTimers(): void {
    for (const { timer } of [...this.deletions.values(), ...this.boots.values()]) clearTimeout(timer);
    this.deletions.clear();
    this.boots.clear();
  }
}
