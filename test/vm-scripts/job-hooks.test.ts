import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { WebhookDefinition } from '@octokit/webhooks-examples';
import { INSTANCE_NAME, useVmHarness, VM_DIR } from './vm-harness.js';
import type { ScriptResult } from './vm-harness.js';

const vm = useVmHarness();

// The package's entry point is a JSON file; require() reads it without an import attribute.
const examples = createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];

type PullRequestPayload = WebhookDefinition<'pull_request'>['examples'][number];
type WorkflowRunPayload = WebhookDefinition<'workflow_run'>['examples'][number];

/** A real `pull_request` payload (a pull request between two branches of one repository). */
function pullRequestPayload(): PullRequestPayload {
  const event = examples.find((e): e is WebhookDefinition<'pull_request'> => e.name === 'pull_request')!;
  return structuredClone(event.examples.find((e) => e.action === 'opened')!);
}

/** The same pull request, opened from a fork: its head repository is another one. */
function forkPullRequestPayload(): PullRequestPayload {
  const payload = pullRequestPayload();
  payload.pull_request.head.repo = {
    ...payload.pull_request.head.repo!,
    id: 999_001,
    full_name: 'outsider/Hello-World',
    fork: true,
  };
  return payload;
}

/** A real `workflow_run` payload, optionally for a run whose head repository is a fork. */
function workflowRunPayload(fromFork: boolean): WorkflowRunPayload {
  const event = examples.find((e): e is WebhookDefinition<'workflow_run'> => e.name === 'workflow_run')!;
  const payload = structuredClone(event.examples[0]!);
  if (fromFork) {
    payload.workflow_run.head_repository = {
      ...payload.workflow_run.head_repository,
      id: 999_002,
      full_name: 'outsider/octo-repo',
      fork: true,
    };
  }
  return payload;
}

interface Job {
  event?: string;
  repository?: string;
  ref?: string;
  /** The event payload, written to GITHUB_EVENT_PATH; a string is written as it is. */
  payload?: unknown;
}

/** Runs job-started.sh as the runner runs a hook (`bash -e`), with the job's default variables. */
async function jobStarted(job: Job, env: Record<string, string> = {}): Promise<ScriptResult> {
  const eventPath = path.join(vm.work, 'event.json');
  const payload = job.payload ?? { ref: job.ref, repository: { full_name: job.repository } };
  fs.writeFileSync(eventPath, typeof payload === 'string' ? payload : JSON.stringify(payload));
  return vm.runScript(
    'job-started.sh',
    {
      ...(job.event !== undefined && { GITHUB_EVENT_NAME: job.event }),
      GITHUB_REPOSITORY: job.repository ?? 'my-org/app',
      GITHUB_REF: job.ref ?? 'refs/heads/main',
      GITHUB_EVENT_PATH: eventPath,
      RUNNER_NAME: INSTANCE_NAME,
      ...env,
    },
    { errexit: true },
  );
}

const postsubmit = {
  'github-runner-allowed-events': 'push, schedule,workflow_dispatch',
  'github-runner-allowed-refs': 'refs/heads/main refs/tags/v[0-9]+(\\.[0-9]+)*',
  'github-runner-allowed-repositories': 'my-org/app,my-org/infra-.*',
};
const presubmit = { 'github-runner-allowed-events': 'pull_request,merge_group' };

const expectAllowed = (result: ScriptResult) => {
  expect(result).toMatchObject({ code: 0 });
  expect(result.stdout).toContain('the trust rule allows this job');
  expect(result.stdout).not.toContain('::error');
};

/** The job failed before its steps, with an error annotation saying which rule refused it. */
const expectRefused = (result: ScriptResult, reason: string) => {
  expect(result).toMatchObject({ code: 1 });
  expect(result.stdout).toContain(
    `::error title=Job refused by this runner::This job may not run on ${INSTANCE_NAME}: ${reason}`,
  );
};

