import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import { looksLikeJwt, verifyAppJwt } from './app-jwt.js';
import type { AppIdentity } from './app-jwt.js';
import { GitHubError, RATE_LIMIT_DOCS_URL } from './github-error.js';
import type {
  GitHubState,
  Installation,
  IssuedInstallationToken,
  Permissions,
  RunnerScope,
} from './github-state.js';
import { apiPathOf } from './github-state.js';
import { encodeJitConfig } from './jit-config.js';
import type { ActionsJobs } from './actions-jobs.js';
import type { FakeHookDelivery, WebhookDeliveries } from './webhook-deliveries.js';

/** Who is calling, as the Authorization header says. */
type Credential =
  | { kind: 'none' }
  | { kind: 'app' }
  | { kind: 'installation'; token: IssuedInstallationToken }
  | { kind: 'pat'; userId: number; scopes: string[] };

const NOT_ACCESSIBLE = 'Resource not accessible by integration';
const UNDECODABLE = 'A JSON web token could not be decoded';
const RUNNER_DOCS = 'https://docs.github.com/rest/actions/self-hosted-runners';

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const baseUrlOf = (req: Request): string => `${req.protocol}://${req.get('host') ?? ''}`;

function authenticate(state: GitHubState, app: AppIdentity, header: string | undefined): Credential {
  if (header === undefined) return { kind: 'none' };
  const match = /^(?:bearer|token)\s+(\S+)$/i.exec(header.trim());
  if (!match?.[1]) throw new GitHubError(401, 'Bad credentials');
  const credential = match[1];
  if (looksLikeJwt(credential)) {
    verifyAppJwt(credential, app, Math.floor(state.now() / 1000));
    return { kind: 'app' };
  }
  const token = state.installationToken(credential);
  if (token) return { kind: 'installation', token };
  const pat = state.pats.get(credential);
  if (pat) return { kind: 'pat', ...pat };
  throw new GitHubError(401, 'Bad credentials');
}

const credentialOf = (res: Response): Credential => res.locals.credential as Credential;

/** `/app/…` and `…/installation` routes take only the App JWT (auth-app sends `bearer <JWT>` there). */
function requireApp(res: Response): void {
  if (credentialOf(res).kind !== 'app') throw new GitHubError(401, UNDECODABLE);
}

/**
 * Whether the caller may use a scope's runner endpoints. A PAT may do everything. An installation token
 * needs `organization_self_hosted_runners` (orgs) or `administration` (repos), `write` to change anything,
 * and cannot reach enterprises at all. A repository outside the token's selection is a 404, as GitHub hides
 * what a token cannot see; an org the installation is not on is a 403.
 */
function authorizeRunners(
  state: GitHubState,
  credential: Credential,
  scope: RunnerScope,
  write: boolean,
): void {
  if (credential.kind === 'none') throw new GitHubError(401, 'Requires authentication');
  if (!state.scopeExists(scope)) throw new GitHubError(404, 'Not Found');
  if (credential.kind === 'pat') return;
  if (credential.kind === 'app' || scope.kind === 'enterprise') throw new GitHubError(403, NOT_ACCESSIBLE);
  const { token } = credential;
  const installation = state.installations.get(token.installationId);
  if (!installation) throw new GitHubError(403, NOT_ACCESSIBLE);
  if (scope.kind === 'repo') {
    const reachable = state.reposOf(installation, token.repositories);
    if (!reachable.includes(`${scope.owner}/${scope.repo}`.toLowerCase())) {
      throw new GitHubError(404, 'Not Found');
    }
  } else if (installation.account.login.toLowerCase() !== scope.org.toLowerCase()) {
    throw new GitHubError(403, NOT_ACCESSIBLE);
  }
  const level =
    token.permissions[scope.kind === 'repo' ? 'administration' : 'organization_self_hosted_runners'];
  if (level === undefined || (write && level !== 'write')) throw new GitHubError(403, NOT_ACCESSIBLE);
}

