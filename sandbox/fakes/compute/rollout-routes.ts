import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import { FakeComputeError, badRequest, notFound } from './compute-error.js';
import { renderMig, renderOperation } from './compute-resources.js';
import { COMPUTE_API_ROOT } from './compute-state.js';
import type { ComputeState, FakeMig, FakeProject, OperationRecord } from './compute-state.js';
import { renderInstanceTemplate } from './instance-templates.js';
import type { InstanceTemplates } from './instance-templates.js';
import { applyProactiveUpdate, mergeUpdatePolicy, parseVersions } from './mig-versions.js';

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Fields of an InstanceGroupManager the fake lets `patch` change; the rest are refused so a client relying on more notices. */
const PATCHABLE = new Set(['versions', 'updatePolicy', 'instanceTemplate', 'name', 'fingerprint']);

/** One page of a list: `maxResults` (0–500, 0 meaning 500) and an opaque `pageToken`. */
function page<T>(req: Request, items: readonly T[]): { items: T[]; nextPageToken?: string } {
  const query = (key: string) => (typeof req.query[key] === 'string' ? req.query[key] : undefined);
  if (query('filter'))
    throw badRequest("Invalid value for field 'filter': the fake supports no list filter.");
  const maxResults = Number(query('maxResults') ?? 500);
  if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > 500) {
    throw badRequest(`Invalid value for field 'maxResults': '${String(query('maxResults'))}'.`);
  }
  const size = maxResults === 0 ? 500 : maxResults;
  const offset = Number(/^page-(\d+)$/.exec(query('pageToken') ?? '')?.[1] ?? 0);
  const slice = items.slice(offset, offset + size);
  return offset + size < items.length
    ? { items: slice, nextPageToken: `page-${offset + size}` }
    : { items: slice };
}

/**
 * The Compute Engine v1 routes of templates and rollouts: global instanceTemplates insert, get and list, global
 * operations get and wait, instanceGroupManagers.aggregatedList, and for zonal and regional MIGs `patch`
 * (versions, updatePolicy) and `setInstanceTemplate`. Paths from https://cloud.google.com/compute/docs/reference/rest/v1.
 * Mounted before the router of compute-api's other routes, whose last handler answers 404.
 */
