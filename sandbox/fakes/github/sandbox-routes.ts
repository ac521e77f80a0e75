import express from 'express';
import type { Router } from 'express';
import { GitHubError } from './github-error.js';
import type { FakeRunner, GitHubState, RunnerScope } from './github-state.js';
import { DEFAULT_RUNNER_VERSION, RUNNER_VERSION_PATTERN, scopeFromGitHubUrl } from './github-state.js';
import { secretFromJitConfig } from './jit-config.js';
import type { ActionsJobs } from './actions-jobs.js';
import type { WebhookDeliveries } from './webhook-deliveries.js';

const body = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};

function stringField(input: Record<string, unknown>, key: string): string {
  const value = input[key];
  if (typeof value !== 'string' || value === '') {
    throw new GitHubError(400, `Invalid input: ${key} must be a string`);
  }
  return value;
}

/**
 * The version a connecting runner reports (`version` in the body: what its VM installed, from the template's
 * `github-runner-version`), or {@link DEFAULT_RUNNER_VERSION}.
 */
function versionOf(input: Record<string, unknown>): string {
  const version = input.version;
  if (version === undefined || version === null || version === '') return DEFAULT_RUNNER_VERSION;
  if (typeof version !== 'string' || !RUNNER_VERSION_PATTERN.test(version)) {
    throw new GitHubError(400, 'Invalid input: version must be a release version such as 2.330.0');
  }
  return version;
}

function scopeOf(input: Record<string, unknown>): RunnerScope {
  const url = stringField(input, 'url');
  const scope = scopeFromGitHubUrl(url);
  if (!scope) throw new GitHubError(400, `Invalid input: ${url} is not https://github.com/<org>[/<repo>]`);
  return scope;
}

/**
 * Routes a stand-in runner binary calls instead of GitHub's runner service (not part of the REST API, so
 * neither authenticated nor rate limited): register with a registration token as `config.sh` does, start
 * from a JIT config, unregister with a remove token, and report busy or exit.
 */
export function createSandboxRouter(
  state: GitHubState,
  actions: { deliveries: WebhookDeliveries; jobs: ActionsJobs },
): Router {
  const router = express.Router();

  const runnerById = (id: string | undefined): FakeRunner => {
    const runner = state.runnerById(Number(id));
    if (!runner) throw new GitHubError(404, 'Not Found');
    return runner;
  };

  router.post('/runners/register', (req, res) => {
    const input = body(req.body);
    const scope = scopeOf(input);
    const problem = state.checkRunnerToken(stringField(input, 'token'), 'registration', scope);
    if (problem) throw new GitHubError(401, problem);
    const name = stringField(input, 'name');
    const labels = Array.isArray(input.labels) ? input.labels.map(String) : [];
    const groupName = typeof input.runner_group === 'string' ? input.runner_group : 'Default';
    const group = state.groupsOf(scope).find((g) => g.name.toLowerCase() === groupName.toLowerCase());
    // config.sh's own wording when the group does not exist.
    if (!group) {
      throw new GitHubError(404, `Could not find any self-hosted runner group named "${groupName}".`);
    }
    const existing = state.findRunnerByName(scope, name);
    if (existing && input.replace !== true) throw new GitHubError(409, 'A runner exists with the same name');
    if (existing) state.deleteRunner(existing.id);
    const runner = state.addRunner(scope, {
      name,
      // config.sh adds the default labels, which GitHub marks read-only.
      labels: ['self-hosted', 'Linux', 'X64', ...labels],
      runnerGroupId: group.id,
      ephemeral: input.ephemeral === true,
      status: 'online',
      version: versionOf(input),
    });
    res.status(201).json(runner);
  });

  router.post('/runners/jit', (req, res) => {
    const input = body(req.body);
    const version = versionOf(input);
    const secret = secretFromJitConfig(input.encoded_jit_config);
    if (!secret) throw new GitHubError(400, 'Invalid input: encoded_jit_config is not a JIT configuration');
    const redeemed = state.redeemJitConfig(secret);
    if ('status' in redeemed) throw new GitHubError(redeemed.status, redeemed.message);
    res.json(state.setRunner(redeemed.record.runnerId, { status: 'online', version }));
  });

  router.post('/runners/remove', (req, res) => {
    const input = body(req.body);
    const scope = scopeOf(input);
    const problem = state.checkRunnerToken(stringField(input, 'token'), 'remove', scope);
    if (problem) throw new GitHubError(401, problem);
    const runner = state.findRunnerByName(scope, stringField(input, 'name'));
    if (!runner) throw new GitHubError(404, 'Not Found');
    state.deleteRunner(runner.id);
    res.status(204).end();
  });

  router.post('/runners/:id/busy', (req, res) => {
    const busy = body(req.body).busy;
    if (typeof busy !== 'boolean') throw new GitHubError(400, 'Invalid input: busy must be a boolean');
    res.json(state.setRunner(runnerById(req.params.id).id, { busy }));
  });

  // The runner process stopped. GitHub removes an ephemeral runner once its job is done; others go offline.
  router.post('/runners/:id/exit', (req, res) => {
    const runner = runnerById(req.params.id);
    if (runner.ephemeral) {
      state.deleteRunner(runner.id);
      res.json({ ...runner, status: 'offline', busy: false, deleted: true });
    } else {
      res.json({ ...state.setRunner(runner.id, { status: 'offline', busy: false }), deleted: false });
    }
  });

  // --- Jobs and the App's webhook, for the sandbox and the demo workload ---------------------------

  /** Where deliveries go: `{"url", "secret", "dropShare"?}`; `{"url": null}` turns the webhook off. */
  router.put('/webhook', (req, res) => {
    const input = body(req.body);
    if (input.url === null) {
      actions.deliveries.target = undefined;
    } else {
      const url = stringField(input, 'url');
      const secret = stringField(input, 'secret');
      actions.deliveries.target = { url, secret };
    }
    if (input.dropShare !== undefined) {
      if (typeof input.dropShare !== 'number' || input.dropShare < 0 || input.dropShare > 1) {
        throw new GitHubError(400, 'Invalid input: dropShare must be a number from 0 to 1');
      }
      actions.deliveries.settings.dropShare = input.dropShare;
    }
    res.status(204).end();
  });

  /** Queues a job (`{"repository": "owner/name", "labels": [...]}`) and sends its `queued` delivery. */
  router.post('/jobs', (req, res) => {
    const input = body(req.body);
    const labels = Array.isArray(input.labels) ? input.labels.map(String) : [];
    res.status(201).json(
      actions.jobs.queue({
        repository: stringField(input, 'repository'),
        labels,
        ...(typeof input.name === 'string' && { name: input.name }),
      }),
    );
  });

  router.get('/jobs/:id', (req, res) => {
    const job = actions.jobs.get(Number(req.params.id));
    if (!job) throw new GitHubError(404, 'Not Found');
    res.json(job);
  });

  router.post('/jobs/:id/complete', (req, res) => {
    const conclusion = body(req.body).conclusion;
    res.json(
      actions.jobs.complete(Number(req.params.id), typeof conclusion === 'string' ? conclusion : 'success'),
    );
  });

  /** The job GitHub handed this runner: what a stand-in runner runs. 204 while it has none. */
  router.get('/runners/:id/job', (req, res) => {
    const job = actions.jobs.jobOfRunner(runnerById(req.params.id).id);
    if (job) res.json(job);
    else res.status(204).end();
  });

  router.use(() => {
    throw new GitHubError(404, 'Not Found');
  });
  return router;
}
