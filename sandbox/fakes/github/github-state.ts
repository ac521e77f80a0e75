import crypto from 'node:crypto';

/** Where runners live: an organization, a repository or an enterprise (the three prefixes of the runner API). */
export type RunnerScope =
  | { kind: 'org'; org: string }
  | { kind: 'repo'; owner: string; repo: string }
  | { kind: 'enterprise'; enterprise: string };

export type PermissionLevel = 'read' | 'write';
export type Permissions = Record<string, PermissionLevel>;

/** A runner label as the REST API shows it. */
export interface RunnerLabel {
  id: number;
  name: string;
  type: 'read-only' | 'custom';
}

/** A runner as `GET …/actions/runners/{id}` returns it. */
export interface FakeRunner {
  id: number;
  name: string;
  os: string;
  status: 'online' | 'offline';
  busy: boolean;
  ephemeral: boolean;
  labels: RunnerLabel[];
  runner_group_id: number;
  /**
   * The actions/runner version the runner connected with, e.g. `2.323.0`; null until it has connected once
   * (GitHub's runner object: https://docs.github.com/rest/actions/self-hosted-runners#get-a-self-hosted-runner-for-an-organization).
   */
  version: string | null;
}

/** The version a runner connects with when whoever starts it names none. */
export const DEFAULT_RUNNER_VERSION = '2.330.0';

/** What a connecting runner may report as its version: a release version such as `2.330.0`. */
export const RUNNER_VERSION_PATTERN = /^\d{1,4}\.\d{1,4}\.\d{1,4}$/;

/** What a test says about a runner it adds directly. */
export interface NewRunner {
  name: string;
  status?: 'online' | 'offline';
  busy?: boolean;
  ephemeral?: boolean;
  /** Default `['self-hosted']`. */
  labels?: string[];
  runnerGroupId?: number;
  os?: string;
  /** The version it connected with; default {@link DEFAULT_RUNNER_VERSION} when online, null when offline. */
  version?: string | null;
}

export interface RunnerGroup {
  id: number;
  name: string;
}

export interface InstallationOptions {
  id?: number;
  /** Login of the organization or user the App is installed on. */
  account: string;
  /** Default: `Organization` when the account was added with `addOrg`, else `User`. */
  targetType?: 'Organization' | 'User';
  /** `owner/name` of the selected repositories; undefined means all of the account's repositories. */
  repositories?: string[];
  /** Default `{organization_self_hosted_runners: 'write', administration: 'write', metadata: 'read'}`. */
  permissions?: Permissions;
}

export interface Installation {
  id: number;
  account: { login: string; id: number; type: 'Organization' | 'User' };
  permissions: Permissions;
  /** Lower-cased `owner/name`; undefined means all of the account's repositories. */
  repositories: string[] | undefined;
}

/** A registration or remove token the fake handed out. */
export interface IssuedRunnerToken {
  kind: 'registration' | 'remove';
  scope: RunnerScope;
  token: string;
  expires_at: string;
}

/** An installation access token the fake handed out, with what the caller asked for. */
export interface IssuedInstallationToken {
  installationId: number;
  token: string;
  expires_at: string;
  /** The optional body fields of the access_tokens request, as sent. */
  requested: { permissions?: Permissions; repositories?: string[]; repository_ids?: number[] };
  /** What the token may do: the requested subset, or all of the installation's permissions. */
  permissions: Permissions;
  /** Lower-cased `owner/name` the token reaches; undefined means all of the account's repositories. */
  repositories: string[] | undefined;
}

/** A JIT configuration the fake handed out. Its secret stays inside the fake. */
export interface IssuedJitConfig {
  runnerId: number;
  name: string;
  scope: RunnerScope;
  used: boolean;
}

/** Everything the fake issued, in order. Tests assert on these. */
export interface IssuedTokens {
  runner: IssuedRunnerToken[];
  installation: IssuedInstallationToken[];
  jitConfigs: IssuedJitConfig[];
}

export const DEFAULT_INSTALLATION_PERMISSIONS: Permissions = {
  organization_self_hosted_runners: 'write',
  administration: 'write',
  metadata: 'read',
};