/** Slices a list by `per_page` (default 30, max 100) and `page`, with GitHub's `Link` header. */
function paginate<T>(items: T[], req: Request, res: Response): T[] {
  const url = new URL(req.originalUrl, baseUrlOf(req));
  const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page')) || 30));
  const page = Math.max(1, Number(url.searchParams.get('page')) || 1);
  const lastPage = Math.max(1, Math.ceil(items.length / perPage));
  const pageUrl = (n: number): string => {
    url.searchParams.set('per_page', String(perPage));
    url.searchParams.set('page', String(n));
    return url.href;
  };
  const links: string[] = [];
  if (page > 1) links.push(`<${pageUrl(page - 1)}>; rel="prev"`, `<${pageUrl(1)}>; rel="first"`);
  if (page < lastPage) links.push(`<${pageUrl(page + 1)}>; rel="next"`, `<${pageUrl(lastPage)}>; rel="last"`);
  if (links.length > 0) res.set('link', links.join(', '));
  return items.slice((page - 1) * perPage, page * perPage);
}

function installationBody(state: GitHubState, app: AppIdentity, inst: Installation, base: string): object {
  return {
    id: inst.id,
    account: { ...inst.account },
    app_id: app.id,
    app_slug: 'fake-runner-app',
    client_id: app.clientId,
    target_id: inst.account.id,
    target_type: inst.account.type,
    repository_selection: inst.repositories ? 'selected' : 'all',
    access_tokens_url: `${base}/app/installations/${inst.id}/access_tokens`,
    repositories_url: `${base}/installation/repositories`,
    html_url: `https://github.com/organizations/${inst.account.login}/settings/installations/${inst.id}`,
    permissions: { ...inst.permissions },
    events: [],
    single_file_name: null,
    created_at: new Date(state.now()).toISOString(),
    updated_at: new Date(state.now()).toISOString(),
    suspended_at: null,
    suspended_by: null,
  };
}

/** Checks the optional body of `POST /app/installations/{id}/access_tokens` and issues the token. */
function createInstallationToken(state: GitHubState, inst: Installation, body: unknown): object {
  const input = isObject(body) ? body : {};
  const requested: IssuedInstallationToken['requested'] = {};
  let permissions: Permissions = { ...inst.permissions };
  if (input.permissions !== undefined) {
    if (!isObject(input.permissions)) {
      throw new GitHubError(422, 'Invalid input: permissions must be an object');
    }
    requested.permissions = { ...input.permissions } as Permissions;
    for (const [name, level] of Object.entries(input.permissions)) {
      const granted = inst.permissions[name];
      if ((level !== 'read' && level !== 'write') || !granted || (level === 'write' && granted !== 'write')) {
        throw new GitHubError(422, 'The permissions requested are not granted to this installation.');
      }
    }
    permissions = { ...requested.permissions };
  }

  const available = state.reposOf(inst);
  let selection: string[] | undefined;
  const notAccessible =
    'There is at least one repository that does not exist or is not accessible to the parent installation.';
  if (input.repositories !== undefined) {
    if (!Array.isArray(input.repositories)) {
      throw new GitHubError(422, 'Invalid input: repositories must be an array');
    }
    requested.repositories = input.repositories.map(String);
    // Names only, without the owner: an installation lives on one account.
    selection = requested.repositories.map((name) => `${inst.account.login}/${name}`.toLowerCase());
  }
  if (input.repository_ids !== undefined) {
    if (!Array.isArray(input.repository_ids)) {
      throw new GitHubError(422, 'Invalid input: repository_ids must be an array');
    }
    requested.repository_ids = input.repository_ids.map(Number);
    const byId = new Map([...state.repos].map(([key, repo]) => [repo.id, key]));
    selection = [...(selection ?? []), ...requested.repository_ids.map((id) => byId.get(id) ?? `#${id}`)];
  }
  if (selection?.some((key) => !available.includes(key))) throw new GitHubError(422, notAccessible);

  const repositories = selection ?? (inst.repositories && available);
  const issued = state.issueInstallationToken(inst, { requested, permissions, repositories });
  return {
    token: issued.token,
    expires_at: issued.expires_at,
    permissions: issued.permissions,
    repository_selection: repositories ? 'selected' : 'all',
    ...(repositories && {
      repositories: repositories.map((key) => {
        const repo = state.repos.get(key);
        return { id: repo?.id, name: repo?.name, full_name: `${repo?.owner}/${repo?.name}` };
      }),
    }),
  };
}

type ScopeHandler = (req: Request, res: Response, scope: RunnerScope) => void;
const SCOPE_PREFIXES = {
  org: '/orgs/:org',
  repo: '/repos/:owner/:repo',
  enterprise: '/enterprises/:enterprise',
} as const;