describe('job-started.sh: the trust rule', () => {
  it('allows a job the rule names: event, repository and ref', async () => {
    await vm.startVm(postsubmit);
    expectAllowed(await jobStarted({ event: 'push', repository: 'my-org/app', ref: 'refs/heads/main' }));
  });

  it('matches repositories case-insensitively and refs as whole extended regular expressions', async () => {
    await vm.startVm(postsubmit);
    expectAllowed(
      await jobStarted({
        event: 'workflow_dispatch',
        repository: 'MY-ORG/Infra-DNS',
        ref: 'refs/tags/v1.2.3',
      }),
    );
  });

  it('refuses a job of another event', async () => {
    await vm.startVm(postsubmit);
    const result = await jobStarted({ event: 'pull_request', payload: pullRequestPayload() });
    expectRefused(
      result,
      `event "pull_request" is not one this VM's runner may run (github-runner-allowed-events)`,
    );
    expect(result.stderr).toContain('job-started.sh: refused: event "pull_request"');
  });

  it('refuses a pull request from a fork', async () => {
    await vm.startVm(presubmit);
    expectRefused(
      await jobStarted({
        event: 'pull_request',
        ref: 'refs/pull/2/merge',
        payload: forkPullRequestPayload(),
      }),
      "the job was started by code from a fork (pull_request), which this VM's runner may not run (github-runner-allow-fork-pull-requests)",
    );
  });

  it('allows a pull request between branches of one repository, even one that is itself a fork', async () => {
    await vm.startVm(presubmit);
    expectAllowed(
      await jobStarted({ event: 'pull_request', ref: 'refs/pull/2/merge', payload: pullRequestPayload() }),
    );
    const inAFork = pullRequestPayload();
    inAFork.pull_request.head.repo!.fork = true;
    inAFork.pull_request.base.repo.fork = true;
    expectAllowed(await jobStarted({ event: 'pull_request', ref: 'refs/pull/2/merge', payload: inAFork }));
  });

  it('allows a pull request from a fork where the rule says so', async () => {
    await vm.startVm({ ...presubmit, 'github-runner-allow-fork-pull-requests': 'true' });
    expectAllowed(await jobStarted({ event: 'pull_request', payload: forkPullRequestPayload() }));
  });

  it('applies the fork rule to pull_request_target and workflow_run too, which must be listed', async () => {
    await vm.startVm({ 'github-runner-allowed-events': 'pull_request_target,workflow_run' });
    expectRefused(
      await jobStarted({ event: 'pull_request_target', payload: forkPullRequestPayload() }),
      'the job was started by code from a fork (pull_request_target)',
    );
    expectRefused(
      await jobStarted({ event: 'workflow_run', payload: workflowRunPayload(true) }),
      'the job was started by code from a fork (workflow_run)',
    );
    expectAllowed(await jobStarted({ event: 'workflow_run', payload: workflowRunPayload(false) }));
  });

  it('refuses a pull request whose payload cannot be read', async () => {
    await vm.startVm(presubmit);
    expectRefused(
      await jobStarted({ event: 'pull_request', payload: 'not json' }),
      'the pull_request payload (GITHUB_EVENT_PATH) cannot be read to tell whether the code comes from a fork',
    );
  });

  it('refuses a job on another ref; a pattern matches the whole ref only', async () => {
    await vm.startVm(postsubmit);
    expectRefused(
      await jobStarted({ event: 'push', ref: 'refs/heads/main2' }),
      `ref "refs/heads/main2" is not one this VM's runner may run jobs of (github-runner-allowed-refs)`,
    );
    expectRefused(
      await jobStarted({ event: 'push', ref: 'refs/heads/feature/refs/heads/main' }),
      'ref "refs/heads/feature',
    );
  });

  it('anchors a pattern whose alternation would escape its anchors', async () => {
    await vm.startVm({ ...postsubmit, 'github-runner-allowed-refs': 'refs/heads/main)|(refs/tags/x' });
    expectAllowed(await jobStarted({ event: 'push', ref: 'refs/heads/main' }));
    expectRefused(
      await jobStarted({ event: 'push', ref: 'refs/heads/main-evil' }),
      'ref "refs/heads/main-evil"',
    );
  });

  it('refuses a job of another repository', async () => {
    await vm.startVm(postsubmit);
    expectRefused(
      await jobStarted({ event: 'push', repository: 'evil-my-org/app' }),
      `repository "evil-my-org/app" is not one this VM's runner may run jobs of (github-runner-allowed-repositories)`,
    );
  });

  it('allows any event only when told so with *, and still refuses forks', async () => {
    await vm.startVm({ 'github-runner-allowed-events': '*' });
    expectAllowed(await jobStarted({ event: 'issue_comment' }));
    expectRefused(
      await jobStarted({ event: 'pull_request', payload: forkPullRequestPayload() }),
      'the job was started by code from a fork (pull_request)',
    );
  });

  it('refuses every job when the rule is missing (fail closed)', async () => {
    await vm.startVm({ 'github-runner-allowed-refs': 'refs/heads/main' });
    const result = await jobStarted({ event: 'push' });
    expectRefused(result, 'its trust rule cannot be read or is not valid (fail closed)');
    expect(result.stdout).toContain(
      'instance attribute github-runner-allowed-events is required but not set',
    );
  });

  it('refuses every job when a pattern is not a valid regular expression', async () => {
    await vm.startVm({ ...postsubmit, 'github-runner-allowed-repositories': 'my-org/[app' });
    expectRefused(
      await jobStarted({ event: 'push' }),
      "its trust rule cannot be read or is not valid (fail closed): instance attribute github-runner-allowed-repositories: 'my-org/[app' is not a valid extended regular expression",
    );
  });

  it('refuses every job when the metadata server cannot be reached (fail closed)', async () => {
    const result = await jobStarted(
      { event: 'push' },
      { GCE_METADATA_HOST: '127.0.0.1:9', RETRY_MAX_ATTEMPTS: '2' },
    );
    expectRefused(result, 'its trust rule cannot be read or is not valid (fail closed)');
    expect(result.stdout).toContain(
      'reading the instance attributes from the metadata server failed after 2 attempts',
    );
  });

  it('retries a metadata server that fails for a moment, as lib.sh does', async () => {
    const metadata = await vm.startVm(postsubmit);
    metadata.controls.addFault({ path: '/instance/attributes', status: 503, times: 1 });
    const result = await jobStarted({ event: 'push' });
    expectAllowed(result);
    expect(result.stderr).toContain('reading the instance attributes from the metadata server: HTTP 503');
  });

  it('refuses a job without an event name', async () => {
    await vm.startVm(postsubmit);
    expectRefused(await jobStarted({}), 'the job has no GITHUB_EVENT_NAME, so no rule can allow it');
  });

  it('escapes what it prints as a workflow command', async () => {
    await vm.startVm(postsubmit);
    const result = await jobStarted({ event: 'push', ref: 'refs/heads/100%0Aevil' });
    expectRefused(result, 'ref "refs/heads/100%250Aevil"');
  });
});