export function createRolloutRouter(
  state: ComputeState,
  templates: InstanceTemplates,
  options: { requireAuth: boolean },
): Router {
  const router = express.Router();
  router.use((req: Request, _res: Response, next: NextFunction) => {
    // The same check as the other routes (rest-routes.ts): Compute wants an OAuth 2 access token.
    if (options.requireAuth && !/^Bearer \S+/i.test(req.headers.authorization ?? '')) {
      throw new FakeComputeError(
        401,
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
        'required',
      );
    }
    next();
  });

  const projectOf = (idOrNumber: string): FakeProject => state.projectOrThrow(idOrNumber);
  const global = '/compute/v1/projects/:project/global';

  router.post(`${global}/instanceTemplates`, (req, res) => {
    res.json(renderOperation(templates.insert(projectOf(req.params.project), req.body)));
  });
  router.get(`${global}/instanceTemplates/:template`, (req, res) => {
    const { project, template } = req.params;
    const found = templates.get(projectOf(project), template);
    if (!found) throw notFound(`projects/${project}/global/instanceTemplates/${template}`);
    res.json(renderInstanceTemplate(found));
  });
  router.get(`${global}/instanceTemplates`, (req, res) => {
    const project = projectOf(req.params.project);
    const { items, nextPageToken } = page(req, templates.list(project));
    res.json({
      kind: 'compute#instanceTemplateList',
      id: `projects/${project.projectId}/global/instanceTemplates`,
      items: items.map(renderInstanceTemplate),
      selfLink: `${COMPUTE_API_ROOT}/projects/${project.projectId}/global/instanceTemplates`,
      ...(nextPageToken !== undefined && { nextPageToken }),
    });
  });

  const pollGlobalOperation = (req: Request<{ project: string; operation: string }>, res: Response): void => {
    const { project, operation } = req.params;
    const op = templates.findOperation(projectOf(project), operation);
    if (!op) throw notFound(`projects/${project}/global/operations/${operation}`);
    if (op.pollsLeft > 0) op.pollsLeft -= 1;
    res.json(renderOperation(op));
  };
  router.get(`${global}/operations/:operation`, pollGlobalOperation);
  router.post(`${global}/operations/:operation/wait`, pollGlobalOperation);

  // https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers/aggregatedList: zonal and
  // regional MIGs alike, keyed `zones/<zone>` or `regions/<region>`.
  router.get('/compute/v1/projects/:project/aggregated/instanceGroupManagers', (req, res) => {
    const project = projectOf(req.params.project);
    const migs = state
      .allMigs()
      .filter((mig) => mig.project === project)
      .sort((a, b) =>
        `${a.scope}/${a.location}/${a.name}`.localeCompare(`${b.scope}/${b.location}/${b.name}`),
      );
    const { items: listed, nextPageToken } = page(req, migs);
    const items: Record<string, { instanceGroupManagers: unknown[] }> = {};
    for (const mig of listed) {
      (items[`${mig.scope}/${mig.location}`] ??= { instanceGroupManagers: [] }).instanceGroupManagers.push(
        renderMig(mig),
      );
    }
    res.json({
      kind: 'compute#instanceGroupManagerAggregatedList',
      id: `projects/${project.projectId}/aggregated/instanceGroupManagers`,
      items,
      selfLink: `${COMPUTE_API_ROOT}/projects/${project.projectId}/aggregated/instanceGroupManagers`,
      ...(nextPageToken !== undefined && { nextPageToken }),
    });
  });

  const base = '/compute/v1/projects/:project/:scope/:location/instanceGroupManagers/:mig';
  const migFromPath = (params: Record<string, string | undefined>): FakeMig => {
    const { project = '', scope = '', location = '', mig = '' } = params;
    const resource = `projects/${project}/${scope}/${location}/instanceGroupManagers/${mig}`;
    if (scope !== 'zones' && scope !== 'regions') throw notFound(resource);
    const found = state.findMig(projectOf(project), scope, location, mig);
    if (!found) throw notFound(resource);
    return found;
  };
  const answer = (res: Response, mig: FakeMig, op: OperationRecord): void => {
    // An update that failed (failNextOperation) changes nothing; a proactive one replaces members at once.
    if (!op.failure && mig.updatePolicy?.type === 'PROACTIVE') applyProactiveUpdate(mig);
    res.json(renderOperation(op));
  };

  // instanceGroupManagers.patch is a JSON merge patch: `versions` replaces the list, `updatePolicy` merges.
  router.patch(base, (req, res) => {
    const mig = migFromPath(req.params);
    const body: unknown = req.body;
    if (!isRecord(body))
      throw new FakeComputeError(400, "Required field 'resource' not specified", 'required');
    const refused = Object.keys(body).find((field) => !PATCHABLE.has(field));
    if (refused !== undefined)
      throw badRequest(`Invalid value for field 'resource.${refused}': the fake cannot patch it.`);
    const resolve = (reference: string) => templates.resolve(mig.project, reference, projectOf);
    // Everything is checked before anything changes: a refused patch leaves the MIG as it was.
    const versions = body.versions === undefined ? undefined : parseVersions(body.versions, resolve);
    const template = typeof body.instanceTemplate === 'string' ? resolve(body.instanceTemplate) : undefined;
    const updatePolicy =
      body.updatePolicy === undefined ? undefined : mergeUpdatePolicy(mig.updatePolicy, body.updatePolicy);
    const op = state.createOperation(mig, 'patch');
    if (!op.failure) {
      if (versions) {
        mig.versions = versions;
        mig.instanceTemplate = versions.find((v) => !v.targetSize)!.instanceTemplate;
      } else if (template !== undefined) {
        mig.versions = undefined;
        mig.instanceTemplate = template;
      }
      if (updatePolicy) mig.updatePolicy = updatePolicy;
    }
    answer(res, mig, op);
  });

  // "Specifies the instance template to use when creating new instances in this group": one version again.
  router.post(`${base}/setInstanceTemplate`, (req, res) => {
    const mig = migFromPath(req.params);
    const body: unknown = req.body;
    const reference = isRecord(body) ? body.instanceTemplate : undefined;
    if (typeof reference !== 'string') {
      throw new FakeComputeError(400, "Required field 'instanceTemplate' not specified", 'required');
    }
    const template = templates.resolve(mig.project, reference, projectOf);
    const op = state.createOperation(mig, 'setInstanceTemplate');
    if (!op.failure) {
      mig.versions = undefined;
      mig.instanceTemplate = template;
    }
    answer(res, mig, op);
  });

  return router;
}