// GitHub's default labels cannot be removed from a runner, so the API marks them read-only.
const READ_ONLY_LABELS = new Set(['self-hosted', 'linux', 'windows', 'macos', 'x64', 'arm', 'arm64']);
const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomString(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += alphabet[crypto.randomInt(alphabet.length)];
  return out;
}

/** Logins and repository names are case-insensitive on GitHub; the fake keys everything lower-case. */
export function scopeKey(scope: RunnerScope): string {
  switch (scope.kind) {
    case 'org':
      return `org:${scope.org.toLowerCase()}`;
    case 'repo':
      return `repo:${scope.owner.toLowerCase()}/${scope.repo.toLowerCase()}`;
    case 'enterprise':
      return `enterprise:${scope.enterprise.toLowerCase()}`;
  }
}

/** A scope's REST path prefix without the leading slash (`orgs/acme`, `repos/o/r`, `enterprises/e`). */
export function apiPathOf(scope: RunnerScope): string {
  switch (scope.kind) {
    case 'org':
      return `orgs/${scope.org}`;
    case 'repo':
      return `repos/${scope.owner}/${scope.repo}`;
    case 'enterprise':
      return `enterprises/${scope.enterprise}`;
  }
}

/** The URL a runner is configured with (`config.sh --url`). */
export function gitHubUrlOf(scope: RunnerScope): string {
  switch (scope.kind) {
    case 'org':
      return `https://github.com/${scope.org}`;
    case 'repo':
      return `https://github.com/${scope.owner}/${scope.repo}`;
    case 'enterprise':
      return `https://github.com/enterprises/${scope.enterprise}`;
  }
}

/** Reverses {@link gitHubUrlOf}; undefined when the URL is not a runner URL. */
export function scopeFromGitHubUrl(url: string): RunnerScope | undefined {
  const match = /^https:\/\/github\.com\/([^/]+)(?:\/([^/]+))?\/?$/.exec(url);
  if (!match?.[1]) return undefined;
  if (match[1] === 'enterprises') return match[2] ? { kind: 'enterprise', enterprise: match[2] } : undefined;
  return match[2] ? { kind: 'repo', owner: match[1], repo: match[2] } : { kind: 'org', org: match[1] };
}

interface StoredRunner extends FakeRunner {
  scopeKey: string;
}

/**
 * The fake's world: accounts, installations, runners and every credential it issued. It holds no HTTP
 * concerns, so the route modules stay about request and response shapes.
 */
export class GitHubState {
  readonly orgs = new Map<string, { login: string; id: number; groups: RunnerGroup[] }>();
  readonly enterprises = new Map<string, { slug: string; id: number; groups: RunnerGroup[] }>();
  readonly repos = new Map<string, { owner: string; name: string; id: number }>();
  /** Former full names (lower case) of renamed repositories → repository id: GitHub redirects them. */
  readonly formerRepoNames = new Map<string, number>();
  readonly installations = new Map<number, Installation>();
  readonly pats = new Map<string, { scopes: string[]; userId: number }>();
  readonly issued: IssuedTokens = { runner: [], installation: [], jitConfigs: [] };
  /** Seconds added to the real clock: lets a test skew the fake's clock or age its tokens. */
  clockOffsetSeconds = 0;

  private readonly runners = new Map<number, StoredRunner>();
  private readonly runnerListeners = new Set<() => void>();
  private readonly runnerTokens = new Map<string, IssuedRunnerToken>();
  private readonly installationTokens = new Map<string, IssuedInstallationToken>();
  /** JIT configs by their secret. */
  private readonly jit = new Map<string, IssuedJitConfig>();
  private readonly labelIds = new Map<string, number>();
  private readonly accountIds = new Map<string, number>();
  private nextId = { runner: 1, installation: 1, account: 100, repo: 1000, label: 1 };

  constructor(readonly tokenTtlSeconds: number) {}

  /** Milliseconds since the epoch on the fake's (possibly skewed) clock. */
  now(): number {
    return Date.now() + this.clockOffsetSeconds * 1000;
  }

  private accountId(login: string): number {
    const key = login.toLowerCase();
    let id = this.accountIds.get(key);
    if (id === undefined) {
      id = this.nextId.account++;
      this.accountIds.set(key, id);
    }
    return id;
  }

