import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import { FakeComputeError, badRequest, notFound } from './compute-error.js';
import {
  renderAutoscaler,
  renderInstance,
  renderManagedInstance,
  renderMig,
  renderOperation,
} from './compute-resources.js';
import type { ComputeState, FakeManagedInstance, FakeMig, OperationFailure } from './compute-state.js';
import { COMPUTE_API_ROOT, migCovers } from './compute-state.js';
import { matchesFilter, parseInstanceFilter } from './instance-filter.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Full or partial instance URL → its parts; `undefined` when malformed. */
function parseInstanceUrl(url: string): { project?: string; zone: string; name: string } | undefined {
  const match =
    /^(?:(?:https?:\/\/[^/]+\/compute\/v1\/)?projects\/([^/]+)\/)?zones\/([^/]+)\/instances\/([^/]+)$/.exec(
      url,
    );
  if (!match) return undefined;
  const [, project, zone = '', name = ''] = match;
  return project === undefined ? { zone, name } : { project, zone, name };
}

const requestIdOf = (req: Request): string | undefined =>
  typeof req.query.requestId === 'string' ? req.query.requestId : undefined;

/**
 * The Compute Engine v1 REST routes the fake serves: instances.get and aggregatedList, (region)instanceGroupManagers get,
 * listManagedInstances, createInstances and deleteInstances, autoscalers get, operations get and wait.
 * Paths from https://cloud.google.com/compute/docs/reference/rest/v1.
 */