function scopeFromParams(kind: RunnerScope['kind'], params: Record<string, string>): RunnerScope {
  if (kind === 'org') return { kind, org: params.org ?? '' };
  if (kind === 'repo') return { kind, owner: params.owner ?? '', repo: params.repo ?? '' };
  return { kind, enterprise: params.enterprise ?? '' };
}

/** Validates the generate-jitconfig body (reference §1.3), answering 422 the way GitHub words it. */
function parseJitRequest(body: unknown): {
  name: string;
  groupId: number;
  labels: string[];
  workFolder: string;
} {
  const input = isObject(body) ? body : {};
  for (const key of ['name', 'runner_group_id', 'labels']) {
    if (input[key] === undefined) {
      throw new GitHubError(422, `Invalid input: object is missing required key: ${key}`);
    }
  }
  const { name, runner_group_id: groupId, labels, work_folder: workFolder = '_work' } = input;
  if (typeof name !== 'string' || name === '') {
    throw new GitHubError(422, 'Invalid input: name must be a non-empty string');
  }
  if (!Number.isInteger(groupId)) {
    throw new GitHubError(422, 'Invalid input: runner_group_id must be an integer');
  }
  if (
    !Array.isArray(labels) ||
    labels.length < 1 ||
    labels.length > 100 ||
    labels.some((l) => typeof l !== 'string')
  ) {
    throw new GitHubError(422, 'Invalid input: labels must be an array of 1 to 100 strings');
  }
  if (typeof workFolder !== 'string') {
    throw new GitHubError(422, 'Invalid input: work_folder must be a string');
  }
  return { name, groupId: groupId as number, labels: labels as string[], workFolder };
}

/**
 * The GitHub REST routes: authentication (PAT, installation token, App JWT), the rate-limit budget and
 * headers, the App installation endpoints and the self-hosted runner endpoints of all three scopes.
 */