describe('job-completed.sh', () => {
  /** A work folder as a job leaves it, and a temporary directory with the job's leftovers. */
  function leaveJobBehind() {
    const work = path.join(vm.runnerDir, '_work');
    const temp = path.join(vm.work, 'systmp');
    const files = {
      checkout: path.join(work, 'app/app/build/secret-output.txt'),
      action: path.join(work, '_actions/actions/checkout/v4/action.yml'),
      scratch: path.join(work, '_temp/scratch/file.txt'),
      fileCommands: path.join(work, '_temp/_runner_file_commands/set_env_1'),
      tool: path.join(work, '_tool/node/22.0.0/bin/node'),
      mapping: path.join(work, '_PipelineMapping/my-org/app/PipelineFolder.json'),
      leftover: path.join(temp, 'job-leftover-file'),
      leftoverDir: path.join(temp, 'job-leftover-dir/inner'),
      dotnet: path.join(temp, '.dotnet/shm/session'),
    };
    for (const file of Object.values(files)) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, 'x');
    }
    const fifo = path.join(temp, 'clr-or-any-pipe');
    spawnSync('mkfifo', [fifo]);
    const env = {
      RUNNER_TEMP: path.join(work, '_temp'),
      RUNNER_WORKSPACE: path.join(work, 'app'),
      GITHUB_WORKSPACE: path.join(work, 'app/app'),
      RUNNER_TOOL_CACHE: path.join(work, '_tool'),
      JOB_CLEANUP_TEMP_DIRS: temp,
    };
    return { files, fifo, env };
  }

  it("removes the job's files from the work folder and temporary directories, and keeps the runner's", async () => {
    await vm.startVm({});
    const { files, fifo, env } = leaveJobBehind();
    const result = await vm.runScript('job-completed.sh', env, { errexit: true });

    expect(result).toMatchObject({ code: 0 });
    const exists = Object.fromEntries(
      Object.entries(files).map(([name, file]) => [name, fs.existsSync(file)]),
    );
    expect(exists).toEqual({
      checkout: false,
      action: false,
      scratch: false,
      fileCommands: true,
      tool: true,
      mapping: true,
      leftover: false,
      leftoverDir: false,
      dotnet: true,
    });
    expect(fs.existsSync(fifo)).toBe(true);
    // Counts only: what a job leaves may be secret.
    expect(result.stdout).toBe(
      'job-completed.sh: removed 3 entries from the work folder and 2 from temporary directories; kept the tool cache\n',
    );
  });

  it('cleans the tool cache when github-runner-clean-tool-cache is true', async () => {
    await vm.startVm({ 'github-runner-clean-tool-cache': 'true' });
    const { files, env } = leaveJobBehind();
    const result = await vm.runScript('job-completed.sh', env, { errexit: true });
    expect(result).toMatchObject({ code: 0 });
    expect(fs.existsSync(files.tool)).toBe(false);
    expect(fs.readdirSync(path.dirname(path.dirname(path.dirname(path.dirname(files.tool)))))).toEqual([]);
    expect(result.stdout).toContain('removed 1 entries from the tool cache');
  });

  it('keeps the tool cache, and says so, when the metadata server cannot be read', async () => {
    const { files, env } = leaveJobBehind();
    const result = await vm.runScript(
      'job-completed.sh',
      { ...env, RETRY_MAX_ATTEMPTS: '1' },
      { errexit: true },
    );
    expect(result).toMatchObject({ code: 0 });
    expect(fs.existsSync(files.tool)).toBe(true);
    expect(fs.existsSync(files.checkout)).toBe(false);
    expect(result.stdout).toContain(
      '::warning title=Runner clean-up::the instance attribute github-runner-clean-tool-cache could not be read: the tool cache was kept',
    );
  });

  it('touches nothing when the work folder is unknown, and warns', async () => {
    await vm.startVm({});
    const { files, env } = leaveJobBehind();
    const result = await vm.runScript('job-completed.sh', { ...env, RUNNER_TEMP: '/' }, { errexit: true });
    expect(result).toMatchObject({ code: 0 });
    expect(fs.existsSync(files.checkout)).toBe(true);
    expect(result.stdout).toContain(
      "::warning title=Runner clean-up::the work folder is unknown (RUNNER_TEMP is '/'",
    );
  });
});