export function createComputeRouter(state: ComputeState, options: { requireAuth: boolean }): Router {
  const router = express.Router();

  router.use((req: Request, _res: Response, next: NextFunction) => {
    if (options.requireAuth && !/^Bearer \S+/i.test(req.headers.authorization ?? '')) {
      throw new FakeComputeError(
        401,
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
        'required',
      );
    }
    next();
  });

  const base = '/compute/v1/projects/:project/:scope/:location';
  /** The MIG a request path names; 404 when the path matches no MIG. */
  const migFromPath = (params: Record<string, string | undefined>): FakeMig => {
    const { project = '', scope = '', location = '', mig = '' } = params;
    const resource = `projects/${project}/${scope}/${location}/instanceGroupManagers/${mig}`;
    if (scope !== 'zones' && scope !== 'regions') throw notFound(resource);
    const found = state.findMig(state.projectOrThrow(project), scope, location, mig);
    if (!found) throw notFound(resource);
    return found;
  };

  router.get('/compute/v1/projects/:project/zones/:zone/instances/:instance', (req, res) => {
    const { project, zone, instance } = req.params;
    state.projectOrThrow(project);
    const found = state.getInstance(project, zone, instance);
    if (!found) throw notFound(`projects/${project}/zones/${zone}/instances/${instance}`);
    res.json(renderInstance(found));
  });

  // https://cloud.google.com/compute/docs/reference/rest/v1/instances/aggregatedList: scopes keyed
  // `zones/<zone>`, paged by `maxResults` (at most 500) and `pageToken`, filtered by `filter`.
  router.get('/compute/v1/projects/:project/aggregated/instances', (req, res) => {
    const project = state.projectOrThrow(req.params.project);
    const query = (key: string) => (typeof req.query[key] === 'string' ? req.query[key] : undefined);
    const comparisons = parseInstanceFilter(query('filter') ?? '');
    const maxResults = Number(query('maxResults') ?? 500);
    if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > 500) {
      throw badRequest(`Invalid value for field 'maxResults': '${String(query('maxResults'))}'.`);
    }
    const matching = state.listInstances(project).filter((i) => matchesFilter(i, comparisons));
    const offset = Number(/^page-(\d+)$/.exec(query('pageToken') ?? '')?.[1] ?? 0);
    const pageSize = maxResults === 0 ? 500 : maxResults;
    const page = matching.slice(offset, offset + pageSize);
    const items: Record<string, unknown> = {};
    for (const instance of page) {
      const scope = `zones/${instance.zone}`;
      const scoped = (items[scope] ??= { instances: [] }) as { instances: unknown[] };
      scoped.instances.push(renderInstance(instance));
    }
    for (const zone of new Set(
      state.allMigs().flatMap((mig) => (mig.project === project ? mig.zones : [])),
    )) {
      const scope = `zones/${zone}`;
      items[scope] ??= {
        warning: {
          code: 'NO_RESULTS_ON_PAGE',
          message: `There are no results for scope '${scope}' on this page.`,
          data: [{ key: 'scope', value: scope }],
        },
      };
    }
    res.json({
      kind: 'compute#instanceAggregatedList',
      id: `projects/${project.projectId}/aggregated/instances`,
      items,
      selfLink: `${COMPUTE_API_ROOT}/projects/${project.projectId}/aggregated/instances`,
      ...(offset + pageSize < matching.length && { nextPageToken: `page-${offset + pageSize}` }),
    });
  });

  router.get(`${base}/instanceGroupManagers/:mig`, (req, res) => {
    res.json(renderMig(migFromPath(req.params)));
  });

  // The client sends the literal JSON body "" here; the body carries nothing, so ignore it.
  router.post(`${base}/instanceGroupManagers/:mig/listManagedInstances`, (req, res) => {
    const mig = migFromPath(req.params);
    res.json({
      managedInstances: [...mig.members.values()].map((member) => renderManagedInstance(mig, member)),
    });
  });

  router.post(`${base}/instanceGroupManagers/:mig/createInstances`, (req, res) => {
    const mig = migFromPath(req.params);
    res.json(renderOperation(state.createInstances(mig, req.body, requestIdOf(req))));
  });

  router.post(`${base}/instanceGroupManagers/:mig/deleteInstances`, (req, res) => {
    const mig = migFromPath(req.params);
    const body: unknown = req.body;
    const urls = isRecord(body) ? body.instances : undefined;
    if (!Array.isArray(urls) || urls.length === 0) {
      throw new FakeComputeError(400, "Required field 'instances' not specified", 'required');
    }
    const skip = isRecord(body) && body.skipInstancesOnValidationError === true;
    const chosen: FakeManagedInstance[] = [];
    let refusal: OperationFailure | undefined;
    for (const [index, url] of urls.entries()) {
      const parsed = typeof url === 'string' ? parseInstanceUrl(url) : undefined;
      if (!parsed)
        throw badRequest(`Invalid value for field 'resource.instances[${index}]': '${String(url)}'.`);
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
        member.zone === parsed.zone &&
        member.currentAction !== 'DELETING' &&
        member.currentAction !== 'ABANDONING' &&
        !chosen.includes(member);
      if (usable) chosen.push(member);
      else if (!skip) {
        // Without skipInstancesOnValidationError the *operation* fails and nothing is deleted
        // (https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroupManagers/deleteInstances).
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
    const op = state.repeatedRequest(mig, requestIdOf(req), () => {
      const started = state.createOperation(mig, 'deleteInstances', refusal);
      if (!started.failure) for (const member of chosen) state.startDeletion(mig, member);
      return started;
    });
    res.json(renderOperation(op));
  });

  router.get(`${base}/autoscalers/:autoscaler`, (req, res) => {
    const { project = '', scope = '', location = '', autoscaler = '' } = req.params;
    const projectRecord = state.projectOrThrow(project);
    const mig = state
      .allMigs()
      .find(
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

  // `wait` may answer before the operation is DONE, so here it counts as one poll like get.
  type OperationParams = { project: string; scope: string; location: string; operation: string };
  const pollOperation = (req: Request<OperationParams>, res: Response): void => {
    const { project, scope, location, operation } = req.params;
    const op = state.findOperation(state.projectOrThrow(project), scope, location, operation);
    if (!op) throw notFound(`projects/${project}/${scope}/${location}/operations/${operation}`);
    if (op.pollsLeft > 0) op.pollsLeft -= 1;
    res.json(renderOperation(op));
  };
  router.get(`${base}/operations/:operation`, pollOperation);
  router.post(`${base}/operations/:operation/wait`, pollOperation);

  router.use((req: Request) => {
    throw notFound(req.path);
  });
  return router;
}