export function createRestRouter(
  state: GitHubState,
  app: AppIdentity,
  actions: { deliveries: WebhookDeliveries; jobs: ActionsJobs },
): Router {
  const router = express.Router();

  router.use((req: Request, res: Response, next: NextFunction) => {
    // The Date header follows the fake's clock: auth-app reads it to correct a skewed JWT.
    res.set('date', new Date(state.now()).toUTCString()).set(state.rateLimitHeaders());
    const credential = authenticate(state, app, req.get('authorization'));
    if (credential.kind !== 'none') {
      if (!state.consumeRateLimit()) {
        const who =
          credential.kind === 'installation'
            ? `installation ID ${credential.token.installationId}`
            : credential.kind === 'pat'
              ? `user ID ${credential.userId}`
              : `app ID ${app.id}`;
        throw new GitHubError(403, `API rate limit exceeded for ${who}.`, RATE_LIMIT_DOCS_URL);
      }
      res.set(state.rateLimitHeaders());
      if (credential.kind === 'pat') res.set('x-oauth-scopes', credential.scopes.join(', '));
    }
    res.locals.credential = credential;
    next();
  });

  // --- Renamed and transferred repositories -------------------------------------------------------

  // A request for a repository's former name is redirected to `/repositories/{id}/…`: 301 for GET and
  // HEAD, 307 otherwise, so a client that follows it repeats the same method and body.
  // https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#follow-redirects
  router.use('/repos/:owner/:repo', (req, res, next) => {
    const id = state.formerRepoNames.get(`${req.params.owner}/${req.params.repo}`.toLowerCase());
    if (id === undefined || state.repoById(id) === undefined) {
      next();
      return;
    }
    const rest = req.url === '/' ? '' : req.url;
    const location = `${baseUrlOf(req)}/repositories/${id}${rest}`;
    const permanent = req.method === 'GET' || req.method === 'HEAD';
    res
      .status(permanent ? 301 : 307)
      .set('location', location)
      .json({
        message: permanent ? 'Moved Permanently' : 'Temporary Redirect',
        url: location,
        documentation_url: 'https://docs.github.com/v3/#http-redirects',
      });
  });
  // `/repositories/{id}/…` serves the repository's routes under its current name.
  router.use((req, _res, next) => {
    const match = /^\/repositories\/(\d+)(\/.*)?$/.exec(req.url);
    const repo = match ? state.repoById(Number(match[1])) : undefined;
    if (match && !repo) throw new GitHubError(404, 'Not Found');
    if (match && repo) req.url = `/repos/${repo.owner}/${repo.name}${match[2] ?? ''}`;
    next();
  });

  // --- App and installations (JWT) ----------------------------------------------------------------

  router.get('/app', (_req, res) => {
    requireApp(res);
    res.json({ id: app.id, client_id: app.clientId, slug: 'fake-runner-app', name: 'Fake runner app' });
  });

  const installation = (id: string | undefined): Installation => {
    const found = state.installations.get(Number(id));
    if (!found) throw new GitHubError(404, 'Not Found');
    return found;
  };
  router.get('/app/installations/:id', (req, res) => {
    requireApp(res);
    res.json(installationBody(state, app, installation(req.params.id), baseUrlOf(req)));
  });
  router.post('/app/installations/:id/access_tokens', (req, res) => {
    requireApp(res);
    res.status(201).json(createInstallationToken(state, installation(req.params.id), req.body));
  });

  const sendInstallationOf = (req: Request, res: Response, login: string, repo?: string): void => {
    requireApp(res);
    if (repo !== undefined && !state.repos.has(`${login}/${repo}`.toLowerCase())) {
      throw new GitHubError(404, 'Not Found');
    }
    const found = [...state.installations.values()].find(
      (inst) =>
        inst.account.login.toLowerCase() === login.toLowerCase() &&
        (repo === undefined || state.reposOf(inst).includes(`${login}/${repo}`.toLowerCase())),
    );
    if (!found) throw new GitHubError(404, 'Not Found');
    res.json(installationBody(state, app, found, baseUrlOf(req)));
  };
  router.get('/orgs/:org/installation', (req, res) => sendInstallationOf(req, res, req.params.org));
  router.get('/users/:user/installation', (req, res) => sendInstallationOf(req, res, req.params.user));
  router.get('/repos/:owner/:repo/installation', (req, res) =>
    sendInstallationOf(req, res, req.params.owner, req.params.repo),
  );

  // --- The App's webhook deliveries (JWT) ---------------------------------------------------------
  // https://docs.github.com/rest/apps/webhooks

  /** A delivery as the list shows it: without `request` and `response`. */
  const listItem = ({ request: _q, response: _r, dropped: _d, ...item }: FakeHookDelivery) => item;
  const detail = ({ dropped: _d, ...item }: FakeHookDelivery) => item;
  const delivery = (id: string | undefined): FakeHookDelivery => {
    const found = actions.deliveries.find(Number(id));
    if (!found || found.status === 'pending') throw new GitHubError(404, 'Not Found');
    return found;
  };

  router.get('/app/hook/deliveries', (req, res) => {
    requireApp(res);
    const perPage = Math.min(100, Math.max(1, Number(req.query.per_page) || 30));
    const cursor = typeof req.query.cursor === 'string' ? /^v1_(\d+)$/.exec(req.query.cursor) : null;
    if (req.query.cursor !== undefined && !cursor) throw new GitHubError(422, 'Invalid cursor');
    const newestFirst = actions.deliveries.log.filter((d) => d.status !== 'pending').reverse();
    const from = cursor ? newestFirst.findIndex((d) => d.id <= Number(cursor[1])) : 0;
    const page = from === -1 ? [] : newestFirst.slice(from, from + perPage);
    const next = from === -1 ? undefined : newestFirst[from + perPage];
    if (next) {
      const url = new URL('/app/hook/deliveries', baseUrlOf(req));
      url.searchParams.set('per_page', String(perPage));
      url.searchParams.set('cursor', `v1_${next.id}`);
      res.set('link', `<${url.href}>; rel="next"`);
    }
    res.json(page.map(listItem));
  });

  router.get('/app/hook/deliveries/:id', (req, res) => {
    requireApp(res);
    res.json(detail(delivery(req.params.id)));
  });

  router.post('/app/hook/deliveries/:id/attempts', (req, res) => {
    requireApp(res);
    actions.deliveries.redeliver(delivery(req.params.id));
    res.status(202).json({});
  });

  // --- Workflow jobs ------------------------------------------------------------------------------

  router.get('/repos/:owner/:repo/actions/jobs/:job_id', (req, res) => {
    const { owner, repo, job_id: jobId } = req.params;
    const repoKey = `${owner}/${repo}`.toLowerCase();
    const credential = credentialOf(res);
    if (credential.kind === 'none') throw new GitHubError(401, 'Requires authentication');
    if (!state.repos.has(repoKey)) throw new GitHubError(404, 'Not Found');
    if (credential.kind === 'app') throw new GitHubError(403, NOT_ACCESSIBLE);
    if (credential.kind === 'installation') {
      const installation = state.installations.get(credential.token.installationId);
      if (!installation || !state.reposOf(installation, credential.token.repositories).includes(repoKey)) {
        throw new GitHubError(404, 'Not Found');
      }
      if (credential.token.permissions.actions === undefined) throw new GitHubError(403, NOT_ACCESSIBLE);
    }
    const job = actions.jobs.getIn(repoKey, Number(jobId));
    if (!job) throw new GitHubError(404, 'Not Found');
    res.json(job);
  });

  // --- Self-hosted runners, for each of the three scopes -------------------------------------------

  const onEachScope = (
    method: 'get' | 'post' | 'delete',
    suffix: string,
    handler: ScopeHandler,
    kinds: Array<RunnerScope['kind']> = ['org', 'repo', 'enterprise'],
  ): void => {
    for (const kind of kinds) {
      router[method](`${SCOPE_PREFIXES[kind]}${suffix}`, (req: Request, res: Response) => {
        const scope = scopeFromParams(kind, req.params as Record<string, string>);
        authorizeRunners(state, credentialOf(res), scope, method !== 'get');
        handler(req, res, scope);
      });
    }
  };
  const runnerIn = (scope: RunnerScope, id: unknown) => {
    const runner = state.findRunner(scope, Number(id));
    if (!runner) throw new GitHubError(404, 'Not Found');
    return runner;
  };

  for (const kind of ['registration', 'remove'] as const) {
    onEachScope('post', `/actions/runners/${kind}-token`, (_req, res, scope) => {
      const { token, expires_at } = state.issueRunnerToken(kind, scope);
      res.status(201).json({ token, expires_at });
    });
  }

  onEachScope('post', '/actions/runners/generate-jitconfig', (req, res, scope) => {
    const { name, groupId, labels, workFolder } = parseJitRequest(req.body);
    if (!state.groupsOf(scope).some((g) => g.id === groupId)) throw new GitHubError(404, 'Not Found');
    if (state.findRunnerByName(scope, name)) {
      // The reference quotes this message with the name masked as *** by a CI log; GitHub sends the name.
      throw new GitHubError(
        409,
        `Already exists - A runner with the name ${name} already exists.`,
        RUNNER_DOCS,
      );
    }
    const runner = state.addRunner(scope, {
      name,
      labels,
      runnerGroupId: groupId,
      status: 'offline',
      ephemeral: true,
      os: 'unknown',
    });
    const secret = state.issueJitConfig(runner, scope);
    const serverUrl = `${baseUrlOf(req)}/_sandbox`;
    res.status(201).json({
      runner,
      encoded_jit_config: encodeJitConfig({ runner, scope, secret, workFolder, serverUrl }),
    });
  });

  onEachScope('get', '/actions/runners', (req, res, scope) => {
    const name = typeof req.query.name === 'string' ? req.query.name.toLowerCase() : undefined;
    const runners = state
      .listRunners(scope)
      .filter((r) => name === undefined || r.name.toLowerCase() === name);
    res.json({ total_count: runners.length, runners: paginate(runners, req, res) });
  });

  onEachScope('get', '/actions/runners/:id', (req, res, scope) => {
    res.json(runnerIn(scope, req.params.id));
  });

  onEachScope('delete', '/actions/runners/:id', (req, res, scope) => {
    const runner = runnerIn(scope, req.params.id);
    if (runner.busy) {
      throw new GitHubError(
        422,
        `Bad request - Runner "${runner.name}" is still running a job.`,
        RUNNER_DOCS,
      );
    }
    state.deleteRunner(runner.id);
    res.status(204).end();
  });

  // Repositories have no runner groups: their runners belong to the implicit Default group (id 1).
  onEachScope(
    'get',
    '/actions/runner-groups',
    (req, res, scope) => {
      const groups = state.groupsOf(scope).map(({ id, name }) => ({
        id,
        name,
        visibility: 'all',
        default: id === 1,
        runners_url: `${baseUrlOf(req)}/${apiPathOf(scope)}/actions/runner-groups/${id}/runners`,
        inherited: false,
        allows_public_repositories: id === 1,
        restricted_to_workflows: false,
        selected_workflows: [],
      }));
      res.json({ total_count: groups.length, runner_groups: paginate(groups, req, res) });
    },
    ['org', 'enterprise'],
  );

  return router;
}