  private static groupsFrom(names: string[] = []): RunnerGroup[] {
    // Every org and enterprise has the `Default` group with id 1 (the spec example's id).
    return [{ id: 1, name: 'Default' }, ...names.map((name, i) => ({ id: i + 2, name }))];
  }

  addOrg(login: string, options: { runnerGroups?: string[] } = {}): void {
    const groups = GitHubState.groupsFrom(options.runnerGroups);
    this.orgs.set(login.toLowerCase(), { login, id: this.accountId(login), groups });
  }

  addEnterprise(slug: string, options: { runnerGroups?: string[] } = {}): void {
    const groups = GitHubState.groupsFrom(options.runnerGroups);
    this.enterprises.set(slug.toLowerCase(), { slug, id: this.nextId.account++, groups });
  }

  addRepo(fullName: string): void {
    const [owner, name, ...rest] = fullName.split('/');
    if (!owner || !name || rest.length > 0) throw new Error(`addRepo wants 'owner/name', got '${fullName}'`);
    this.repos.set(fullName.toLowerCase(), { owner, name, id: this.nextId.repo++ });
  }

  /**
   * Renames a repository (`owner/name` → `owner/new-name`, or to another owner: a transfer), keeping its id
   * and runners. Requests for the old name are then redirected, as GitHub does.
   */
  renameRepo(from: string, to: string): void {
    const repo = this.repos.get(from.toLowerCase());
    const [owner, name, ...rest] = to.split('/');
    if (!repo) throw new Error(`renameRepo: no repository '${from}'`);
    if (!owner || !name || rest.length > 0) throw new Error(`renameRepo wants 'owner/name', got '${to}'`);
    const oldKey = scopeKey({ kind: 'repo', owner: repo.owner, repo: repo.name });
    const newKey = scopeKey({ kind: 'repo', owner, repo: name });
    for (const runner of this.runners.values()) if (runner.scopeKey === oldKey) runner.scopeKey = newKey;
    this.repos.delete(from.toLowerCase());
    this.repos.set(to.toLowerCase(), { owner, name, id: repo.id });
    this.formerRepoNames.set(from.toLowerCase(), repo.id);
  }

  /** The repository with this id, whatever it is called now. */
  repoById(id: number): { owner: string; name: string; id: number } | undefined {
    return [...this.repos.values()].find((repo) => repo.id === id);
  }

  addInstallation(options: InstallationOptions): number {
    const id = options.id ?? this.nextId.installation++;
    const type =
      options.targetType ?? (this.orgs.has(options.account.toLowerCase()) ? 'Organization' : 'User');
    this.installations.set(id, {
      id,
      account: { login: options.account, id: this.accountId(options.account), type },
      permissions: { ...(options.permissions ?? DEFAULT_INSTALLATION_PERMISSIONS) },
      repositories: options.repositories?.map((r) => r.toLowerCase()),
    });
    return id;
  }

  addPat(token: string, options: { scopes?: string[] } = {}): void {
    this.pats.set(token, {
      scopes: options.scopes ?? ['repo', 'admin:org', 'manage_runners:enterprise'],
      userId: 1,
    });
  }

  /** Repositories (lower-cased `owner/name`) an installation, or a token limited to `selection`, reaches. */
  reposOf(installation: Installation, selection: string[] | undefined = installation.repositories): string[] {
    if (selection) return selection.filter((key) => this.repos.has(key));
    const owner = installation.account.login.toLowerCase();
    return [...this.repos.keys()].filter((key) => key.startsWith(`${owner}/`));
  }

  scopeExists(scope: RunnerScope): boolean {
    switch (scope.kind) {
      case 'org':
        return this.orgs.has(scope.org.toLowerCase());
      case 'repo':
        return this.repos.has(`${scope.owner}/${scope.repo}`.toLowerCase());
      case 'enterprise':
        return this.enterprises.has(scope.enterprise.toLowerCase());
    }
  }