describe('register.sh installs the hooks, and the runner runs them around its job', () => {
  it('writes both hooks into the runner root .env, keeping its other lines', async () => {
    await vm.startVm(vm.proxyAttributes());
    fs.writeFileSync(
      path.join(vm.runnerDir, '.env'),
      'LANG=C.UTF-8\nACTIONS_RUNNER_HOOK_JOB_STARTED=/somewhere/else.sh\nJAVA_HOME=/usr/lib/jvm',
    );
    const result = await vm.runScript('register.sh');
    expect(result).toMatchObject({ code: 0 });

    const realVmDir = fs.realpathSync(VM_DIR);
    expect(fs.readFileSync(path.join(vm.runnerDir, '.env'), 'utf8')).toBe(
      'LANG=C.UTF-8\nJAVA_HOME=/usr/lib/jvm\n' +
        `ACTIONS_RUNNER_HOOK_JOB_STARTED=${realVmDir}/job-started.sh\n` +
        `ACTIONS_RUNNER_HOOK_JOB_COMPLETED=${realVmDir}/job-completed.sh\n`,
    );
    const [job] = vm.standinRecords().filter((r) => r.event === 'job');
    expect(job).toMatchObject({
      job: { event_name: 'push', repository: 'my-org/app', ref: 'refs/heads/main' },
      started_hook: { path: `${realVmDir}/job-started.sh`, status: 0 },
      steps: 'ran',
      completed_hook: { path: `${realVmDir}/job-completed.sh`, status: 0 },
      conclusion: 'success',
    });
    // What the job's steps left is gone.
    expect(fs.readdirSync(path.join(vm.runnerDir, '_work')).sort()).toEqual(['_temp', '_tool']);
    expect(fs.readdirSync(path.join(vm.runnerDir, '_tmp'))).toEqual([]);
  });

  it('a job the trust rule refuses fails before its steps run', async () => {
    await vm.startVm(vm.proxyAttributes());
    const result = await vm.runScript('register.sh', { RUNNER_STANDIN_JOB_EVENT: 'pull_request' });
    // run.sh says 0 after a failed job as after a good one.
    expect(result).toMatchObject({ code: 0 });
    const [job] = vm.standinRecords().filter((r) => r.event === 'job');
    expect(job).toMatchObject({ steps: 'skipped', conclusion: 'failure', started_hook: { status: 1 } });
    expect(job?.started_hook?.output).toContain(`event "pull_request" is not one this VM's runner may run`);
  });

  it('a presubmit VM runs a pull request from its own repository and refuses one from a fork', async () => {
    await vm.startVm(vm.proxyAttributes({ 'github-runner-allowed-events': 'pull_request' }));
    const job = { RUNNER_STANDIN_JOB_EVENT: 'pull_request', RUNNER_STANDIN_JOB_REF: 'refs/pull/7/merge' };
    expect(await vm.runScript('register.sh', job)).toMatchObject({ code: 0 });
    expect(await vm.runScript('register.sh', { ...job, RUNNER_STANDIN_JOB_FROM_FORK: '1' })).toMatchObject({
      code: 0,
    });
    const jobs = vm.standinRecords().filter((r) => r.event === 'job');
    expect(jobs.map((j) => [j.steps, j.conclusion])).toEqual([
      ['ran', 'success'],
      ['skipped', 'failure'],
    ]);
    expect(jobs[1]?.started_hook?.output).toContain('the job was started by code from a fork (pull_request)');
  });
});
