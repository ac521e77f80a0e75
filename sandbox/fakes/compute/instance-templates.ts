import crypto from 'node:crypto';
import { FakeComputeError, badRequest, notFound } from './compute-error.js';
import { COMPUTE_API_ROOT, randomId } from './compute-state.js';
import type { FakeProject, OperationRecord } from './compute-state.js';

/** A global instance template (https://cloud.google.com/compute/docs/reference/rest/v1/instanceTemplates). */
export interface FakeInstanceTemplate {
  readonly project: FakeProject;
  readonly name: string;
  readonly id: string;
  readonly selfLink: string;
  readonly creationTimestamp: string;
  readonly description: string | undefined;
  /** As inserted; instance templates cannot be changed, only replaced. */
  readonly properties: Record<string, unknown>;
}

const RESOURCE_NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** `https://…/compute/v1/projects/P/global/instanceTemplates/N`, `projects/P/global/…/N` or `global/…/N`. */
const TEMPLATE_REFERENCE =
  /^(?:(?:https?:\/\/[^/]+\/compute\/v1\/)?projects\/([^/]+)\/)?global\/instanceTemplates\/([^/]+)$/;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The project's global instance templates and the global operations their inserts start. */
export class InstanceTemplates {
  private readonly templates = new Map<string, FakeInstanceTemplate>(); // by `${projectId}/${name}`
  private readonly operations = new Map<string, OperationRecord>(); // by `${projectId}/${name or id}`

  constructor(private readonly settings: { operationsPendingPolls: number }) {}

  static url(project: FakeProject, name: string): string {
    return `${COMPUTE_API_ROOT}/projects/${project.projectId}/global/instanceTemplates/${name}`;
  }

  get(project: FakeProject, name: string): FakeInstanceTemplate | undefined {
    return this.templates.get(`${project.projectId}/${name}`);
  }

  list(project: FakeProject): FakeInstanceTemplate[] {
    return [...this.templates.values()]
      .filter((t) => t.project === project)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The full URL of the template a MIG request names, relative to `project` when the reference names none; a
   * template that does not exist is Compute's 404.
   */
  resolve(project: FakeProject, reference: string, projectOf: (idOrNumber: string) => FakeProject): string {
    const match = TEMPLATE_REFERENCE.exec(reference);
    if (!match) throw badRequest(`Invalid value for field 'instanceTemplate': '${reference}'.`);
    const owner = match[1] === undefined ? project : projectOf(match[1]);
    const template = this.get(owner, match[2]!);
    if (!template) throw notFound(`projects/${owner.projectId}/global/instanceTemplates/${match[2]}`);
    return template.selfLink;
  }

  /** Adds a template directly (test set-up). */
  add(
    project: FakeProject,
    name: string,
    properties: Record<string, unknown>,
    description?: string,
  ): FakeInstanceTemplate {
    if (!RESOURCE_NAME.test(name)) throw new Error(`invalid template name ${name}`);
    if (this.get(project, name)) throw new Error(`template ${name} already exists`);
    const template: FakeInstanceTemplate = {
      project,
      name,
      id: randomId(),
      selfLink: InstanceTemplates.url(project, name),
      creationTimestamp: new Date().toISOString(),
      description,
      properties: structuredClone(properties),
    };
    this.templates.set(`${project.projectId}/${name}`, template);
    return template;
  }

  /** instanceTemplates.insert: validates the body as Compute does and answers a global Operation. */
  insert(project: FakeProject, body: unknown): OperationRecord {
    if (!isRecord(body))
      throw new FakeComputeError(400, "Required field 'resource' not specified", 'required');
    const { name, properties, description } = body;
    if (typeof name !== 'string' || !RESOURCE_NAME.test(name)) {
      throw badRequest(
        `Invalid value for field 'resource.name': '${String(name)}'. Must be a match of regex '${RESOURCE_NAME.source}'`,
      );
    }
    if (!isRecord(properties)) {
      throw new FakeComputeError(400, "Required field 'resource.properties' not specified", 'required');
    }
    if (this.get(project, name)) {
      throw new FakeComputeError(
        409,
        `The resource 'projects/${project.projectId}/global/instanceTemplates/${name}' already exists`,
        'alreadyExists',
      );
    }
    const template = this.add(
      project,
      name,
      properties,
      typeof description === 'string' ? description : undefined,
    );
    return this.operation(project, 'insert', template.selfLink, template.id);
  }

  private operation(
    project: FakeProject,
    operationType: string,
    targetLink: string,
    targetId: string,
  ): OperationRecord {
    const now = new Date().toISOString();
    const id = randomId();
    const name = `operation-${Date.now()}-${crypto.randomBytes(6).toString('hex')}`;
    const op: OperationRecord = {
      failure: undefined,
      pollsLeft: this.settings.operationsPendingPolls,
      body: {
        kind: 'compute#operation',
        id,
        name,
        operationType,
        targetLink,
        targetId,
        user: 'fake-caller@example.iam.gserviceaccount.com',
        insertTime: now,
        startTime: now,
        selfLink: `${COMPUTE_API_ROOT}/projects/${project.projectId}/global/operations/${name}`,
      },
    };
    for (const key of [name, id]) this.operations.set(`${project.projectId}/${key}`, op);
    return op;
  }

  findOperation(project: FakeProject, operation: string): OperationRecord | undefined {
    return this.operations.get(`${project.projectId}/${operation}`);
  }
}

/** A template as instanceTemplates.get and list answer it. */
export function renderInstanceTemplate(template: FakeInstanceTemplate): Record<string, unknown> {
  return {
    kind: 'compute#instanceTemplate',
    id: template.id,
    name: template.name,
    creationTimestamp: template.creationTimestamp,
    selfLink: template.selfLink,
    ...(template.description !== undefined && { description: template.description }),
    properties: structuredClone(template.properties),
  };
}