  /** Runner groups of a scope. Repositories have only the implicit Default group. */
  groupsOf(scope: RunnerScope): RunnerGroup[] {
    if (scope.kind === 'org') return this.orgs.get(scope.org.toLowerCase())?.groups ?? [];
    if (scope.kind === 'enterprise') {
      return this.enterprises.get(scope.enterprise.toLowerCase())?.groups ?? [];
    }
    return [{ id: 1, name: 'Default' }];
  }

  // --- rate limit --------------------------------------------------------------------------------

  /**
   * One budget for all credentials: tests drive one credential at a time, and a global budget keeps
   * `setRateLimitRemaining` simple. It refills when the reset time passes, as GitHub's hourly window does.
   */
  private readonly rateLimit = { limit: 5000, used: 0, resetSeconds: 0 };

  private refillRateLimit(): void {
    const nowSeconds = Math.floor(this.now() / 1000);
    if (nowSeconds >= this.rateLimit.resetSeconds) {
      this.rateLimit.used = 0;
      this.rateLimit.resetSeconds = nowSeconds + 3600;
    }
  }

  /** Counts one request; false when the budget was already spent (the request must be refused). */
  consumeRateLimit(): boolean {
    this.refillRateLimit();
    if (this.rateLimit.used >= this.rateLimit.limit) return false;
    this.rateLimit.used += 1;
    return true;
  }

  setRateLimitRemaining(remaining: number, resetInSeconds = 3600): void {
    this.rateLimit.used = this.rateLimit.limit - remaining;
    this.rateLimit.resetSeconds = Math.floor(this.now() / 1000) + resetInSeconds;
  }

