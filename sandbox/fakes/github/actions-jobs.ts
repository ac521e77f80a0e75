import crypto from 'node:crypto';
import { GitHubError } from './github-error.js';
import type { FakeRunner, GitHubState, RunnerScope } from './github-state.js';
import type { WebhookDeliveries } from './webhook-deliveries.js';

/** A workflow job as `GET /repos/{owner}/{repo}/actions/jobs/{job_id}` returns it. */
export interface FakeJob {
  id: number;
  run_id: number;
  run_attempt: number;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  name: string;
  workflow_name: string;
  head_branch: string;
  head_sha: string;
  labels: string[];
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  runner_id: number | null;
  runner_name: string | null;
  runner_group_id: number | null;
  runner_group_name: string | null;
  html_url: string;
  steps: never[];
}

/** What a test or the sandbox says about a job it queues. */
export interface NewJob {
  /** `owner/name`; must have been added with `addRepo`. */
  repository: string;
  /** `runs-on` labels. */
  labels: string[];
  name?: string;
  workflowName?: string;
}

interface StoredJob {
  job: FakeJob;
  /** Lower-cased `owner/name`. */
  repoKey: string;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * GitHub Actions' side of self-hosted runners: jobs are queued, handed to any online idle runner whose
 * labels include all of the job's (case-insensitively) in the repository's org or the repository itself,
 * and completed; each change is sent to the App's webhook as a `workflow_job` delivery. An ephemeral
 * runner is removed once its job is done (https://docs.github.com/actions/hosting-your-own-runners).
 */
export class ActionsJobs {
  /** When set, a started job completes by itself (conclusion `success`) after this long. */
  autoCompleteAfterMs: number | undefined;
  private readonly jobs = new Map<number, StoredJob>();
  private nextJobId = 30_000_000_001;
  private nextRunId = 9_000_000_001;
  private assigning = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly state: GitHubState,
    private readonly deliveries: WebhookDeliveries,
  ) {
    state.onRunnersChanged(() => this.assign());
  }

  get(id: number): FakeJob | undefined {
    const stored = this.jobs.get(id);
    return stored && structuredClone(stored.job);
  }

  /** The job in `owner/repo`, or undefined when there is none there. */
  getIn(repoKey: string, id: number): FakeJob | undefined {
    const stored = this.jobs.get(id);
    return stored && stored.repoKey === repoKey ? structuredClone(stored.job) : undefined;
  }

  list(): FakeJob[] {
    return [...this.jobs.values()].map((s) => structuredClone(s.job));
  }

  /** The job a runner is running, if any (a stand-in runner asks for it). */
  jobOfRunner(runnerId: number): FakeJob | undefined {
    const stored = [...this.jobs.values()].find(
      (s) => s.job.runner_id === runnerId && s.job.status === 'in_progress',
    );
    return stored && structuredClone(stored.job);
  }

  /** Queues a job, sends its `queued` delivery, and hands it to an idle runner if one fits. */
  queue(spec: NewJob): FakeJob {
    const repoKey = spec.repository.toLowerCase();
    if (!this.state.repos.has(repoKey)) throw new GitHubError(404, `no repository ${spec.repository}`);
    if (spec.labels.length === 0) throw new GitHubError(422, 'a job needs at least one label');
    const id = this.nextJobId++;
    const runId = this.nextRunId++;
    const repo = this.state.repos.get(repoKey)!;
    const job: FakeJob = {
      id,
      run_id: runId,
      run_attempt: 1,
      status: 'queued',
      conclusion: null,
      name: spec.name ?? 'build',
      workflow_name: spec.workflowName ?? 'CI',
      head_branch: 'main',
      head_sha: crypto.createHash('sha1').update(String(id)).digest('hex'),
      labels: [...spec.labels],
      created_at: iso(this.state.now()),
      started_at: null,
      completed_at: null,
      runner_id: null,
      runner_name: null,
      runner_group_id: null,
      runner_group_name: null,
      html_url: `https://github.com/${repo.owner}/${repo.name}/actions/runs/${runId}/job/${id}`,
      steps: [],
    };
    this.jobs.set(id, { job, repoKey });
    this.notify('queued', this.jobs.get(id)!);
    this.assign();
    return structuredClone(job);
  }

  /** Completes a running (or still queued) job; its runner is free again, or removed if ephemeral. */
  complete(id: number, conclusion = 'success'): FakeJob {
    const stored = this.jobs.get(id);
    if (!stored) throw new GitHubError(404, 'Not Found');
    if (stored.job.status === 'completed') return structuredClone(stored.job);
    const { job } = stored;
    job.status = 'completed';
    job.conclusion = conclusion;
    job.completed_at = iso(this.state.now());
    this.notify('completed', stored);
    const runner = job.runner_id === null ? undefined : this.state.runnerById(job.runner_id);
    if (runner?.ephemeral) this.state.deleteRunner(runner.id);
    else if (runner) this.state.setRunner(runner.id, { busy: false });
    return structuredClone(job);
  }

  /** Hands queued jobs, oldest first, to online idle runners whose labels cover them. */
  assign(): void {
    if (this.assigning) return;
    this.assigning = true;
    try {
      for (const stored of [...this.jobs.values()]) {
        if (stored.job.status !== 'queued') continue;
        const runner = this.idleRunnerFor(stored);
        if (runner) this.start(stored, runner);
      }
    } finally {
      this.assigning = false;
    }
  }

  /** Stops auto-completion timers (the fake is closing). */
  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private idleRunnerFor({ job, repoKey }: StoredJob): FakeRunner | undefined {
    const owner = repoKey.split('/')[0]!;
    const scopes: RunnerScope[] = [
      { kind: 'repo', owner, repo: repoKey.split('/')[1]! },
      ...(this.state.orgs.has(owner) ? [{ kind: 'org' as const, org: owner }] : []),
    ];
    const wanted = job.labels.map((l) => l.toLowerCase());
    for (const scope of scopes) {
      const runner = this.state.listRunners(scope).find((r) => {
        if (r.status !== 'online' || r.busy) return false;
        const has = new Set(r.labels.map((l) => l.name.toLowerCase()));
        return wanted.every((label) => has.has(label));
      });
      if (runner) return runner;
    }
    return undefined;
  }

  private start(stored: StoredJob, runner: FakeRunner): void {
    const { job } = stored;
    this.state.setRunner(runner.id, { busy: true });
    job.status = 'in_progress';
    job.started_at = iso(this.state.now());
    job.runner_id = runner.id;
    job.runner_name = runner.name;
    job.runner_group_id = runner.runner_group_id;
    job.runner_group_name =
      this.state
        .groupsOf({ kind: 'org', org: stored.repoKey.split('/')[0]! })
        .find((g) => g.id === runner.runner_group_id)?.name ?? 'Default';
    this.notify('in_progress', stored);
    if (this.autoCompleteAfterMs !== undefined) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.complete(job.id);
      }, this.autoCompleteAfterMs);
      this.timers.add(timer);
    }
  }

  /** Sends the `workflow_job` delivery for a change, if the App is installed on the repository. */
  private notify(action: string, { job, repoKey }: StoredJob): void {
    const repo = this.state.repos.get(repoKey)!;
    const installation = [...this.state.installations.values()].find((inst) =>
      this.state.reposOf(inst).includes(repoKey),
    );
    if (!installation) return;
    const org = this.state.orgs.get(repo.owner.toLowerCase());
    this.deliveries.send('workflow_job', {
      action,
      workflow_job: structuredClone(job),
      repository: {
        id: repo.id,
        name: repo.name,
        full_name: `${repo.owner}/${repo.name}`,
        private: true,
        owner: { login: repo.owner, id: org?.id ?? 0, type: org ? 'Organization' : 'User' },
      },
      ...(org && { organization: { login: org.login, id: org.id } }),
      installation: { id: installation.id },
      sender: { login: 'octocat', id: 1, type: 'User' },
    });
  }
}