  rateLimitHeaders(): Record<string, string> {
    this.refillRateLimit();
    const { limit, used, resetSeconds } = this.rateLimit;
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(0, limit - used)),
      'x-ratelimit-used': String(used),
      'x-ratelimit-reset': String(resetSeconds),
      'x-ratelimit-resource': 'core',
    };
  }

  // --- runners -----------------------------------------------------------------------------------

  private label(name: string): RunnerLabel {
    const key = name.toLowerCase();
    let id = this.labelIds.get(key);
    if (id === undefined) {
      id = this.nextId.label++;
      this.labelIds.set(key, id);
    }
    return { id, name, type: READ_ONLY_LABELS.has(key) ? 'read-only' : 'custom' };
  }

  private static copy({ scopeKey: _key, ...runner }: StoredRunner): FakeRunner {
    return { ...runner, labels: runner.labels.map((l) => ({ ...l })) };
  }

  /** Called after a runner is added, changed or removed (jobs are handed to runners that become idle). */
  onRunnersChanged(listener: () => void): void {
    this.runnerListeners.add(listener);
  }

  private runnersChanged(): void {
    for (const listener of this.runnerListeners) listener();
  }

  listRunners(scope: RunnerScope): FakeRunner[] {
    const key = scopeKey(scope);
    return [...this.runners.values()].filter((r) => r.scopeKey === key).map((r) => GitHubState.copy(r));
  }

  findRunner(scope: RunnerScope, id: number): FakeRunner | undefined {
    const runner = this.runners.get(id);
    return runner && runner.scopeKey === scopeKey(scope) ? GitHubState.copy(runner) : undefined;
  }

  runnerById(id: number): FakeRunner | undefined {
    const runner = this.runners.get(id);
    return runner && GitHubState.copy(runner);
  }

  findRunnerByName(scope: RunnerScope, name: string): FakeRunner | undefined {
    const key = scopeKey(scope);
    const lower = name.toLowerCase();
    const runner = [...this.runners.values()].find(
      (r) => r.scopeKey === key && r.name.toLowerCase() === lower,
    );
    return runner && GitHubState.copy(runner);
  }

  addRunner(scope: RunnerScope, spec: NewRunner): FakeRunner {
    const runner: StoredRunner = {
      id: this.nextId.runner++,
      name: spec.name,
      os: spec.os ?? 'linux',
      status: spec.status ?? 'online',
      busy: spec.busy ?? false,
      ephemeral: spec.ephemeral ?? false,
      labels: (spec.labels ?? ['self-hosted']).map((l) => this.label(l)),
      runner_group_id: spec.runnerGroupId ?? 1,
      version:
        spec.version !== undefined ? spec.version : spec.status === 'offline' ? null : DEFAULT_RUNNER_VERSION,
      scopeKey: scopeKey(scope),
    };
    this.runners.set(runner.id, runner);
    this.runnersChanged();
    return GitHubState.copy(runner);
  }

  /** Changes a runner's status, busy flag or version (a stand-in runner going online, taking a job…). */
  setRunner(
    id: number,
    patch: { status?: 'online' | 'offline'; busy?: boolean; version?: string | null },
  ): FakeRunner {
    const runner = this.runners.get(id);
    if (!runner) throw new Error(`no runner with id ${id}`);
    Object.assign(runner, patch);
    this.runnersChanged();
    return GitHubState.copy(runner);
  }

  deleteRunner(id: number): boolean {
    const deleted = this.runners.delete(id);
    if (deleted) this.runnersChanged();
    return deleted;
  }

  // --- tokens ------------------------------------------------------------------------------------

  private expiresAt(ttlSeconds: number): string {
    return new Date(this.now() + ttlSeconds * 1000).toISOString();
  }

  private isExpired(expiresAt: string): boolean {
    return Date.parse(expiresAt) <= this.now();
  }

  /** A registration or remove token: 29 upper-case alphanumerics, valid for one hour (reference §1.3). */
  issueRunnerToken(kind: 'registration' | 'remove', scope: RunnerScope): IssuedRunnerToken {
    const issued = { kind, scope, token: randomString(TOKEN_ALPHABET, 29), expires_at: this.expiresAt(3600) };
    this.runnerTokens.set(issued.token, issued);
    this.issued.runner.push(issued);
    return issued;
  }

  /** The token if it is known, unexpired, of `kind` and for `scope`; otherwise why not. */
  checkRunnerToken(token: string, kind: 'registration' | 'remove', scope: RunnerScope): string | undefined {
    const issued = this.runnerTokens.get(token);
    if (!issued || issued.kind !== kind) return `unknown ${kind} token`;
    if (this.isExpired(issued.expires_at)) return `${kind} token expired at ${issued.expires_at}`;
    if (scopeKey(issued.scope) !== scopeKey(scope)) {
      return `${kind} token is for ${gitHubUrlOf(issued.scope)}`;
    }
    return undefined;
  }

  issueInstallationToken(
    installation: Installation,
    grant: Pick<IssuedInstallationToken, 'requested' | 'permissions' | 'repositories'>,
  ): IssuedInstallationToken {
    // Not a fixed length: GitHub is rolling out longer, stateless `ghs_` tokens (reference §1.4).
    const token = `ghs_${randomString(BASE62, 36 + crypto.randomInt(24))}`;
    const expires_at = this.expiresAt(this.tokenTtlSeconds).replace(/\.\d{3}Z$/, 'Z');
    const issued = { installationId: installation.id, token, expires_at, ...grant };
    this.installationTokens.set(token, issued);
    this.issued.installation.push(issued);
    return issued;
  }

  /** The installation token's record, or undefined when it is unknown or expired. */
  installationToken(token: string): IssuedInstallationToken | undefined {
    const issued = this.installationTokens.get(token);
    return issued && !this.isExpired(issued.expires_at) ? issued : undefined;
  }

  /** Remembers a JIT runner's secret; the secret is what makes the encoded config unguessable. */
  issueJitConfig(runner: FakeRunner, scope: RunnerScope): string {
    const secret = crypto.randomBytes(32).toString('base64url');
    const record: IssuedJitConfig = { runnerId: runner.id, name: runner.name, scope, used: false };
    this.jit.set(secret, record);
    this.issued.jitConfigs.push(record);
    return secret;
  }

  /** Marks a JIT config used; returns its record, or why it cannot be used. */
  redeemJitConfig(secret: string): { record: IssuedJitConfig } | { status: number; message: string } {
    const record = this.jit.get(secret);
    if (!record) return { status: 401, message: 'Unknown JIT configuration' };
    if (record.used) return { status: 409, message: 'JIT configuration was already used' };
    if (!this.runners.has(record.runnerId)) return { status: 404, message: 'The runner was deleted' };
    record.used = true;
    return { record };
  }
}
