/**
 * The deploy scripts' dry runs, checked for the flags that decide who can reach and call each piece and
 * what each identity may do. A dry run needs no gcloud: a stub that records any call stands first on PATH,
 * and every test asserts that it was never called.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_ENTRY_POINTS } from '#entry-points';
import type { CallerIdentity } from '#shared';
import { parsePolicy } from '#token-proxy';
import { allowsGroup, allowsLabel, ruleMatchesCaller } from '../../services/token-proxy/src/policy.js';
import { parsePoolConfig } from '../../services/autoscaler/src/pool-config.js';
import { instanceNameFor } from '../../services/autoscaler/src/instance-name.js';
import { METRIC_LOG_MESSAGES } from '../../services/autoscaler/src/log-messages.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEPLOY_DIR = path.join(ROOT, 'deploy');
const MONITORING_DIR = path.join(DEPLOY_DIR, 'monitoring');

/** The committed JSON files of one folder of deploy/monitoring/, full paths, sorted. */
function monitoringFiles(folder: 'metrics' | 'policies'): string[] {
  const dir = path.join(MONITORING_DIR, folder);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(dir, f));
}
const metricFiles = () => monitoringFiles('metrics');
const policyFiles = () => monitoringFiles('policies');

const PROJECT = 'my-project';
const REGION = 'us-central1';
const PRESUBMIT_SA = `gh-runner-presubmit@${PROJECT}.iam.gserviceaccount.com`;
const POSTSUBMIT_SA = `gh-runner-postsubmit@${PROJECT}.iam.gserviceaccount.com`;
const RUNNER_MEMBERS = [`serviceAccount:${PRESUBMIT_SA}`, `serviceAccount:${POSTSUBMIT_SA}`];
const PROXY_SA = `gh-token-proxy@${PROJECT}.iam.gserviceaccount.com`;
const DELETER_SA = `gh-instance-deleter@${PROJECT}.iam.gserviceaccount.com`;
const AUTOSCALER_SA = `gh-autoscaler@${PROJECT}.iam.gserviceaccount.com`;
const SCHEDULER_SA = `gh-autoscaler-scheduler@${PROJECT}.iam.gserviceaccount.com`;
const STATUS_SA = `gh-fleet-status@${PROJECT}.iam.gserviceaccount.com`;

/** Exactly the role's permissions; a change here must be a deliberate change of deleter-role-permissions.txt. */
const DELETER_PERMISSIONS = [
  'compute.instances.get',
  'compute.instanceGroupManagers.get',
  'compute.instanceGroupManagers.update',
  'compute.autoscalers.get',
  'compute.zoneOperations.get',
  'compute.regionOperations.get',
];

/**
 * Exactly the autoscaler role's permissions: reading MIGs, createInstances and deleteInstances (both
 * compute.instanceGroupManagers.update), the operations' wait and the keep-label list. A change here must be a deliberate change
 * of autoscaler-role-permissions.txt.
 */
const AUTOSCALER_PERMISSIONS = [
  'compute.instanceGroupManagers.get',
  'compute.instanceGroupManagers.update',
  'compute.zoneOperations.get',
  'compute.regionOperations.get',
  // The reaper's read of the github-runner-keep label.
  'compute.instances.list',
];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-scripts-test-'));
const stubDir = path.join(tmp, 'bin');
const stubLog = path.join(tmp, 'gcloud-calls.log');
fs.mkdirSync(stubDir);
for (const tool of ['gcloud', 'gsutil']) {
  fs.writeFileSync(path.join(stubDir, tool), `#!/bin/sh\necho "${tool} $*" >> '${stubLog}'\nexit 1\n`, {
    mode: 0o755,
  });
}

// A real key, written where a user would keep it; its text must never reach the output.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEY_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const KEY_FILE = path.join(tmp, 'app.private-key.pem');
fs.writeFileSync(KEY_FILE, KEY_PEM, { mode: 0o600 });
const PAT = 'ghp_' + crypto.randomBytes(18).toString('hex');
const PAT_FILE = path.join(tmp, 'pat.txt');
fs.writeFileSync(PAT_FILE, `${PAT}\n`, { mode: 0o600 });
// The webhook secret as webhook-secret.sh wants it: the secret alone, no newline.
const WEBHOOK_SECRET = crypto.randomBytes(32).toString('hex');
const WEBHOOK_SECRET_FILE = path.join(tmp, 'webhook-secret.txt');
fs.writeFileSync(WEBHOOK_SECRET_FILE, WEBHOOK_SECRET, { mode: 0o600 });

const BASE_ENV: Record<string, string> = {
  PROJECT_ID: PROJECT,
  REGION,
  IMAGE_TAG: 'test',
  ALLOWED_SCOPES: 'my-org;match:my-org/.*',
  GITHUB_APP_ID: '123456',
  GITHUB_APP_PRIVATE_KEY_FILE: KEY_FILE,
  ALLOWED_MIG_PATTERN: 'gh-runner-.*',
  RUNNER_SCOPE: 'my-org',
  TEMPLATE_NAME: 'gh-runner-test',
  DEPLOY_WORK_DIR: path.join(tmp, 'work'),
  GITHUB_WEBHOOK_SECRET_FILE: WEBHOOK_SECRET_FILE,
};

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Non-comment lines: one command each. */
  commands: string[][];
}

function runScript(script: string, env: Record<string, string> = {}, args = ['--dry-run']): Run {
  const result = spawnSync('bash', [path.join(DEPLOY_DIR, script), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: `${stubDir}:${process.env.PATH ?? ''}`, HOME: tmp, TMPDIR: tmp, ...BASE_ENV, ...env },
  });
  const commands = result.stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map(shellWords);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, commands };
}

/** Splits a line the way bash would for the quoting the scripts print: bare, '...', \x and "${NAME}". */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      const end = line.indexOf('"', i + 1);
      word += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '\\') {
      word += line[i + 1] ?? '';
      i++;
      inWord = true;
    } else if (c === ' ') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** The commands that start with these words (e.g. `gcloud run deploy`), including after `||`, `then`, `else`. */
function find(run: Run, ...prefix: string[]): string[][] {
  const found: string[][] = [];
  for (const words of run.commands) {
    const segments: string[][] = [[]];
    for (const word of words) {
      if (
        [
          '||',
          '&&',
          ';',
          'then',
          'else',
          'if',
          'fi',
          'do',
          'done',
          '>/dev/null',
          '2>/dev/null',
          '2>&1',
        ].includes(word.replace(/;$/, ''))
      ) {
        segments.push([]);
        if (word.endsWith(';') && word !== ';') segments[segments.length - 2]!.push(word.slice(0, -1));
      } else if (word.endsWith(';')) {
        segments[segments.length - 1]!.push(word.slice(0, -1));
        segments.push([]);
      } else {
        segments[segments.length - 1]!.push(word);
      }
    }
    for (const segment of segments) {
      if (prefix.every((p, i) => segment[i] === p)) found.push(segment);
    }
  }
  return found;
}

function one(run: Run, ...prefix: string[]): string[] {
  const found = find(run, ...prefix);
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** Values of `--flag=value` words. */
function flagValues(words: string[], flag: string): string[] {
  return words.filter((w) => w.startsWith(`${flag}=`)).map((w) => w.slice(flag.length + 1));
}

/** Parses a gcloud dict flag value, with or without the ^DELIM^ alternate delimiter. */
function dictFlag(value: string): Record<string, string> {
  const match = /^\^([^^]+)\^(.*)$/s.exec(value);
  const [delim, body] = match ? [match[1]!, match[2]!] : [',', value];
  return Object.fromEntries(
    body.split(delim).map((pair) => {
      const at = pair.indexOf('=');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

/**
 * No secret, no public invoker, no broad scope, and no gcloud call. Only the autoscaler's own deploy may be
 * public (`--ingress=all --allow-unauthenticated`: GitHub's webhook reaches it from the internet); every
 * other service stays internal and IAM-checked.
 */
function expectClean(run: Run, options: { publicService?: string } = {}): void {
  const all = run.stdout + run.stderr;
  for (const forbidden of ['allUsers', 'allAuthenticatedUsers', 'cloud-platform', '--no-invoker-iam-check']) {
    expect(all).not.toContain(forbidden);
  }
  // A service behind IAP (deploy/fleet-status.sh: --iap, --no-allow-unauthenticated) takes requests from the
  // internet only through IAP: not a public service.
  const behindIap = (line: string) =>
    line.split(' ').includes('--iap') && line.split(' ').includes('--no-allow-unauthenticated');
  for (const publicFlag of ['--allow-unauthenticated', '--ingress=all']) {
    const lines = all.split('\n').filter((line) => line.includes(publicFlag) && !behindIap(line));
    if (options.publicService === undefined) expect(lines).toEqual([]);
    else {
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines)
        expect(line.startsWith(`gcloud run deploy ${options.publicService} `)).toBe(true);
    }
  }
  expect(all).not.toContain(WEBHOOK_SECRET);
  // The key's body lines and the PAT never appear.
  for (const line of KEY_PEM.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) {
    expect(all).not.toContain(line);
  }
  expect(all).not.toContain(PAT);
  expect(fs.existsSync(stubLog) ? fs.readFileSync(stubLog, 'utf8') : '').toBe('');
}

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A Compute Engine caller as the token proxy sees it after verifying a `format=full` identity token. */
function caller(email: string, instanceName: string, projectId = PROJECT): CallerIdentity {
  return {
    sub: '109422233875895820585',
    email,
    compute: {
      projectId,
      projectNumber: '326694433618',
      zone: `${REGION}-b`,
      instanceId: '2875949485074006138',
      instanceName,
    },
  };
}

/** The POLICY a token-proxy deploy sets, parsed by the proxy's own parser. */
function deployedPolicy(run: Run): ReturnType<typeof parsePolicy> {
  const deploy = one(run, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
  const text = dictFlag(flagValues(deploy, '--set-env-vars')[0]!).POLICY;
  expect(text).toBeDefined();
  return parsePolicy(text!);
}

/** Entries of a directory, or [] when it does not exist. */
function entries(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

describe('deploy/token-proxy.sh --dry-run', () => {
  const run = runScript('token-proxy.sh');

  it('succeeds without gcloud, secrets or allUsers anywhere', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run);
  });

  it('deploys to Cloud Run with internal ingress, IAM checks, its own service account and the mounted secret', () => {
    const deploy = one(run, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    expect(deploy).toContain('--ingress=internal');
    expect(deploy).toContain('--no-allow-unauthenticated');
    expect(flagValues(deploy, '--service-account')).toEqual([PROXY_SA]);
    expect(flagValues(deploy, '--image')).toEqual([
      `${REGION}-docker.pkg.dev/${PROJECT}/gce-github-runners/gce-github-runners:test`,
    ]);
    const env = dictFlag(flagValues(deploy, '--set-env-vars')[0]!);
    expect(env).toMatchObject({
      SERVICE: 'token-proxy',
      ALLOWED_SCOPES: 'my-org;match:my-org/.*',
      GITHUB_APP_ID: '123456',
      GOOGLE_CLOUD_PROJECT: PROJECT,
    });
    expect(env).not.toHaveProperty('GITHUB_APP_PRIVATE_KEY');
  });

  it('pins the secret version it reads before deploying, never latest', () => {
    const lines = run.commands.map((words) => words.join(' '));
    const lookupAt = lines.findIndex((l) =>
      /^GITHUB_SECRET_VERSION=\$\(gcloud secrets versions list gh-runner-github-credential .*--filter=state=ENABLED .*--limit=1 .*name\.basename\(\)/.test(
        l,
      ),
    );
    const deployAt = lines.findIndex((l) => l.startsWith('gcloud run deploy'));
    expect(lookupAt).toBeGreaterThanOrEqual(0);
    expect(deployAt).toBeGreaterThan(lookupAt);
    const deploy = one(run, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    expect(flagValues(deploy, '--set-secrets')).toEqual([
      'GITHUB_APP_PRIVATE_KEY=gh-runner-github-credential:${GITHUB_SECRET_VERSION}',
    ]);
    expect(run.stdout).not.toContain(':latest');
  });

  it('uses GITHUB_SECRET_VERSION as given, without a lookup', () => {
    const pinned = runScript('token-proxy.sh', { GITHUB_SECRET_VERSION: '7' });
    expect(pinned.status).toBe(0);
    expect(find(pinned, 'gcloud', 'secrets', 'versions', 'list')).toHaveLength(0);
    const deploy = one(pinned, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    expect(flagValues(deploy, '--set-secrets')).toEqual([
      'GITHUB_APP_PRIVATE_KEY=gh-runner-github-credential:7',
    ]);
  });

  it.each(['latest', '0', 'v3', '3 '])('refuses GITHUB_SECRET_VERSION=%j', (version) => {
    const refused = runScript('token-proxy.sh', { GITHUB_SECRET_VERSION: version });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('GITHUB_SECRET_VERSION');
    expect(find(refused, 'gcloud', 'run', 'deploy')).toHaveLength(0);
  });

  it('always sets a caller policy: one rule per trust level, each bound to its own service account and MIG', () => {
    const policy = deployedPolicy(run);
    expect(policy.rules.map((rule) => rule.name)).toEqual(['presubmit', 'postsubmit']);
    const [presubmit, postsubmit] = policy.rules;
    const preVm = caller(PRESUBMIT_SA, 'gh-runner-presubmit-x7k2');
    const postVm = caller(POSTSUBMIT_SA, 'gh-runner-postsubmit-a1b2');
    expect(ruleMatchesCaller(presubmit!, preVm)).toBe(true);
    expect(ruleMatchesCaller(postsubmit!, postVm)).toBe(true);
    // Neither identity passes for the other level, even with the other level's instance name.
    expect(ruleMatchesCaller(postsubmit!, preVm)).toBe(false);
    expect(ruleMatchesCaller(postsubmit!, caller(PRESUBMIT_SA, 'gh-runner-postsubmit-a1b2'))).toBe(false);
    expect(ruleMatchesCaller(presubmit!, postVm)).toBe(false);
    // Another project's VM of the same name, and a VM outside the MIG, match nothing.
    expect(
      ruleMatchesCaller(presubmit!, caller(PRESUBMIT_SA, 'gh-runner-presubmit-x7k2', 'evil-project')),
    ).toBe(false);
    expect(ruleMatchesCaller(presubmit!, caller(PRESUBMIT_SA, 'gh-runner-presubmit-x7k2-extra'))).toBe(false);
    // The VMs the autoscaler service requests, <MIG>-<job id> and, requested again, <MIG>-<job id>-<n>.
    for (const name of ['gh-runner-presubmit-9007199254740991', 'gh-runner-presubmit-9007199254740991-2']) {
      expect(ruleMatchesCaller(presubmit!, caller(PRESUBMIT_SA, name))).toBe(true);
      expect(ruleMatchesCaller(postsubmit!, caller(POSTSUBMIT_SA, name))).toBe(false);
    }
    expect(ruleMatchesCaller(presubmit!, caller(PRESUBMIT_SA, 'gh-runner-presubmit-12-x7k2'))).toBe(false);
    // Each level gets its own group and labels, JIT configs only.
    expect(allowsGroup(presubmit!, 'presubmit')).toBe(true);
    expect(allowsGroup(presubmit!, 'postsubmit')).toBe(false);
    expect(allowsLabel(presubmit!, 'postsubmit')).toBe(false);
    expect(allowsLabel(postsubmit!, 'postsubmit')).toBe(true);
    expect(policy.rules.every((rule) => rule.jitOnly)).toBe(true);
    expect(presubmit!.defaultRunnerGroup).toBe('presubmit');
    expect(presubmit!.defaultLabels).toEqual(['self-hosted', 'linux', 'x64', 'presubmit']);
  });

  it('builds the policy from the trust levels and their settings', () => {
    const custom = runScript('token-proxy.sh', {
      TRUST_LEVELS: 'untrusted,trusted,gpu',
      RUNNER_GROUP_UNTRUSTED: 'ci-untrusted',
      RUNNER_LABELS_GPU: 'self-hosted,linux,x64,gpu,cuda',
    });
    expect(custom.status).toBe(0);
    const policy = deployedPolicy(custom);
    expect(policy.rules.map((rule) => rule.name)).toEqual(['untrusted', 'trusted', 'gpu']);
    expect(policy.rules[0]!.defaultRunnerGroup).toBe('ci-untrusted');
    expect(policy.rules[2]!.defaultLabels).toEqual(['self-hosted', 'linux', 'x64', 'gpu', 'cuda']);
    expect(
      ruleMatchesCaller(
        policy.rules[2]!,
        caller(`gh-runner-gpu@${PROJECT}.iam.gserviceaccount.com`, 'gh-runner-gpu-0000'),
      ),
    ).toBe(true);
  });

  it('lets token-mode VMs (RUNNER_MODE=token) use /register, and only then', () => {
    const tokenMode = runScript('token-proxy.sh', { RUNNER_MODE: 'token' });
    expect(deployedPolicy(tokenMode).rules.map((rule) => rule.jitOnly)).toEqual([false, false]);
  });

  it('uses POLICY_FILE instead when given', () => {
    const file = path.join(tmp, 'policy.json');
    fs.writeFileSync(
      file,
      JSON.stringify(
        {
          rules: [
            { name: 'only', callers: { serviceAccounts: [PRESUBMIT_SA] }, scopes: ['my-org'], jitOnly: true },
          ],
        },
        null,
        2,
      ),
    );
    const withFile = runScript('token-proxy.sh', { POLICY_FILE: file });
    expect(withFile.status).toBe(0);
    expect(deployedPolicy(withFile).rules.map((rule) => rule.name)).toEqual(['only']);
    const notPolicy = path.join(tmp, 'not-policy.json');
    fs.writeFileSync(notPolicy, '{}');
    const refused = runScript('token-proxy.sh', { POLICY_FILE: notPolicy });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('not a caller policy');
  });

  it('sets AUTH_AUDIENCE to the URL read after the first deploy', () => {
    const lines = run.commands.map((words) => words.join(' '));
    const deployAt = lines.findIndex((l) => l.startsWith('gcloud run deploy'));
    const describeAt = lines.findIndex((l) =>
      /^TOKEN_PROXY_URL=\$\(gcloud run services describe gh-token-proxy .*--format=value\(status\.url\)/.test(
        l,
      ),
    );
    const updateAt = lines.findIndex((l) => l.startsWith('gcloud run services update gh-token-proxy'));
    expect(deployAt).toBeGreaterThanOrEqual(0);
    expect(describeAt).toBeGreaterThan(deployAt);
    expect(updateAt).toBeGreaterThan(describeAt);
    // First deploy: an audience no token can carry, so the service refuses everyone until the update.
    const deploy = one(run, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    expect(dictFlag(flagValues(deploy, '--set-env-vars')[0]!).AUTH_AUDIENCE).toBe(
      'https://audience-pending.invalid',
    );
    expect(run.stdout).toContain('--update-env-vars=AUTH_AUDIENCE="${TOKEN_PROXY_URL}"');
  });

  it('grants roles/run.invoker to the runner service accounts only, and checks who else may invoke', () => {
    const bindings = find(run, 'gcloud', 'run', 'services', 'add-iam-policy-binding');
    expect(bindings).toHaveLength(2);
    expect(bindings.flatMap((b) => flagValues(b, '--member'))).toEqual(RUNNER_MEMBERS);
    expect(bindings.flatMap((b) => flagValues(b, '--role'))).toEqual([
      'roles/run.invoker',
      'roles/run.invoker',
    ]);
    expect(run.stdout).toMatch(
      /^RUN_INVOKERS="\$\(gcloud run services get-iam-policy gh-token-proxy .*roles\/run\.invoker/m,
    );
    // Project-level roles (Owner, Editor, run.*) can invoke too; the script reads them.
    expect(run.stdout).toMatch(/^PROJECT_BINDINGS="\$\(gcloud projects get-iam-policy my-project /m);
  });

  it('binds more runner service accounts when asked, one binding each', () => {
    const other = `gh-runner-trusted@${PROJECT}.iam.gserviceaccount.com`;
    const multi = runScript('token-proxy.sh', { RUNNER_INVOKER_SA_EMAILS: other });
    const members = find(multi, 'gcloud', 'run', 'services', 'add-iam-policy-binding').flatMap((b) =>
      flagValues(b, '--member'),
    );
    expect(members).toEqual([...RUNNER_MEMBERS, `serviceAccount:${other}`]);
  });

  it.each(['allUsers', 'allAuthenticatedUsers', 'user:someone@example.com', 'domain:example.com'])(
    'refuses %s as an invoker',
    (member) => {
      const refused = runScript('token-proxy.sh', { RUNNER_INVOKER_SA_EMAILS: member });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('only runner VMs');
      expect(find(refused, 'gcloud', 'run', 'deploy')).toHaveLength(0);
    },
  );

  it.each([
    ['RUNNER_SA_EMAIL', `gh-runner@${PROJECT}.iam.gserviceaccount.com`],
    ['RUNNER_LABELS', 'linux-x64'],
    ['RUNNER_GROUP', 'gce'],
  ])('stops on the obsolete variable %s, naming its replacement', (name, value) => {
    const refused = runScript('token-proxy.sh', { [name]: value });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`${name}_<LEVEL>`);
  });

  it.each(['Presubmit', 'pre-submit', 'a'.repeat(21), 'x x'])('refuses the trust level %j', (level) => {
    const refused = runScript('token-proxy.sh', { TRUST_LEVELS: `presubmit ${level}` });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('TRUST_LEVELS');
  });

  it('mounts a PAT as GITHUB_TOKEN in PAT mode', () => {
    const pat = runScript('token-proxy.sh', {
      GITHUB_AUTH: 'pat',
      GITHUB_APP_ID: '',
      GITHUB_SECRET_VERSION: '2',
    });
    const deploy = one(pat, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    expect(flagValues(deploy, '--set-secrets')).toEqual(['GITHUB_TOKEN=gh-runner-github-credential:2']);
    expect(dictFlag(flagValues(deploy, '--set-env-vars')[0]!)).not.toHaveProperty('GITHUB_APP_ID');
  });

  it('keeps commas inside values with gcloud alternate delimiters', () => {
    const commas = runScript('token-proxy.sh', { ALLOWED_SCOPES: 'my-org;match:my-org/(a|b){1,2}' });
    const deploy = one(commas, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    expect(dictFlag(flagValues(deploy, '--set-env-vars')[0]!).ALLOWED_SCOPES).toBe(
      'my-org;match:my-org/(a|b){1,2}',
    );
    expect(deployedPolicy(commas).rules[0]!.scopes.map((scope) => scope.source)).toEqual([
      'my-org',
      'match:my-org/(a|b){1,2}',
    ]);
  });
});

describe('deploy/caller-policy.sh', () => {
  it('prints the policy token-proxy.sh deploys, without gcloud', () => {
    const printed = runScript('caller-policy.sh', {}, []);
    expect(printed.status).toBe(0);
    const policy = parsePolicy(printed.stdout);
    expect(policy.rules.map((rule) => rule.name)).toEqual(['presubmit', 'postsubmit']);
    expect(JSON.parse(printed.stdout)).toEqual(
      JSON.parse(
        dictFlag(
          flagValues(one(runScript('token-proxy.sh'), 'gcloud', 'run', 'deploy'), '--set-env-vars')[0]!,
        ).POLICY!,
      ),
    );
    expectClean(printed);
  });
});

describe('deploy/service-accounts.sh --dry-run', () => {
  it('creates one runner service account per trust level, besides the proxy, deleter and autoscaler accounts', () => {
    const run = runScript('service-accounts.sh');
    expect(run.status).toBe(0);
    expectClean(run);
    const created = find(run, 'gcloud', 'iam', 'service-accounts', 'create').map((c) => c[4]);
    expect(created).toEqual([
      'gh-token-proxy',
      'gh-instance-deleter',
      'gh-runner-presubmit',
      'gh-runner-postsubmit',
      'gh-autoscaler',
      'gh-autoscaler-scheduler',
    ]);
    // Created with no role: nothing here grants anything.
    expect(run.stdout).not.toContain('add-iam-policy-binding');
    // Without the autoscaler service, its two accounts are not made.
    const cpu = runScript('service-accounts.sh', { RUNNER_SCALING: 'cpu' });
    expect(find(cpu, 'gcloud', 'iam', 'service-accounts', 'create').map((c) => c[4])).toEqual(
      created.slice(0, 4),
    );
  });

  it('creates the build service account when BUILD_SA_NAME names one', () => {
    const run = runScript('service-accounts.sh', { BUILD_SA_NAME: 'gh-runner-build' });
    expect(find(run, 'gcloud', 'iam', 'service-accounts', 'create').map((c) => c[4])).toContain(
      'gh-runner-build',
    );
  });
});

describe('deploy/github-secret.sh --dry-run', () => {
  it.each([
    ['an App key', { GITHUB_APP_PRIVATE_KEY_FILE: KEY_FILE }, KEY_FILE],
    ['a PAT', { GITHUB_APP_PRIVATE_KEY_FILE: '', GITHUB_TOKEN_FILE: PAT_FILE }, PAT_FILE],
  ])('stores %s from its file path, readable by the proxy only', (_, env, file) => {
    const run = runScript('github-secret.sh', env);
    expect(run.status).toBe(0);
    expectClean(run);
    one(run, 'gcloud', 'secrets', 'create', 'gh-runner-github-credential');
    const add = find(run, 'gcloud', 'secrets', 'versions', 'add', 'gh-runner-github-credential');
    expect(add).toHaveLength(0); // it is captured: GITHUB_SECRET_VERSION="$(gcloud secrets versions add ...)"
    expect(run.stdout).toMatch(
      /^GITHUB_SECRET_VERSION="\$\(gcloud secrets versions add gh-runner-github-credential .*--data-file=\S+ '--format=value\(name\.basename\(\)\)'\)"$/m,
    );
    expect(run.stdout).toContain(`--data-file=${file} `);
    const grant = one(run, 'gcloud', 'secrets', 'add-iam-policy-binding', 'gh-runner-github-credential');
    expect(flagValues(grant, '--member')).toEqual([`serviceAccount:${PROXY_SA}`]);
    expect(flagValues(grant, '--role')).toEqual(['roles/secretmanager.secretAccessor']);
    // Granted on the secret, never on the project.
    expect(find(run, 'gcloud', 'projects', 'add-iam-policy-binding')).toHaveLength(0);
  });

  it('needs no credential file: a missing file or none at all still prints the commands', () => {
    const missing = runScript('github-secret.sh', {
      GITHUB_APP_PRIVATE_KEY_FILE: path.join(tmp, 'absent.pem'),
    });
    expect(missing.status).toBe(0);
    expect(missing.stdout).toContain(`--data-file=${path.join(tmp, 'absent.pem')}`);
    const none = runScript('github-secret.sh', { GITHUB_APP_PRIVATE_KEY_FILE: '' });
    expect(none.status).toBe(0);
    expect(none.stdout).toContain('--data-file="${GITHUB_APP_PRIVATE_KEY_FILE}"');
    const pat = runScript('github-secret.sh', { GITHUB_APP_PRIVATE_KEY_FILE: '', GITHUB_AUTH: 'pat' });
    expect(pat.stdout).toContain('--data-file="${GITHUB_TOKEN_FILE}"');
  });

  it('refuses a key file that is not a PEM private key, without printing it', () => {
    const notKey = path.join(tmp, 'not-a-key.pem');
    fs.writeFileSync(notKey, 'secret-looking-content-123');
    const run = runScript('github-secret.sh', { GITHUB_APP_PRIVATE_KEY_FILE: notKey });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('not a PEM private key');
    expect(run.stdout + run.stderr).not.toContain('secret-looking-content-123');
  });
});

describe('deploy/build-image.sh --dry-run', () => {
  const run = runScript('build-image.sh');

  it('stages the source in a bucket the script creates and names, not gs://PROJECT_cloudbuild', () => {
    expect(run.status).toBe(0);
    expectClean(run);
    const create = one(run, 'gcloud', 'storage', 'buckets', 'create', `gs://${PROJECT}-gh-runners-build`);
    expect(flagValues(create, '--location')).toEqual([REGION]);
    expect(create).toContain('--uniform-bucket-level-access');
    expect(create).toContain('--public-access-prevention');
    const submit = one(run, 'gcloud', 'builds', 'submit');
    expect(flagValues(submit, '--gcs-source-staging-dir')).toEqual([
      `gs://${PROJECT}-gh-runners-build/source`,
    ]);
    expect(flagValues(submit, '--gcs-log-dir')).toEqual([`gs://${PROJECT}-gh-runners-build/logs`]);
    expect(flagValues(submit, '--ignore-file')).toEqual([path.join(ROOT, 'deploy/container/gcloudignore')]);
    expect(run.stdout).not.toContain('_cloudbuild');
    // Without a build service account, Cloud Build's default is used and nothing is granted.
    expect(flagValues(submit, '--service-account')).toEqual([]);
    expect(run.stdout).not.toContain('add-iam-policy-binding');
  });

  it.each([
    [
      '--service-account',
      ['--dry-run', '--service-account', `builder@${PROJECT}.iam.gserviceaccount.com`],
      {},
    ],
    [
      'BUILD_SERVICE_ACCOUNT',
      ['--dry-run'],
      { BUILD_SERVICE_ACCOUNT: `builder@${PROJECT}.iam.gserviceaccount.com` },
    ],
  ])(
    'builds as the account %s names, granting it the bucket, the repository and log writing',
    (_, args, env) => {
      const built = runScript('build-image.sh', env, args);
      expect(built.status).toBe(0);
      const account = `builder@${PROJECT}.iam.gserviceaccount.com`;
      const submit = one(built, 'gcloud', 'builds', 'submit');
      expect(flagValues(submit, '--service-account')).toEqual([
        `projects/${PROJECT}/serviceAccounts/${account}`,
      ]);
      const bucket = one(
        built,
        'gcloud',
        'storage',
        'buckets',
        'add-iam-policy-binding',
        `gs://${PROJECT}-gh-runners-build`,
      );
      expect(flagValues(bucket, '--role')).toEqual(['roles/storage.objectAdmin']);
      const repository = one(
        built,
        'gcloud',
        'artifacts',
        'repositories',
        'add-iam-policy-binding',
        'gce-github-runners',
      );
      expect(flagValues(repository, '--role')).toEqual(['roles/artifactregistry.writer']);
      const project = one(built, 'gcloud', 'projects', 'add-iam-policy-binding');
      expect(flagValues(project, '--role')).toEqual(['roles/logging.logWriter']);
      for (const grant of [bucket, repository, project]) {
        expect(flagValues(grant, '--member')).toEqual([`serviceAccount:${account}`]);
      }
    },
  );

  it('refuses a build service account that is not a service account email', () => {
    const refused = runScript('build-image.sh', {}, [
      '--dry-run',
      '--service-account',
      'user:me@example.com',
    ]);
    expect(refused.status).not.toBe(0);
    expect(find(refused, 'gcloud', 'builds', 'submit')).toHaveLength(0);
  });
});

describe('deploy/instance-deleter.sh --dry-run', () => {
  const run = runScript('instance-deleter.sh');

  it('succeeds without gcloud and without allUsers', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run);
  });

  it('creates or updates the custom role with exactly the listed permissions', () => {
    for (const verb of ['create', 'update']) {
      const command = one(run, 'gcloud', 'iam', 'roles', verb, 'ghRunnerInstanceDeleter');
      expect(flagValues(command, '--permissions').map((p) => p.split(','))).toEqual([DELETER_PERMISSIONS]);
      expect(flagValues(command, '--project')).toEqual([PROJECT]);
    }
    const listed = fs
      .readFileSync(path.join(DEPLOY_DIR, 'deleter-role-permissions.txt'), 'utf8')
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim())
      .filter((line) => line !== '');
    expect(listed).toEqual(DELETER_PERMISSIONS);
  });

  it('binds the role to the deleter service account only, narrowed by an IAM condition to the runner MIGs', () => {
    const bindings = find(run, 'gcloud', 'projects', 'add-iam-policy-binding');
    expect(bindings).toHaveLength(1);
    expect(flagValues(bindings[0]!, '--member')).toEqual([`serviceAccount:${DELETER_SA}`]);
    expect(flagValues(bindings[0]!, '--role')).toEqual([`projects/${PROJECT}/roles/ghRunnerInstanceDeleter`]);
    const condition = dictFlag(flagValues(bindings[0]!, '--condition')[0]!);
    expect(condition.title).toBeTruthy();
    expect(condition.expression).toBe(
      "resource.type != 'compute.googleapis.com/Instance'" +
        " && resource.type != 'compute.googleapis.com/InstanceGroupManager'" +
        " && resource.type != 'compute.googleapis.com/RegionInstanceGroupManager'" +
        " || resource.name.extract('/instances/{name}').startsWith('gh-runner-')" +
        " || resource.name.extract('/instanceGroupManagers/{name}').startsWith('gh-runner-')",
    );
    // An unconditional binding from an earlier deploy is removed after the conditional one is in place.
    const removal = one(run, 'gcloud', 'projects', 'remove-iam-policy-binding');
    expect(removal).toContain('--condition=None');
    expect(run.stdout.indexOf('remove-iam-policy-binding')).toBeGreaterThan(
      run.stdout.indexOf('add-iam-policy-binding'),
    );
  });

  it('binds the role without a condition with DELETER_ROLE_CONDITION=none', () => {
    const plain = runScript('instance-deleter.sh', { DELETER_ROLE_CONDITION: 'none' });
    const binding = one(plain, 'gcloud', 'projects', 'add-iam-policy-binding');
    expect(flagValues(binding, '--condition')).toEqual(['None']);
    expect(find(plain, 'gcloud', 'projects', 'remove-iam-policy-binding')).toHaveLength(0);
  });

  it('refuses an ALLOWED_MIG_PATTERN the condition would contradict', () => {
    const refused = runScript('instance-deleter.sh', { ALLOWED_MIG_PATTERN: 'runners-.*' });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('RUNNER_MIG_PREFIX');
    expect(
      runScript('instance-deleter.sh', { ALLOWED_MIG_PATTERN: 'runners-.*', DELETER_ROLE_CONDITION: 'none' })
        .status,
    ).toBe(0);
  });

  it('deploys a 2nd gen function, internal only and IAM-checked, with the deleter entry point', () => {
    const deploy = one(run, 'gcloud', 'functions', 'deploy', 'gh-instance-deleter');
    for (const flag of [
      '--gen2',
      '--runtime=nodejs24',
      '--trigger-http',
      '--no-allow-unauthenticated',
      '--ingress-settings=internal-only',
      '--entry-point=deleteInstance',
    ]) {
      expect(deploy).toContain(flag);
    }
    expect(flagValues(deploy, '--service-account')).toEqual([DELETER_SA]);
    expect(dictFlag(flagValues(deploy, '--set-env-vars')[0]!)).toMatchObject({
      ALLOWED_MIG_PATTERN: 'gh-runner-.*',
      AUTH_AUDIENCE: `https://${REGION}-${PROJECT}.cloudfunctions.net/gh-instance-deleter`,
    });
    // The function outlives the deleter's request deadline (30 s by default).
    expect(flagValues(deploy, '--timeout')).toEqual(['60s']);
    expect(flagValues(deploy, '--build-service-account')).toEqual([]);
  });

  it.each([
    ['function', ['--dry-run'], ['gcloud', 'functions', 'deploy']],
    ['Cloud Run', ['--dry-run', '--target', 'run'], ['gcloud', 'run', 'deploy']],
  ])(
    'runs one %s instance serving requests concurrently: the per-MIG lock lives in one process',
    (_, args, command) => {
      const deploy = one(runScript('instance-deleter.sh', {}, args), ...command);
      expect(flagValues(deploy, '--max-instances')).toEqual(['1']);
      expect(flagValues(deploy, '--concurrency')).toEqual(['80']);
      // Concurrency above 1 needs a whole vCPU (https://cloud.google.com/functions/docs/configuring/concurrency).
      expect(flagValues(deploy, '--cpu')).toEqual(['1']);
      const wider = runScript('instance-deleter.sh', { DELETER_CONCURRENCY: '250' }, args);
      expect(flagValues(one(wider, ...command), '--concurrency')).toEqual(['250']);
    },
  );

  it.each([
    ['function', ['--dry-run'], ['gcloud', 'functions', 'deploy']],
    ['Cloud Run', ['--dry-run', '--target', 'run'], ['gcloud', 'run', 'deploy']],
  ])(
    'gives the %s 256 MiB and the runtime environment of services/instance-deleter/runtime.env',
    (_, args, command) => {
      const deploy = one(runScript('instance-deleter.sh', {}, args), ...command);
      expect(flagValues(deploy, '--memory')).toEqual(['256Mi']);
      const env = dictFlag(flagValues(deploy, '--set-env-vars')[0]!);
      expect(env.NODE_OPTIONS).toMatch(/^--max-semi-space-size=\d+ --max-old-space-size=\d+$/);
      expect(env.MALLOC_ARENA_MAX).toBe('2');
      expect(env.ALLOWED_MIG_PATTERN).toBe('gh-runner-.*');
      const larger = runScript('instance-deleter.sh', { DELETER_MEMORY: '512Mi' }, args);
      expect(flagValues(one(larger, ...command), '--memory')).toEqual(['512Mi']);
      expect(runScript('instance-deleter.sh', { DELETER_MEMORY: '512' }, args).status).not.toBe(0);
    },
  );

  it.each([
    [{ DELETER_CONCURRENCY: '0' }, 'DELETER_CONCURRENCY must be a whole number from 1 to 1000'],
    [{ DELETER_CONCURRENCY: '1001' }, 'DELETER_CONCURRENCY must be a whole number from 1 to 1000'],
    [{ DELETER_MAX_INSTANCES: '5' }, 'DELETER_MAX_INSTANCES is no longer supported'],
    [{ STABILIZE_TIMEOUT_SECONDS: '100' }, 'STABILIZE_TIMEOUT_SECONDS is no longer used'],
  ])('refuses %p', (env, message) => {
    const refused = runScript('instance-deleter.sh', env);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(message);
  });

  it('passes REQUEST_TIMEOUT_SECONDS on and times the function out 30 s after it', () => {
    const deploy = one(
      runScript('instance-deleter.sh', { REQUEST_TIMEOUT_SECONDS: '45' }),
      'gcloud',
      'functions',
      'deploy',
    );
    expect(flagValues(deploy, '--timeout')).toEqual(['75s']);
    expect(dictFlag(flagValues(deploy, '--set-env-vars')[0]!)).toMatchObject({
      REQUEST_TIMEOUT_SECONDS: '45',
    });
  });

  it('takes the runtime from one variable, by default the major version of .node-version', () => {
    const major = fs.readFileSync(path.join(ROOT, '.node-version'), 'utf8').trim().split('.')[0];
    expect(flagValues(one(run, 'gcloud', 'functions', 'deploy'), '--runtime')).toEqual([`nodejs${major}`]);
    const next = runScript('instance-deleter.sh', { FUNCTION_RUNTIME: 'nodejs26' });
    expect(flagValues(one(next, 'gcloud', 'functions', 'deploy'), '--runtime')).toEqual(['nodejs26']);
    expect(runScript('instance-deleter.sh', { FUNCTION_RUNTIME: 'node24' }).status).not.toBe(0);
  });

  it('defaults ALLOWED_MIG_PATTERN to exactly the trust levels MIGs', () => {
    const defaulted = runScript('instance-deleter.sh', { ALLOWED_MIG_PATTERN: '' });
    expect(defaulted.status).toBe(0);
    const env = dictFlag(flagValues(one(defaulted, 'gcloud', 'functions', 'deploy'), '--set-env-vars')[0]!);
    expect(env.ALLOWED_MIG_PATTERN).toBe('gh-runner-(presubmit|postsubmit)');
  });

  it('builds the function as the build service account when given one', () => {
    const account = `builder@${PROJECT}.iam.gserviceaccount.com`;
    const flagged = runScript('instance-deleter.sh', {}, ['--dry-run', '--build-service-account', account]);
    expect(flagValues(one(flagged, 'gcloud', 'functions', 'deploy'), '--build-service-account')).toEqual([
      `projects/${PROJECT}/serviceAccounts/${account}`,
    ]);
    // An account of one's own is used as it is; the scripts grant roles only to the one they created.
    expect(find(flagged, 'gcloud', 'projects', 'add-iam-policy-binding')).toHaveLength(1);
    const ours = runScript('instance-deleter.sh', { BUILD_SA_NAME: 'gh-runner-build' });
    const builder = find(ours, 'gcloud', 'projects', 'add-iam-policy-binding').find((b) =>
      flagValues(b, '--role').includes('roles/run.builder'),
    );
    expect(builder && flagValues(builder, '--member')).toEqual([
      `serviceAccount:gh-runner-build@${PROJECT}.iam.gserviceaccount.com`,
    ]);
    expect(flagValues(one(ours, 'gcloud', 'functions', 'deploy'), '--build-service-account')).toEqual([
      `projects/${PROJECT}/serviceAccounts/gh-runner-build@${PROJECT}.iam.gserviceaccount.com`,
    ]);
  });

  it('lets only the runner service accounts invoke the function', () => {
    const bindings = find(run, 'gcloud', 'functions', 'add-invoker-policy-binding');
    expect(bindings.flatMap((b) => flagValues(b, '--member'))).toEqual(RUNNER_MEMBERS);
  });

  it('deploys to Cloud Run from the image with --target run', () => {
    const onRun = runScript('instance-deleter.sh', {}, ['--dry-run', '--target', 'run']);
    expect(onRun.status).toBe(0);
    expectClean(onRun);
    const deploy = one(onRun, 'gcloud', 'run', 'deploy', 'gh-instance-deleter');
    expect(deploy).toContain('--ingress=internal');
    expect(deploy).toContain('--no-allow-unauthenticated');
    expect(flagValues(deploy, '--service-account')).toEqual([DELETER_SA]);
    expect(dictFlag(flagValues(deploy, '--set-env-vars')[0]!)).toMatchObject({
      SERVICE: 'instance-deleter',
      ALLOWED_MIG_PATTERN: 'gh-runner-.*',
    });
    expect(find(onRun, 'gcloud', 'functions', 'deploy')).toHaveLength(0);
    const bindings = find(onRun, 'gcloud', 'run', 'services', 'add-iam-policy-binding');
    expect(bindings.flatMap((b) => flagValues(b, '--member'))).toEqual(RUNNER_MEMBERS);
    expect(onRun.stdout).toContain('--update-env-vars=AUTH_AUDIENCE="${INSTANCE_DELETER_URL}"');
  });
});

/** The POOLS an autoscaler deploy sets, parsed by the service's own parser. */
function deployedPools(run: Run): ReturnType<typeof parsePoolConfig> {
  const deploy = one(run, 'gcloud', 'run', 'deploy', 'gh-autoscaler');
  const text = dictFlag(flagValues(deploy, '--set-env-vars')[0]!).POOLS;
  expect(text).toBeDefined();
  return parsePoolConfig(text!);
}

describe('deploy/autoscaler.sh --dry-run', () => {
  const run = runScript('autoscaler.sh');

  it('succeeds without gcloud or secrets; public, but only this service', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run, { publicService: 'gh-autoscaler' });
    expect(spawnSync('bash', ['-n'], { input: run.stdout }).status).toBe(0);
  });

  it('deploys one public instance with CPU always allocated, as its own service account', () => {
    const deploy = one(run, 'gcloud', 'run', 'deploy', 'gh-autoscaler');
    // GitHub delivers from the internet without a Google identity; the service checks every request.
    expect(deploy).toContain('--ingress=all');
    expect(deploy).toContain('--allow-unauthenticated');
    expect(deploy).not.toContain('--no-allow-unauthenticated');
    // The cap on each pool and the in-memory state hold within one process only.
    expect(flagValues(deploy, '--min-instances')).toEqual(['1']);
    expect(flagValues(deploy, '--max-instances')).toEqual(['1']);
    expect(deploy).toContain('--no-cpu-throttling');
    expect(flagValues(deploy, '--concurrency')).toEqual(['1000']);
    expect(flagValues(deploy, '--service-account')).toEqual([AUTOSCALER_SA]);
    expect(flagValues(deploy, '--image')).toEqual([
      `${REGION}-docker.pkg.dev/${PROJECT}/gce-github-runners/gce-github-runners:test`,
    ]);
    const env = dictFlag(flagValues(deploy, '--set-env-vars')[0]!);
    expect(env).toMatchObject({
      SERVICE: 'autoscaler',
      GOOGLE_CLOUD_PROJECT: PROJECT,
      GITHUB_APP_ID: '123456',
      RECONCILE_CALLERS: SCHEDULER_SA,
      AUTH_AUDIENCE: 'https://audience-pending.invalid',
    });
    for (const secret of [
      'GITHUB_APP_PRIVATE_KEY',
      'GITHUB_WEBHOOK_SECRET',
      'GITHUB_WEBHOOK_SECRET_PREVIOUS',
    ]) {
      expect(env).not.toHaveProperty(secret);
    }
    expect(env).not.toHaveProperty('FLEET_VIEWERS');
    // No other service is public, and nobody is granted the invoker role here.
    expect(find(run, 'gcloud', 'run', 'services', 'add-iam-policy-binding')).toHaveLength(0);
  });

  it('mounts the App key and the webhook secret at versions pinned before the deploy, never latest', () => {
    const lines = run.commands.map((words) => words.join(' '));
    const deployAt = lines.findIndex((l) => l.startsWith('gcloud run deploy'));
    for (const secret of ['gh-runner-github-credential', 'gh-runner-webhook-secret']) {
      const lookupAt = lines.findIndex((l) =>
        new RegExp(
          `^GITHUB_(WEBHOOK_)?SECRET_VERSION=\\$\\(gcloud secrets versions list ${secret} .*--filter=state=ENABLED .*--limit=1`,
        ).test(l),
      );
      expect(lookupAt).toBeGreaterThanOrEqual(0);
      expect(lookupAt).toBeLessThan(deployAt);
    }
    expect(flagValues(one(run, 'gcloud', 'run', 'deploy'), '--set-secrets')).toEqual([
      'GITHUB_APP_PRIVATE_KEY=gh-runner-github-credential:${GITHUB_SECRET_VERSION},' +
        'GITHUB_WEBHOOK_SECRET=gh-runner-webhook-secret:${GITHUB_WEBHOOK_SECRET_VERSION}',
    ]);
    expect(run.stdout).not.toContain(':latest');
    const pinned = runScript('autoscaler.sh', {
      GITHUB_SECRET_VERSION: '3',
      GITHUB_WEBHOOK_SECRET_VERSION: '5',
      GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION: '4',
    });
    expect(pinned.status).toBe(0);
    expect(find(pinned, 'gcloud', 'secrets', 'versions', 'list')).toHaveLength(0);
    expect(flagValues(one(pinned, 'gcloud', 'run', 'deploy'), '--set-secrets')).toEqual([
      'GITHUB_APP_PRIVATE_KEY=gh-runner-github-credential:3,GITHUB_WEBHOOK_SECRET=gh-runner-webhook-secret:5,' +
        'GITHUB_WEBHOOK_SECRET_PREVIOUS=gh-runner-webhook-secret:4',
    ]);
  });

  it.each([
    [{ GITHUB_WEBHOOK_SECRET_VERSION: 'latest' }, 'GITHUB_WEBHOOK_SECRET_VERSION'],
    [{ GITHUB_SECRET_VERSION: '0' }, 'GITHUB_SECRET_VERSION'],
    [{ GITHUB_WEBHOOK_SECRET_VERSION: '5', GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION: '5' }, 'PREVIOUS'],
    [{ GITHUB_WEBHOOK_SECRET_PREVIOUS_VERSION: 'latest' }, 'PREVIOUS'],
  ])('refuses the secret versions %j', (env, message) => {
    const refused = runScript('autoscaler.sh', env);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(message);
    expect(find(refused, 'gcloud', 'run', 'deploy')).toHaveLength(0);
  });

  it('lets its own account read the two secrets it mounts, and nobody else', () => {
    const bindings = find(run, 'gcloud', 'secrets', 'add-iam-policy-binding');
    expect(bindings.map((b) => b[3])).toEqual(['gh-runner-github-credential', 'gh-runner-webhook-secret']);
    for (const binding of bindings) {
      expect(flagValues(binding, '--member')).toEqual([`serviceAccount:${AUTOSCALER_SA}`]);
      expect(flagValues(binding, '--role')).toEqual(['roles/secretmanager.secretAccessor']);
    }
  });

  it('creates or updates the custom role with exactly the permissions of its file, nothing to create VMs directly', () => {
    for (const verb of ['create', 'update']) {
      const role = one(run, 'gcloud', 'iam', 'roles', verb, 'ghRunnerAutoscaler');
      expect(flagValues(role, '--permissions')[0]!.split(',')).toEqual(AUTOSCALER_PERMISSIONS);
      expect(flagValues(role, '--project')).toEqual([PROJECT]);
    }
    expect(run.stdout).not.toMatch(
      /compute\.instances\.(create|delete)|iam\.serviceAccounts\.actAs|compute\.disks\.create|compute\.subnetworks\.use|compute\.autoscalers/,
    );
  });

  it('binds the role to its own account only, narrowed to the runner MIGs, and drops an unconditional binding', () => {
    const binding = one(run, 'gcloud', 'projects', 'add-iam-policy-binding');
    expect(flagValues(binding, '--member')).toEqual([`serviceAccount:${AUTOSCALER_SA}`]);
    expect(flagValues(binding, '--role')).toEqual([`projects/${PROJECT}/roles/ghRunnerAutoscaler`]);
    const condition = dictFlag(flagValues(binding, '--condition')[0]!);
    expect(condition.expression).toContain(
      "resource.name.extract('/instanceGroupManagers/{name}').startsWith('gh-runner-')",
    );
    expect(condition.expression).toContain("'compute.googleapis.com/RegionInstanceGroupManager'");
    const unbind = one(run, 'gcloud', 'projects', 'remove-iam-policy-binding');
    expect(unbind).toContain('--condition=None');
    const none = runScript('autoscaler.sh', { AUTOSCALER_ROLE_CONDITION: 'none' });
    expect(one(none, 'gcloud', 'projects', 'add-iam-policy-binding')).toContain('--condition=None');
    expect(runScript('autoscaler.sh', { AUTOSCALER_ROLE_CONDITION: 'all' }).status).not.toBe(0);
  });

  it('sets AUTH_AUDIENCE to the URL read after the first deploy', () => {
    const lines = run.commands.map((words) => words.join(' '));
    const deployAt = lines.findIndex((l) => l.startsWith('gcloud run deploy gh-autoscaler'));
    const describeAt = lines.findIndex((l) =>
      /^AUTOSCALER_URL=\$\(gcloud run services describe gh-autoscaler .*--format=value\(status\.url\)/.test(
        l,
      ),
    );
    const updateAt = lines.findIndex((l) => l.startsWith('gcloud run services update gh-autoscaler'));
    expect(describeAt).toBeGreaterThan(deployAt);
    expect(updateAt).toBeGreaterThan(describeAt);
    expect(run.stdout).toContain('--update-env-vars=AUTH_AUDIENCE="${AUTOSCALER_URL}"');
  });

  it('calls POST /reconcile every minute with an identity token whose audience is set to the service URL', () => {
    for (const verb of ['create', 'update']) {
      const job = one(run, 'gcloud', 'scheduler', 'jobs', verb, 'http', 'gh-autoscaler-reconcile');
      expect(flagValues(job, '--schedule')).toEqual(['* * * * *']);
      expect(flagValues(job, '--location')).toEqual([REGION]);
      expect(flagValues(job, '--uri')).toEqual(['${AUTOSCALER_URL}/reconcile']);
      expect(flagValues(job, '--http-method')).toEqual(['POST']);
      expect(flagValues(job, '--oidc-service-account-email')).toEqual([SCHEDULER_SA]);
      // Explicit: the default audience would be the full URI, which the service's AUTH_AUDIENCE is not.
      expect(flagValues(job, '--oidc-token-audience')).toEqual(['${AUTOSCALER_URL}']);
      expect(flagValues(job, '--attempt-deadline')).toEqual(['300s']);
    }
    // The scheduler's account holds no role: Cloud Run checks no invoker on a public service.
    expect(run.stdout).not.toContain(`serviceAccount:${SCHEDULER_SA}`);
    expect(run.stdout).not.toContain('roles/run.invoker');
    const lines = run.commands.map((words) => words.join(' '));
    expect(lines.findIndex((l) => l.includes('gcloud scheduler jobs create'))).toBeGreaterThan(
      lines.findIndex((l) => l.startsWith('AUTOSCALER_URL=')),
    );
  });

  it('serves one pool per trust level, in order, with the level labels, group, MIG and VM names', () => {
    const pools = deployedPools(run);
    expect(pools.map((pool) => pool.name)).toEqual(['presubmit', 'postsubmit']);
    const [presubmit, postsubmit] = pools;
    expect(presubmit!.labels).toEqual(['self-hosted', 'linux', 'x64', 'presubmit']);
    expect(presubmit!.runnerGroup).toBe('presubmit');
    expect(presubmit!.runnerScope).toEqual({ kind: 'org', org: 'my-org' });
    expect(presubmit!.migs).toEqual([
      { project: PROJECT, scope: 'regions', location: REGION, name: 'gh-runner-presubmit' },
    ]);
    expect(presubmit!.maxRunners).toBe(10);
    expect(presubmit!.scopes.map((scope) => scope.source)).toEqual(['my-org', 'match:my-org/.*']);
    expect(postsubmit!.instanceNamePrefix).toBe('gh-runner-postsubmit');
  });

  it("requests VMs the token proxy's caller policy accepts, each for its own level only", () => {
    const policy = deployedPolicy(runScript('token-proxy.sh'));
    const [presubmitRule, postsubmitRule] = policy.rules;
    for (const [index, pool] of deployedPools(run).entries()) {
      for (const attempt of [1, 2, 999]) {
        const name = instanceNameFor(pool.instanceNamePrefix, 9_007_199_254_740_991, attempt);
        const email = index === 0 ? PRESUBMIT_SA : POSTSUBMIT_SA;
        expect(ruleMatchesCaller(index === 0 ? presubmitRule! : postsubmitRule!, caller(email, name))).toBe(
          true,
        );
        expect(ruleMatchesCaller(index === 0 ? postsubmitRule! : presubmitRule!, caller(email, name))).toBe(
          false,
        );
      }
    }
  });

  it('takes zonal MIGs, per-level caps and scopes, and a pools file', () => {
    const custom = runScript('autoscaler.sh', {
      RUNNER_ZONE: `${REGION}-b`,
      POOL_MAX_RUNNERS: '20',
      POOL_MAX_RUNNERS_POSTSUBMIT: '4',
      POOL_SCOPES_POSTSUBMIT: 'my-org/app',
      RUNNER_GROUP_POSTSUBMIT: 'release',
    });
    expect(custom.status).toBe(0);
    const [presubmit, postsubmit] = deployedPools(custom);
    expect(presubmit!.migs[0]).toMatchObject({ scope: 'zones', location: `${REGION}-b` });
    expect(presubmit!.maxRunners).toBe(20);
    expect(postsubmit!.maxRunners).toBe(4);
    expect(postsubmit!.scopes.map((scope) => scope.source)).toEqual(['my-org/app']);
    expect(postsubmit!.runnerGroup).toBe('release');

    const file = path.join(tmp, 'pools.json');
    const pools = {
      pools: [
        {
          name: 'gpu',
          scopes: ['my-org'],
          labels: ['self-hosted', 'gpu'],
          migs: [
            `projects/${PROJECT}/regions/${REGION}/instanceGroupManagers/gh-runner-gpu`,
            `projects/${PROJECT}/zones/europe-west4-a/instanceGroupManagers/gh-runner-gpu-eu`,
          ],
          runnerScope: 'my-org',
          maxRunners: 2,
          instanceNamePrefix: 'gh-runner-gpu',
        },
      ],
    };
    fs.writeFileSync(file, JSON.stringify(pools, null, 2));
    const fromFile = runScript('autoscaler.sh', { POOLS_FILE: file });
    expect(fromFile.status).toBe(0);
    expect(deployedPools(fromFile).map((pool) => pool.migs.length)).toEqual([2]);
    const notPools = path.join(tmp, 'not-pools.json');
    fs.writeFileSync(notPools, '{"rules": []}');
    expect(runScript('autoscaler.sh', { POOLS_FILE: notPools }).stderr).toContain('not a pools document');
  });

  it.each([
    [{ POOL_SCOPES: 'enterprise:big' }, 'POOL_SCOPES'],
    [{ ALLOWED_SCOPES: '', POOL_SCOPES: '' }, 'POOL_SCOPES'],
    [{ POOL_MAX_RUNNERS: '0' }, 'POOL_MAX_RUNNERS'],
    [{ POOL_MAX_RUNNERS_PRESUBMIT: '10001' }, 'POOL_MAX_RUNNERS'],
    [{ RUNNER_SCOPE: 'enterprise:big' }, 'RUNNER_SCOPE'],
    [{ RUNNER_MIG_PREFIX: 'gh-runners-for-the-whole-organization-' }, 'over 39 characters'],
    [{ FLEET_VIEWERS: 'not an email' }, 'FLEET_VIEWERS'],
    [{ RUNNER_SCALING: 'cpu' }, 'RUNNER_SCALING=cpu'],
    [{ GITHUB_AUTH: 'pat' }, 'GitHub App'],
    [{ GITHUB_APP_ID: '' }, 'GITHUB_APP_ID'],
    [{ AUTOSCALER_PUBLIC_ACCESS: 'internal' }, 'AUTOSCALER_PUBLIC_ACCESS'],
    [{ RECONCILE_SCHEDULE: 'every minute' }, 'RECONCILE_SCHEDULE'],
    [{ AUTOSCALER_TIMEOUT_SECONDS: '5' }, 'AUTOSCALER_TIMEOUT_SECONDS'],
  ])('refuses %j before changing anything', (env, message) => {
    const refused = runScript('autoscaler.sh', env);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(message);
    expect(refused.stdout).not.toMatch(/^(gcloud|if )/m);
  });

  it('passes FLEET_VIEWERS and the optional settings on', () => {
    const viewers = `status@${PROJECT}.iam.gserviceaccount.com,ops@example.com`;
    const more = runScript('autoscaler.sh', {
      FLEET_VIEWERS: viewers,
      GITHUB_INSTALLATION_ID: '42',
      BATCH_WINDOW_MS: '500',
      STUCK_CREATING_SECONDS: '900',
      MAX_REDELIVERIES_PER_RUN: '20',
    });
    const env = dictFlag(flagValues(one(more, 'gcloud', 'run', 'deploy'), '--set-env-vars')[0]!);
    expect(env).toMatchObject({
      FLEET_VIEWERS: viewers,
      GITHUB_INSTALLATION_ID: '42',
      BATCH_WINDOW_MS: '500',
      STUCK_CREATING_SECONDS: '900',
      MAX_REDELIVERIES_PER_RUN: '20',
    });
  });

  it('makes the service public without allUsers when the organization refuses it', () => {
    const noBinding = runScript('autoscaler.sh', { AUTOSCALER_PUBLIC_ACCESS: 'no-invoker-iam-check' });
    expect(noBinding.status).toBe(0);
    const deploy = one(noBinding, 'gcloud', 'run', 'deploy', 'gh-autoscaler');
    expect(deploy).toContain('--no-invoker-iam-check');
    expect(deploy).toContain('--ingress=all');
    expect(deploy).not.toContain('--allow-unauthenticated');
  });
});

describe("GitHub's write budget, split across the services (deploy/lib.sh)", () => {
  /** Points a minute a deployed service may spend on writes: 5 per write, every instance at full pace. */
  const writePoints = (deploy: string[]) => {
    const env = dictFlag(flagValues(deploy, '--set-env-vars')[0]!);
    const interval = Number(env.GITHUB_WRITE_INTERVAL_MS);
    const instances = Number(flagValues(deploy, '--max-instances')[0]);
    expect(interval).toBeGreaterThan(0);
    expect(instances).toBeGreaterThan(0);
    return (60_000 / interval) * 5 * instances;
  };
  const budget = (env: Record<string, string> = {}) => ({
    proxy: writePoints(one(runScript('token-proxy.sh', env), 'gcloud', 'run', 'deploy', 'gh-token-proxy')),
    autoscaler: writePoints(one(runScript('autoscaler.sh', env), 'gcloud', 'run', 'deploy')),
  });

  it.each([
    ['the defaults', {}, 600, 150],
    ['one proxy instance', { PROXY_MAX_INSTANCES: '1' }, 600, 150],
    ['five proxy instances', { PROXY_MAX_INSTANCES: '5' }, 600, 150],
    [
      'shares of their own',
      { GITHUB_POINTS_PROXY: '700', GITHUB_POINTS_AUTOSCALER: '100', GITHUB_POINTS_READS: '100' },
      700,
      100,
    ],
  ])(
    'sets each service a write spacing within its share, all within 900 points a minute: %s',
    (_, env, proxyShare, autoscalerShare) => {
      const spent = budget(env);
      expect(spent.proxy).toBeLessThanOrEqual(proxyShare);
      expect(spent.autoscaler).toBeLessThanOrEqual(autoscalerShare);
      // The shares are used, not wasted: within one write a minute of each.
      expect(spent.proxy).toBeGreaterThan(
        proxyShare - 5 * Number((env as Record<string, string>).PROXY_MAX_INSTANCES ?? 3),
      );
      expect(spent.autoscaler).toBeGreaterThan(autoscalerShare - 5);
      expect(spent.proxy + spent.autoscaler).toBeLessThanOrEqual(900);
    },
  );

  it('spaces the proxy 1500 ms and the autoscaler 2000 ms apart by default', () => {
    const proxy = one(runScript('token-proxy.sh'), 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    const autoscaler = one(runScript('autoscaler.sh'), 'gcloud', 'run', 'deploy');
    expect(dictFlag(flagValues(proxy, '--set-env-vars')[0]!).GITHUB_WRITE_INTERVAL_MS).toBe('1500');
    expect(dictFlag(flagValues(autoscaler, '--set-env-vars')[0]!).GITHUB_WRITE_INTERVAL_MS).toBe('2000');
  });

  it.each(['token-proxy.sh', 'autoscaler.sh'])('%s refuses shares that add up to more than 900', (script) => {
    const refused = runScript(script, { GITHUB_POINTS_PROXY: '800', GITHUB_POINTS_AUTOSCALER: '150' });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/more than the 900 GitHub allows an installation/);
  });

  it('takes a longer GITHUB_WRITE_INTERVAL_MS for the proxy, and refuses a shorter one than its share allows', () => {
    const slower = one(
      runScript('token-proxy.sh', { GITHUB_WRITE_INTERVAL_MS: '3000' }),
      'gcloud',
      'run',
      'deploy',
      'gh-token-proxy',
    );
    expect(dictFlag(flagValues(slower, '--set-env-vars')[0]!).GITHUB_WRITE_INTERVAL_MS).toBe('3000');
    const faster = runScript('token-proxy.sh', { GITHUB_WRITE_INTERVAL_MS: '350' });
    expect(faster.status).not.toBe(0);
    expect(faster.stderr).toMatch(/use at least 1500/);
  });
});

describe('deploy/autoscaler-pools.sh', () => {
  it('prints the pools autoscaler.sh deploys, without gcloud', () => {
    const printed = runScript('autoscaler-pools.sh', {}, []);
    expect(printed.status).toBe(0);
    expect(parsePoolConfig(printed.stdout).map((pool) => pool.name)).toEqual(['presubmit', 'postsubmit']);
    const deploy = one(runScript('autoscaler.sh'), 'gcloud', 'run', 'deploy');
    expect(JSON.parse(printed.stdout)).toEqual(
      JSON.parse(dictFlag(flagValues(deploy, '--set-env-vars')[0]!).POOLS!),
    );
    expectClean(printed);
  });
});

describe('deploy/webhook-secret.sh --dry-run', () => {
  const run = runScript('webhook-secret.sh');

  it('adds the file as a version of its own secret, never printing it', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run);
    expect(run.stdout).toMatch(
      /^gcloud secrets describe gh-runner-webhook-secret .*\|\| gcloud secrets create gh-runner-webhook-secret .*--replication-policy=automatic/m,
    );
    expect(run.stdout).toMatch(
      /^GITHUB_WEBHOOK_SECRET_VERSION="\$\(gcloud secrets versions add gh-runner-webhook-secret .*--data-file=\S*webhook-secret\.txt /m,
    );
    // The autoscaler's deploy grants who may read it; nobody is granted anything here.
    expect(run.stdout).not.toContain('add-iam-policy-binding');
  });

  it('needs no file in a dry run', () => {
    for (const file of ['', path.join(tmp, 'absent-secret.txt')]) {
      const result = runScript('webhook-secret.sh', { GITHUB_WEBHOOK_SECRET_FILE: file });
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('gcloud secrets versions add gh-runner-webhook-secret');
    }
  });

  it.each([
    ['a trailing newline', `${'a'.repeat(32)}\n`],
    ['a space', `${'a'.repeat(16)} ${'b'.repeat(16)}`],
    ['under 16 characters', 'a'.repeat(15)],
  ])('refuses a secret with %s, without printing it', (_what, content) => {
    const file = path.join(tmp, `bad-secret-${content.length}.txt`);
    fs.writeFileSync(file, content, { mode: 0o600 });
    const refused = runScript('webhook-secret.sh', { GITHUB_WEBHOOK_SECRET_FILE: file });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('GITHUB_WEBHOOK_SECRET_FILE');
    expect(refused.stdout + refused.stderr).not.toContain(content.trim());
  });
});

/** The log messages of the autoscaler's source (every string literal there). */
const AUTOSCALER_SOURCE = fs
  .readdirSync(path.join(ROOT, 'services/autoscaler/src'))
  .map((f) => fs.readFileSync(path.join(ROOT, 'services/autoscaler/src', f), 'utf8'))
  .join('\n');

/** The messages the metrics may count, as the service logs them (one list: services/autoscaler/src/log-messages.ts). */
const LOGGED_MESSAGES: readonly string[] = Object.values(METRIC_LOG_MESSAGES);

describe('deploy/monitoring', () => {
  const metrics = metricFiles().map((file) => ({
    name: path.basename(file, '.json'),
    config: JSON.parse(fs.readFileSync(file, 'utf8')) as {
      filter: string;
      metricDescriptor: { metricKind: string; valueType: string; labels?: Array<{ key: string }> };
      labelExtractors?: Record<string, string>;
      valueExtractor?: string;
    },
  }));
  const policies = policyFiles().map((file) => ({
    name: path.basename(file, '.json'),
    policy: JSON.parse(fs.readFileSync(file, 'utf8')) as {
      displayName: string;
      userLabels: Record<string, string>;
      documentation: { content: string; mimeType: string };
      conditions: Array<Record<string, { filter: string; duration: string }>>;
    },
  }));

  it('counts only the autoscaler service own lines, by a message it logs', () => {
    for (const { name, config } of metrics) {
      expect(name).toMatch(/^gh-autoscaler-[a-z-]+$/);
      expect(config.filter).toMatch(
        /^resource\.type="cloud_run_revision" AND jsonPayload\.service="autoscaler" AND /,
      );
      const messages = [...config.filter.matchAll(/"([^"]+)"/g)]
        .map((m) => m[1]!)
        .filter((m) => !['cloud_run_revision', 'autoscaler', 'redelivering delivery'].includes(m));
      expect(messages.length).toBeGreaterThan(0);
      for (const message of messages)
        expect({ name, message, logged: LOGGED_MESSAGES.includes(message) }).toEqual({
          name,
          message,
          logged: true,
        });
      for (const label of config.metricDescriptor.labels ?? []) {
        expect(config.labelExtractors?.[label.key]).toMatch(/^EXTRACT\(jsonPayload\.[A-Za-z]+\)$/);
      }
    }
    // The problems reconcile.ts reports for a refused redelivery start with this text.
    expect(AUTOSCALER_SOURCE).toContain('`redelivering delivery ${');
    // Each listed message is logged through the list, and no message the list holds is also spelled out.
    for (const [key, message] of Object.entries(METRIC_LOG_MESSAGES)) {
      expect({ key, used: AUTOSCALER_SOURCE.includes(`METRIC_LOG_MESSAGES.${key}`) }).toEqual({
        key,
        used: true,
      });
      expect(AUTOSCALER_SOURCE.split(`'${message}'`).length - 1).toBe(1); // its one definition
    }
  });

  it('measures job wait from the numeric waitSeconds of the job started line', () => {
    const wait = metrics.find((m) => m.name === 'gh-autoscaler-job-wait')!.config;
    expect(wait.metricDescriptor.valueType).toBe('DISTRIBUTION');
    expect(wait.valueExtractor).toBe('EXTRACT(jsonPayload.waitSeconds)');
  });

  it('has one labelled policy per file, each watching a metric deploy/monitoring/metrics/ creates', () => {
    expect(policies.map((p) => p.name)).toEqual(
      expect.arrayContaining([
        'jobs-without-vm',
        'vm-creation-failures',
        'failed-deliveries',
        'redelivery-errors',
        'job-wait',
      ]),
    );
    for (const { name, policy } of policies) {
      expect(policy.userLabels).toEqual({ app: 'gce-github-runners', alert: name });
      expect(policy.displayName).toMatch(/^gh-autoscaler: /);
      expect(policy.documentation.mimeType).toBe('text/markdown');
      expect(policy.conditions.length).toBeGreaterThan(0);
      for (const condition of policy.conditions) {
        const body = condition.conditionThreshold ?? condition.conditionAbsent;
        expect(body).toBeDefined();
        const metric = /metric\.type="logging\.googleapis\.com\/user\/([^"]+)"/.exec(body!.filter)?.[1];
        expect(metrics.map((m) => m.name)).toContain(metric);
        expect(body!.filter).toContain('resource.type="cloud_run_revision"');
      }
    }
  });
});

describe('deploy/autoscaler-alerts.sh --dry-run', () => {
  const run = runScript('autoscaler-alerts.sh', {
    NOTIFICATION_CHANNELS: `projects/${PROJECT}/notificationChannels/123,projects/${PROJECT}/notificationChannels/456`,
  });

  it('creates or updates each log-based metric from its file', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run);
    expect(spawnSync('bash', ['-n'], { input: run.stdout }).status).toBe(0);
    for (const verb of ['create', 'update']) {
      const made = find(run, 'gcloud', 'logging', 'metrics', verb);
      expect(made.map((c) => c[4])).toEqual(metricFiles().map((f) => path.basename(f, '.json')));
      expect(made.map((c) => flagValues(c, '--config-from-file')[0])).toEqual(metricFiles());
    }
  });

  it('finds each policy by its labels, updates it or creates it, with the notification channels', () => {
    const creates = find(run, 'gcloud', 'monitoring', 'policies', 'create');
    expect(creates.map((c) => flagValues(c, '--policy-from-file')[0])).toEqual(policyFiles());
    for (const create of creates) {
      expect(flagValues(create, '--notification-channels')).toEqual([
        `projects/${PROJECT}/notificationChannels/123,projects/${PROJECT}/notificationChannels/456`,
      ]);
    }
    const updates = find(run, 'gcloud', 'monitoring', 'policies', 'update');
    expect(updates.map((c) => c[4])).toEqual(
      policyFiles().map(
        (f) => `\${ALERT_POLICY_${path.basename(f, '.json').toUpperCase().replace(/-/g, '_')}}`,
      ),
    );
    expect(run.stdout).toMatch(
      /^ALERT_POLICY_JOBS_WITHOUT_VM="\$\(gcloud monitoring policies list --project=my-project '--filter=userLabels\.app=gce-github-runners AND userLabels\.alert=jobs-without-vm' '--format=value\(name\)'\)"$/m,
    );
    // Metrics before policies: a policy naming a metric that does not exist is refused.
    expect(run.stdout.lastIndexOf('gcloud logging metrics')).toBeLessThan(
      run.stdout.indexOf('gcloud monitoring policies'),
    );
  });

  it('refuses a notification channel that is not a channel name', () => {
    const refused = runScript('autoscaler-alerts.sh', { NOTIFICATION_CHANNELS: 'ops@example.com' });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('NOTIFICATION_CHANNELS');
  });
});

describe('deploy/container/entrypoint.sh', () => {
  it('starts exactly the services of services/entry-points.ts', () => {
    const script = fs.readFileSync(path.join(DEPLOY_DIR, 'container/entrypoint.sh'), 'utf8');
    const names = /\n {2}([a-z| -]+)\) ;;\n/
      .exec(script)![1]!
      .split('|')
      .map((n) => n.trim());
    expect(names.sort()).toEqual(Object.keys(SERVICE_ENTRY_POINTS).sort());
    for (const name of names) {
      expect(SERVICE_ENTRY_POINTS[name as keyof typeof SERVICE_ENTRY_POINTS].main).toBe(
        `dist/services/${name}/src/main.js`,
      );
    }
  });
});

describe('deploy/instance-template.sh --dry-run', () => {
  const env = { TOKEN_PROXY_URL: 'https://gh-token-proxy-abc-uc.a.run.app' };
  const run = runScript('instance-template.sh', env, ['--dry-run', '--trust-level', 'presubmit']);

  it('succeeds without gcloud', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run);
  });

  it("runs VMs as the level's service account with no OAuth scopes and no external address", () => {
    const create = one(run, 'gcloud', 'compute', 'instance-templates', 'create', 'gh-runner-test');
    expect(flagValues(create, '--service-account')).toEqual([PRESUBMIT_SA]);
    expect(create).toContain('--no-scopes');
    expect(flagValues(create, '--scopes')).toEqual([]);
    expect(create).toContain('--no-address');
    expect(create).toContain('--shielded-secure-boot');
    expect(flagValues(create, '--labels')).toEqual([
      'app=gce-github-runners,github-runner-trust-level=presubmit',
    ]);
    const post = runScript('instance-template.sh', env, ['--dry-run', '--trust-level', 'postsubmit']);
    const postCreate = one(post, 'gcloud', 'compute', 'instance-templates', 'create');
    expect(flagValues(postCreate, '--service-account')).toEqual([POSTSUBMIT_SA]);
  });

  it("carries the attributes the VM scripts read, with the level's group and labels and a pinned runner", () => {
    const create = one(run, 'gcloud', 'compute', 'instance-templates', 'create', 'gh-runner-test');
    const metadata = dictFlag(flagValues(create, '--metadata')[0]!);
    expect(metadata).toMatchObject({
      'github-runner-scope': 'my-org',
      'github-runner-labels': 'self-hosted,linux,x64,presubmit',
      'github-runner-group': 'presubmit',
      'github-runner-mode': 'jit',
      'github-url': 'https://github.com',
      'token-proxy-url': 'https://gh-token-proxy-abc-uc.a.run.app',
      'instance-deleter-url': `https://${REGION}-${PROJECT}.cloudfunctions.net/gh-instance-deleter`,
      'github-runner-version': '2.337.0',
      'github-runner-sha256': '70920811a4f8ad4328818682bca5c6469c1c942fab52448868071d0063816613',
      'block-project-ssh-keys': 'TRUE',
    });
  });

  it("gives each level's VMs the trust rule their job-started hook enforces", () => {
    const rule = (result: ReturnType<typeof runScript>) => {
      const metadata = dictFlag(
        flagValues(one(result, 'gcloud', 'compute', 'instance-templates', 'create'), '--metadata')[0]!,
      );
      return Object.fromEntries(Object.entries(metadata).filter(([key]) => /^github-runner-allow/.test(key)));
    };
    expect(rule(run)).toEqual({ 'github-runner-allowed-events': 'pull_request,merge_group' });
    const post = runScript('instance-template.sh', env, ['--dry-run', '--trust-level', 'postsubmit']);
    expect(rule(post)).toEqual({ 'github-runner-allowed-events': 'push,schedule,workflow_dispatch' });
    const narrowed = runScript(
      'instance-template.sh',
      {
        ...env,
        RUNNER_ALLOWED_REFS_POSTSUBMIT: 'refs/heads/main refs/tags/v[0-9.]+',
        RUNNER_ALLOWED_REPOSITORIES_POSTSUBMIT: 'my-org/app',
        RUNNER_ALLOW_FORK_PULL_REQUESTS_POSTSUBMIT: 'false',
      },
      ['--dry-run', '--trust-level', 'postsubmit'],
    );
    expect(rule(narrowed)).toEqual({
      'github-runner-allowed-events': 'push,schedule,workflow_dispatch',
      'github-runner-allowed-refs': 'refs/heads/main refs/tags/v[0-9.]+',
      'github-runner-allowed-repositories': 'my-org/app',
      'github-runner-allow-fork-pull-requests': 'false',
    });
  });

  it('names the template after the level when TEMPLATE_NAME is not set', () => {
    const named = runScript('instance-template.sh', { ...env, TEMPLATE_NAME: '' }, [
      '--dry-run',
      '--trust-level',
      'postsubmit',
    ]);
    const create = one(named, 'gcloud', 'compute', 'instance-templates', 'create');
    expect(create[4]).toMatch(/^gh-runner-postsubmit-\d{8}-\d{6}$/);
  });

  it('takes a runner release only with its checksum, and never latest', () => {
    const sha = 'ab'.repeat(32);
    const pinned = runScript(
      'instance-template.sh',
      { ...env, RUNNER_VERSION: '2.400.1', RUNNER_SHA256: sha.toUpperCase() },
      ['--dry-run', '--trust-level', 'presubmit'],
    );
    expect(pinned.status).toBe(0);
    const metadata = dictFlag(
      flagValues(one(pinned, 'gcloud', 'compute', 'instance-templates', 'create'), '--metadata')[0]!,
    );
    expect(metadata['github-runner-version']).toBe('2.400.1');
    expect(metadata['github-runner-sha256']).toBe(sha);
    for (const [extra, message] of [
      [{ RUNNER_VERSION: '2.400.1' }, 'needs RUNNER_SHA256'],
      [{ RUNNER_VERSION: 'latest', RUNNER_SHA256: sha }, 'latest cannot be checked'],
      [{ RUNNER_SHA256: 'abc' }, 'not a SHA-256'],
    ] as const) {
      const refused = runScript('instance-template.sh', { ...env, ...extra }, [
        '--dry-run',
        '--trust-level',
        'presubmit',
      ]);
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain(message);
      expect(find(refused, 'gcloud', 'compute', 'instance-templates', 'create')).toHaveLength(0);
    }
  });

  it('needs --trust-level when there are several levels, and refuses an unknown one', () => {
    const missing = runScript('instance-template.sh', env);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('--trust-level');
    const unknown = runScript('instance-template.sh', env, ['--dry-run', '--trust-level', 'trusted']);
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain('not in TRUST_LEVELS');
    const ruleless = runScript('instance-template.sh', { ...env, TRUST_LEVELS: 'ci' });
    expect(ruleless.status).not.toBe(0);
    expect(ruleless.stderr).toContain('RUNNER_ALLOWED_EVENTS_CI is needed');
    const single = runScript('instance-template.sh', {
      ...env,
      TRUST_LEVELS: 'ci',
      RUNNER_ALLOWED_EVENTS_CI: 'push',
    });
    expect(single.status).toBe(0);
    expect(
      flagValues(one(single, 'gcloud', 'compute', 'instance-templates', 'create'), '--service-account'),
    ).toEqual([`gh-runner-ci@${PROJECT}.iam.gserviceaccount.com`]);
  });

  it('embeds deploy/vm/ in a startup script that installs and starts the runner units', () => {
    const create = one(run, 'gcloud', 'compute', 'instance-templates', 'create', 'gh-runner-test');
    const [entry] = flagValues(create, '--metadata-from-file');
    expect(entry).toMatch(/^startup-script=/);
    const script = entry!.slice('startup-script='.length);
    expect(spawnSync('bash', ['-n', script]).status).toBe(0);
    const text = fs.readFileSync(script, 'utf8');
    expect(text).toContain('systemctl enable github-runner.service github-runner-idle.timer');
    const bundle = /^VM_BUNDLE='([A-Za-z0-9+/=]+)'$/m.exec(text)![1]!;
    const listing = spawnSync('tar', ['-tzf', '-'], {
      input: Buffer.from(bundle, 'base64'),
      encoding: 'utf8',
    });
    for (const file of [
      './register.sh',
      './delete-self.sh',
      './deregister.sh',
      './idle-check.sh',
      './lib.sh',
      './systemd/github-runner.service',
      './systemd/github-runner-deregister.service',
      './systemd/github-runner-idle.timer',
    ]) {
      expect(listing.stdout.split('\n')).toContain(file);
    }
  });

  it('reads the proxy URL from Cloud Run when not given', () => {
    const lookup = runScript('instance-template.sh', {}, ['--dry-run', '--trust-level', 'presubmit']);
    expect(lookup.status).toBe(0);
    expect(lookup.stdout).toMatch(/^TOKEN_PROXY_URL="\$\(gcloud run services describe gh-token-proxy /m);
    expect(lookup.stdout).toContain(`token-proxy-url='"\${TOKEN_PROXY_URL}"'`);
  });
});

describe('deploy/runner-mig.sh --dry-run', () => {
  const args = ['--dry-run', '--trust-level', 'presubmit', '--template', 'gh-runner-presubmit-t1'];

  it('creates a regional MIG that never redistributes, with no Compute autoscaler by default', () => {
    const run = runScript('runner-mig.sh', {}, args);
    expect(run.status).toBe(0);
    expectClean(run);
    const create = one(
      run,
      'gcloud',
      'compute',
      'instance-groups',
      'managed',
      'create',
      'gh-runner-presubmit',
    );
    expect(flagValues(create, '--region')).toEqual([REGION]);
    expect(flagValues(create, '--instance-redistribution-type')).toEqual(['NONE']);
    expect(flagValues(create, '--target-distribution-shape')).toEqual(['BALANCED']);
    expect(flagValues(create, '--template')).toEqual(['gh-runner-presubmit-t1']);
    expect(flagValues(create, '--base-instance-name')).toEqual(['gh-runner-presubmit']);
    expect(flagValues(create, '--size')).toEqual(['0']);
    // An existing MIG is told the same, then rolled to the template without touching running VMs.
    const update = one(
      run,
      'gcloud',
      'compute',
      'instance-groups',
      'managed',
      'update',
      'gh-runner-presubmit',
    );
    expect(flagValues(update, '--instance-redistribution-type')).toEqual(['NONE']);
    const roll = one(
      run,
      'gcloud',
      'compute',
      'instance-groups',
      'managed',
      'rolling-action',
      'start-update',
    );
    expect(flagValues(roll, '--type')).toEqual(['opportunistic']);
    expect(flagValues(roll, '--version')).toEqual(['template=gh-runner-presubmit-t1']);
    expect(run.stdout).not.toMatch(/--instance-redistribution-type=PROACTIVE|--type=proactive/i);
    // The autoscaler service sizes the MIG: no Compute autoscaler is set, and an existing one is removed,
    // only when the MIG has one (stop-autoscaling fails on a MIG without).
    expect(find(run, 'gcloud', 'compute', 'instance-groups', 'managed', 'set-autoscaling')).toHaveLength(0);
    const stop = one(run, 'gcloud', 'compute', 'instance-groups', 'managed', 'stop-autoscaling');
    expect(stop[5]).toBe('gh-runner-presubmit');
    expect(flagValues(stop, '--region')).toEqual([REGION]);
    const line = run.stdout.split('\n').find((l) => l.includes('stop-autoscaling'))!;
    expect(line).toMatch(
      /then .*MIG_AUTOSCALER="\$\(gcloud compute instance-groups managed describe gh-runner-presubmit .*'--format=value\(status\.autoscaler\)'\)"; if \[\[ -n "\$\{MIG_AUTOSCALER\}" \]\]; then gcloud compute instance-groups managed stop-autoscaling gh-runner-presubmit [^;]*; fi; else gcloud compute instance-groups managed create /,
    );
    expect(spawnSync('bash', ['-n'], { input: run.stdout }).status).toBe(0);
  });

  it('gives the MIG an autoscaler that only scales out with RUNNER_SCALING=cpu', () => {
    const run = runScript('runner-mig.sh', { RUNNER_SCALING: 'cpu' }, args);
    expect(run.status).toBe(0);
    expectClean(run);
    const autoscaling = one(run, 'gcloud', 'compute', 'instance-groups', 'managed', 'set-autoscaling');
    expect(flagValues(autoscaling, '--mode')).toEqual(['only-scale-out']);
    expect(flagValues(autoscaling, '--max-num-replicas')).toEqual(['10']);
    expect(run.stdout).not.toContain('stop-autoscaling');
    const refused = runScript('runner-mig.sh', { RUNNER_SCALING: 'autoscaler' }, args);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('RUNNER_SCALING must be autoscaler-service or cpu');
  });

  it('takes EVEN, refuses the shapes an autoscaled MIG cannot have', () => {
    const even = runScript('runner-mig.sh', { RUNNER_MIG_DISTRIBUTION_SHAPE: 'even' }, args);
    const create = one(even, 'gcloud', 'compute', 'instance-groups', 'managed', 'create');
    expect(flagValues(create, '--target-distribution-shape')).toEqual(['EVEN']);
    expect(flagValues(create, '--instance-redistribution-type')).toEqual(['NONE']);
    for (const shape of ['ANY', 'ANY_SINGLE_ZONE']) {
      const refused = runScript('runner-mig.sh', { RUNNER_MIG_DISTRIBUTION_SHAPE: shape }, args);
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('BALANCED or EVEN');
    }
  });

  it('creates a zonal MIG with RUNNER_ZONE', () => {
    const zonal = runScript('runner-mig.sh', { RUNNER_ZONE: `${REGION}-b` }, args);
    const create = one(zonal, 'gcloud', 'compute', 'instance-groups', 'managed', 'create');
    expect(flagValues(create, '--zone')).toEqual([`${REGION}-b`]);
    expect(flagValues(create, '--region')).toEqual([]);
    expect(flagValues(create, '--instance-redistribution-type')).toEqual([]);
    expect(runScript('runner-mig.sh', { RUNNER_ZONE: 'europe-west1-b' }, args).status).not.toBe(0);
  });

  it('needs a template and a known level', () => {
    expect(
      runScript('runner-mig.sh', { TEMPLATE_NAME: '' }, ['--dry-run', '--trust-level', 'presubmit']).status,
    ).not.toBe(0);
    expect(
      runScript('runner-mig.sh', {}, ['--dry-run', '--trust-level', 'nightly', '--template', 't']).status,
    ).not.toBe(0);
  });
});

describe('deploy/bake-image.sh --dry-run', () => {
  const run = runScript('bake-image.sh', {
    BAKE_VM: 'gh-runner-bake-test',
    IMAGE_NAME: 'gh-runner-2-337-0-test',
  });

  it('bakes from a VM with no identity, then records the runner release on the image', () => {
    expect(run.status).toBe(0);
    expectClean(run);
    expect(spawnSync('bash', ['-n'], { input: run.stdout }).status).toBe(0);
    const vm = one(run, 'gcloud', 'compute', 'instances', 'create', 'gh-runner-bake-test');
    expect(vm).toContain('--no-service-account');
    expect(vm).toContain('--no-scopes');
    expect(flagValues(vm, '--zone')).toEqual([`${REGION}-b`]);
    expect(dictFlag(flagValues(vm, '--metadata')[0]!)).toMatchObject({
      'gce-github-runners-bake': 'TRUE',
      'github-runner-version': '2.337.0',
      'github-runner-sha256': '70920811a4f8ad4328818682bca5c6469c1c942fab52448868071d0063816613',
    });
    expect(flagValues(vm, '--metadata-from-file')[0]).toMatch(/^startup-script=/);
    expect(run.stdout).toMatch(/gcloud compute instances describe gh-runner-bake-test .*== TERMINATED/);
    const image = one(run, 'gcloud', 'compute', 'images', 'create', 'gh-runner-2-337-0-test');
    expect(flagValues(image, '--source-disk')).toEqual(['gh-runner-bake-test']);
    expect(flagValues(image, '--family')).toEqual(['gh-runner']);
    expect(flagValues(image, '--labels')).toEqual(['app=gce-github-runners,github-runner-version=2-337-0']);
    expect(flagValues(image, '--description')[0]).toContain('actions/runner 2.337.0 (sha256 70920811');
    const order = ['instances create', 'images create', 'instances delete'].map((verb) =>
      run.stdout.indexOf(`gcloud compute ${verb}`),
    );
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(order[0]).toBeGreaterThan(0);
  });

  it('bakes another release only with its checksum', () => {
    const refused = runScript('bake-image.sh', { RUNNER_VERSION: '2.400.0' });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('RUNNER_SHA256');
  });
});

describe('deploy/teardown.sh', () => {
  it('deletes nothing without --yes', () => {
    const refused = runScript('teardown.sh', {}, []);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('--yes');
  });

  it('prints, in a dry run, a deletion for everything the scripts create, the autoscaler and MIGs first', () => {
    const run = runScript('teardown.sh');
    expect(run.status).toBe(0);
    expectClean(run);
    expect(spawnSync('bash', ['-n'], { input: run.stdout }).status).toBe(0);
    const deleted = [
      ['scheduler', 'jobs', 'delete', 'gh-autoscaler-reconcile'],
      ['run', 'services', 'delete', 'gh-autoscaler'],
      ['run', 'services', 'delete', 'gh-fleet-status'],
      ['compute', 'instance-groups', 'managed', 'delete', 'gh-runner-presubmit'],
      ['compute', 'instance-groups', 'managed', 'delete', 'gh-runner-postsubmit'],
      ['compute', 'instance-templates', 'delete'],
      ['functions', 'delete', 'gh-instance-deleter'],
      ['run', 'services', 'delete', 'gh-instance-deleter'],
      ['run', 'services', 'delete', 'gh-token-proxy'],
      ['secrets', 'delete', 'gh-runner-github-credential'],
      ['secrets', 'delete', 'gh-runner-webhook-secret'],
      ['projects', 'remove-iam-policy-binding', PROJECT, `--member=serviceAccount:${DELETER_SA}`],
      ['iam', 'roles', 'delete', 'ghRunnerInstanceDeleter'],
      ['projects', 'remove-iam-policy-binding', PROJECT, `--member=serviceAccount:${AUTOSCALER_SA}`],
      ['iam', 'roles', 'delete', 'ghRunnerAutoscaler'],
      ['projects', 'remove-iam-policy-binding', PROJECT, `--member=serviceAccount:${STATUS_SA}`],
      ['iam', 'roles', 'delete', 'ghRunnerFleetViewer'],
      ['iam', 'service-accounts', 'delete', PROXY_SA],
      ['iam', 'service-accounts', 'delete', DELETER_SA],
      ['iam', 'service-accounts', 'delete', PRESUBMIT_SA],
      ['iam', 'service-accounts', 'delete', POSTSUBMIT_SA],
      ['iam', 'service-accounts', 'delete', AUTOSCALER_SA],
      ['iam', 'service-accounts', 'delete', SCHEDULER_SA],
      ['iam', 'service-accounts', 'delete', STATUS_SA],
      ['monitoring', 'policies', 'delete'],
      ['logging', 'metrics', 'delete', 'gh-autoscaler-failed-deliveries'],
      ['artifacts', 'repositories', 'delete', 'gce-github-runners'],
      ['storage', 'rm', '--recursive', `gs://${PROJECT}-gh-runners-build`],
    ];
    let previous = -1;
    for (const words of deleted) {
      const at = run.stdout.indexOf(`gcloud ${words.join(' ')}`);
      expect(at).toBeGreaterThan(previous);
      previous = at;
    }
    for (const unbind of find(run, 'gcloud', 'projects', 'remove-iam-policy-binding')) {
      expect(unbind).toContain('--all');
    }
    // Every log-based metric autoscaler-alerts.sh creates, and only the policies it labels.
    const metrics = find(run, 'gcloud', 'logging', 'metrics', 'delete').map((c) => c[4]);
    expect(metrics.sort()).toEqual(
      metricFiles()
        .map((f) => path.basename(f, '.json'))
        .sort(),
    );
    expect(run.stdout).toMatch(
      /^ALERT_POLICIES="\$\(gcloud monitoring policies list --project=my-project --filter=userLabels\.app=gce-github-runners '--format=value\(name\)' 2>\/dev\/null \|\| true\)"$/m,
    );
    expect(run.stdout).toMatch(
      /^for ITEM in \$\{TEMPLATES\}; do gcloud compute instance-templates delete "\$\{ITEM\}" /m,
    );
    expect(run.stdout).not.toContain('images delete');
  });

  it('deletes baked images only when asked', () => {
    const run = runScript('teardown.sh', {}, ['--dry-run', '--include-baked-images']);
    expect(run.stdout).toMatch(/^BAKED_IMAGES="\$\(gcloud compute images list .*--filter=family=gh-runner/m);
    expect(run.stdout).toContain('gcloud compute images delete "${ITEM}"');
  });
});

describe('deploy/all.sh --dry-run', () => {
  const run = runScript('all.sh');

  it('prints every step as one bash script, with no secret, no public service but the autoscaler and no gcloud call', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run, { publicService: 'gh-autoscaler' });
    expect(spawnSync('bash', ['-n'], { input: run.stdout }).status).toBe(0);
    for (const step of [
      'gcloud services enable',
      'gcloud builds submit',
      'gcloud run deploy gh-token-proxy',
      'gcloud secrets versions add gh-runner-webhook-secret',
      'gcloud run deploy gh-autoscaler',
      'gcloud scheduler jobs create http gh-autoscaler-reconcile',
      'gcloud logging metrics create',
      'gcloud monitoring policies create',
    ]) {
      expect(run.stdout).toContain(step);
    }
  });

  it('deploys the autoscaler after the deleter and before the MIGs, which get no Compute autoscaler', () => {
    const order = [
      'gcloud run deploy gh-token-proxy',
      'gcloud functions deploy gh-instance-deleter',
      '# ---- deploy/webhook-secret.sh',
      'gcloud run deploy gh-autoscaler',
      '# ---- deploy/autoscaler-alerts.sh',
      'gcloud compute instance-templates create',
      'gcloud compute instance-groups managed create',
    ].map((text) => run.stdout.indexOf(text));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(find(run, 'gcloud', 'compute', 'instance-groups', 'managed', 'set-autoscaling')).toHaveLength(0);
    expect(find(run, 'gcloud', 'compute', 'instance-groups', 'managed', 'stop-autoscaling')).toHaveLength(2);
    // The services the autoscaler needs are enabled, and its two accounts created.
    expect(one(run, 'gcloud', 'services', 'enable')).toEqual(
      expect.arrayContaining([
        'cloudscheduler.googleapis.com',
        'monitoring.googleapis.com',
        'logging.googleapis.com',
      ]),
    );
    const accounts = find(run, 'gcloud', 'iam', 'service-accounts', 'create').map((c) => c[4]);
    expect(accounts).toEqual(expect.arrayContaining(['gh-autoscaler', 'gh-autoscaler-scheduler']));
  });

  it('with RUNNER_SCALING=cpu, deploys no autoscaler, scheduler, webhook secret or alerts, and autoscales MIGs on CPU', () => {
    const cpu = runScript('all.sh', { RUNNER_SCALING: 'cpu' });
    expect(cpu.stderr).toBe('');
    expect(cpu.status).toBe(0);
    expectClean(cpu);
    expect(cpu.stdout).not.toMatch(/gh-autoscaler|webhook-secret|scheduler|gcloud monitoring|gcloud logging/);
    expect(find(cpu, 'gcloud', 'compute', 'instance-groups', 'managed', 'set-autoscaling')).toHaveLength(2);
    expect(cpu.stdout).not.toContain('stop-autoscaling');
  });

  it('adds no webhook secret version without GITHUB_WEBHOOK_SECRET_FILE, and pins the newest stored one', () => {
    const noFile = runScript('all.sh', { GITHUB_WEBHOOK_SECRET_FILE: '' });
    expect(noFile.status).toBe(0);
    expect(noFile.stdout).not.toContain('deploy/webhook-secret.sh');
    expect(noFile.stdout).toMatch(
      /^GITHUB_WEBHOOK_SECRET_VERSION="\$\(gcloud secrets versions list gh-runner-webhook-secret .*--filter=state=ENABLED/m,
    );
  });

  it('deploys the status page after the autoscaler when STATUS_VIEWERS is set, and lets its account read /fleet', () => {
    expect(run.stdout).not.toContain('deploy/fleet-status.sh');
    const withPage = runScript('all.sh', {
      STATUS_VIEWERS: 'domain:example.com',
      FLEET_VIEWERS: 'someone@my-project.iam.gserviceaccount.com',
    });
    expect(withPage.stderr).toBe('');
    expect(withPage.status).toBe(0);
    expectClean(withPage, { publicService: 'gh-autoscaler' });
    expect(spawnSync('bash', ['-n'], { input: withPage.stdout }).status).toBe(0);
    const order = [
      'gcloud run deploy gh-autoscaler',
      '# ---- deploy/autoscaler-alerts.sh',
      '# ---- deploy/fleet-status.sh',
      'gcloud beta run deploy gh-fleet-status',
      'gcloud compute instance-templates create',
    ].map((text) => withPage.stdout.indexOf(text));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    // The autoscaler is deployed knowing the status page's account, beside the viewers already named.
    const autoscaler = one(withPage, 'gcloud', 'run', 'deploy', 'gh-autoscaler');
    expect(autoscaler.join(' ')).toContain(
      `FLEET_VIEWERS=someone@my-project.iam.gserviceaccount.com,${STATUS_SA}`,
    );
    expect(one(withPage, 'gcloud', 'beta', 'run', 'deploy', 'gh-fleet-status')).toContain('--iap');
    // Not with RUNNER_SCALING=cpu (no autoscaler to read), nor with --runners-only.
    const cpu = runScript('all.sh', { RUNNER_SCALING: 'cpu', STATUS_VIEWERS: 'domain:example.com' });
    expect(cpu.status).toBe(0);
    expect(cpu.stdout).not.toContain('fleet-status');
    const runners = runScript('all.sh', { STATUS_VIEWERS: 'domain:example.com' }, [
      '--dry-run',
      '--runners-only',
    ]);
    expect(runners.stdout).not.toContain('fleet-status');
  });

  it('refuses a PAT with the autoscaler service before any step', () => {
    const pat = runScript('all.sh', { GITHUB_AUTH: 'pat', GITHUB_APP_ID: '' });
    expect(pat.status).not.toBe(0);
    expect(pat.stderr).toContain('RUNNER_SCALING=cpu');
    expect(pat.stdout).not.toContain('gcloud');
  });

  it('makes a template and a MIG per trust level, the MIG on its own template', () => {
    const templates = find(run, 'gcloud', 'compute', 'instance-templates', 'create').map((c) => c[4]!);
    expect(templates).toHaveLength(2);
    expect(templates[0]).toMatch(/^gh-runner-presubmit-\d{8}-\d{6}$/);
    expect(templates[1]).toMatch(/^gh-runner-postsubmit-\d{8}-\d{6}$/);
    const migs = find(run, 'gcloud', 'compute', 'instance-groups', 'managed', 'create');
    expect(migs.map((c) => c[5])).toEqual(['gh-runner-presubmit', 'gh-runner-postsubmit']);
    expect(migs.map((c) => flagValues(c, '--template')[0])).toEqual(templates);
  });

  it('accepts --target run and passes it to the deleter and the templates', () => {
    for (const args of [
      ['--dry-run', '--target', 'run'],
      ['--dry-run', '--target=run'],
    ]) {
      const onRun = runScript('all.sh', {}, args);
      expect(onRun.stderr).toBe('');
      expect(onRun.status).toBe(0);
      expect(find(onRun, 'gcloud', 'functions', 'deploy')).toHaveLength(0);
      one(onRun, 'gcloud', 'run', 'deploy', 'gh-instance-deleter');
      expect(onRun.stdout).toMatch(
        /^INSTANCE_DELETER_URL="\$\(gcloud run services describe gh-instance-deleter /m,
      );
    }
    expect(runScript('all.sh', {}, ['--dry-run', '--target', 'lambda']).status).not.toBe(0);
  });

  it('passes --skip-build to the deleter only, and --skip-template stops before the VMs', () => {
    const skipped = runScript('all.sh', {}, ['--dry-run', '--skip-build', '--skip-template']);
    expect(skipped.status).toBe(0);
    expect(skipped.stdout).not.toContain('npm --prefix');
    expect(find(skipped, 'gcloud', 'compute', 'instance-templates', 'create')).toHaveLength(0);
    expect(find(skipped, 'gcloud', 'compute', 'instance-groups', 'managed', 'create')).toHaveLength(0);
  });

  it('makes only the templates and MIGs with --runners-only', () => {
    const runners = runScript('all.sh', {}, ['--dry-run', '--runners-only']);
    expect(runners.status).toBe(0);
    expect(runners.stdout).not.toMatch(
      /gcloud (services|secrets|builds|run deploy|functions|iam|scheduler|logging|monitoring)/,
    );
    expect(find(runners, 'gcloud', 'compute', 'instance-templates', 'create')).toHaveLength(2);
    expect(find(runners, 'gcloud', 'compute', 'instance-groups', 'managed', 'create')).toHaveLength(2);
    expect(runScript('all.sh', {}, ['--dry-run', '--runners-only', '--skip-template']).status).not.toBe(0);
  });

  it('needs no key file and leaves no file behind', () => {
    const scratch = fs.mkdtempSync(path.join(tmp, 'scratch-'));
    const result = spawnSync('bash', [path.join(DEPLOY_DIR, 'all.sh'), '--dry-run'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        PATH: `${stubDir}:${process.env.PATH ?? ''}`,
        HOME: scratch,
        TMPDIR: scratch,
        ...BASE_ENV,
        GITHUB_APP_PRIVATE_KEY_FILE: path.join(scratch, 'no-such-key.pem'),
        DEPLOY_WORK_DIR: '',
      },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(entries(scratch)).toEqual([]);
    expect(result.stdout).toContain(
      '--metadata-from-file=startup-script="${DEPLOY_WORK_DIR}"/startup-script.sh',
    );
  });

  it('lets the environment win over --env-file', () => {
    const file = path.join(tmp, 'precedence.env');
    fs.writeFileSync(file, `PROJECT_ID=file-project\nREGION=europe-west1\nRUNNER_SCOPE=file-org\n`);
    const result = spawnSync(
      'bash',
      [path.join(DEPLOY_DIR, 'service-accounts.sh'), '--dry-run', '--env-file', file],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: {
          PATH: `${stubDir}:${process.env.PATH ?? ''}`,
          HOME: tmp,
          TMPDIR: tmp,
          PROJECT_ID: 'env-project',
        },
      },
    );
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('--project=env-project');
    expect(result.stdout).not.toContain('file-project');
    // What the environment leaves unset comes from the file.
    const fromFile = spawnSync(
      'bash',
      [
        path.join(DEPLOY_DIR, 'runner-mig.sh'),
        '--dry-run',
        '--env-file',
        file,
        '--trust-level',
        'presubmit',
        '--template',
        't',
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: { PATH: `${stubDir}:${process.env.PATH ?? ''}`, HOME: tmp, TMPDIR: tmp },
      },
    );
    expect(fromFile.stdout).toContain('--project=file-project --region=europe-west1');
  });
});

describe('dry runs leave no temporary files', () => {
  it.each([
    ['instance-template.sh', ['--dry-run', '--trust-level', 'presubmit']],
    ['instance-deleter.sh', ['--dry-run']],
    ['bake-image.sh', ['--dry-run']],
    ['autoscaler.sh', ['--dry-run']],
    ['autoscaler-alerts.sh', ['--dry-run']],
    ['webhook-secret.sh', ['--dry-run']],
  ])('%s', (script, args) => {
    const scratch = fs.mkdtempSync(path.join(tmp, 'scratch-'));
    const result = spawnSync('bash', [path.join(DEPLOY_DIR, script), ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        PATH: `${stubDir}:${process.env.PATH ?? ''}`,
        HOME: scratch,
        TMPDIR: scratch,
        ...BASE_ENV,
        DEPLOY_WORK_DIR: '',
      },
    });
    expect(result.status).toBe(0);
    expect(entries(scratch)).toEqual([]);
  });
});

describe('--help', () => {
  it.each([
    'all.sh',
    'enable-apis.sh',
    'service-accounts.sh',
    'github-secret.sh',
    'build-image.sh',
    'token-proxy.sh',
    'caller-policy.sh',
    'instance-deleter.sh',
    'instance-template.sh',
    'runner-mig.sh',
    'bake-image.sh',
    'teardown.sh',
    'webhook-secret.sh',
    'autoscaler.sh',
    'autoscaler-pools.sh',
    'autoscaler-alerts.sh',
  ])('%s explains itself and needs no variable', (script) => {
    const result = spawnSync('bash', [path.join(DEPLOY_DIR, script), '--help'], {
      encoding: 'utf8',
      env: { PATH: `${stubDir}:${process.env.PATH ?? ''}` },
    });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: deploy\//);
  });
});

describe('docs/deploy.md', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');

  it('names only deploy scripts that exist, and every one of them', () => {
    const named = new Set([...doc.matchAll(/deploy\/([a-z-]+\.sh)/g)].map((m) => m[1]!));
    for (const script of named) expect(fs.existsSync(path.join(DEPLOY_DIR, script))).toBe(true);
    for (const script of fs.readdirSync(DEPLOY_DIR).filter((f) => f.endsWith('.sh') && f !== 'lib.sh')) {
      expect(named).toContain(script);
    }
  });

  it('asks for no Node.js older than .node-version where a reader would copy it', () => {
    const major = Number(fs.readFileSync(path.join(ROOT, '.node-version'), 'utf8').split('.')[0]);
    for (const match of doc.matchAll(/nodejs(\d+)|`node` (\d+)|node:(\d+)/g)) {
      expect(Number(match[1] ?? match[2] ?? match[3])).toBeGreaterThanOrEqual(major);
    }
  });
});

describe('shellcheck', () => {
  const available = spawnSync('shellcheck', ['--version']).status === 0;
  const scripts = [
    ...fs
      .readdirSync(DEPLOY_DIR)
      .filter((f) => f.endsWith('.sh'))
      .map((f) => path.join('deploy', f)),
    ...fs
      .readdirSync(path.join(DEPLOY_DIR, 'container'))
      .filter((f) => f.endsWith('.sh'))
      .map((f) => path.join('deploy/container', f)),
    'scripts/measure-image.sh',
  ];

  // CI installs shellcheck; locally the check is skipped, visibly, when it is missing.
  (available || process.env.CI === 'true' ? it : it.skip)('finds nothing in the deploy scripts', () => {
    expect(available).toBe(true);
    const result = spawnSync('shellcheck', ['-x', ...scripts], { cwd: ROOT, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});

/**
 * Without --dry-run, against a gcloud stand-in that records its arguments and answers like a project:
 * a resource exists once it has been created or deployed, a service's URL is fixed, the invoker policy
 * lists whatever STUB_INVOKERS says and the project policy STUB_PROJECT_BINDINGS.
 */
describe('a real run against a recording gcloud stand-in', () => {
  const fakeDir = path.join(tmp, 'fake-gcloud');
  const fakeLog = path.join(tmp, 'fake-gcloud.log');
  const SERVICE_URL = 'https://gh-token-proxy-abc123-uc.a.run.app';
  fs.mkdirSync(fakeDir);
  fs.writeFileSync(
    path.join(fakeDir, 'gcloud'),
    `#!/usr/bin/env bash
printf '%s\\n' "$*" >> '${fakeLog}'
created() { grep -q -- "$1" '${fakeLog}'; }
case "$*" in
  "run services describe "*)
    if [[ -n "\${STUB_EXISTS:-}" ]] || created "run deploy $4 "; then echo '${SERVICE_URL}'; else exit 1; fi ;;
  "run services get-iam-policy "*) printf '%s\\n' \${STUB_INVOKERS:-} ;;
  "projects get-iam-policy "*) printf '%b' "\${STUB_PROJECT_BINDINGS:-}" ;;
  "iam roles describe roles/editor "*) echo 'compute.instances.get;run.routes.invoke;storage.objects.get' ;;
  "iam roles describe roles/viewer "*) echo 'compute.instances.get;storage.objects.get' ;;
  "iam roles describe invoker "*) [[ "$*" == *--project=my-project* ]] && echo 'run.routes.invoke' ;;
  "secrets versions list "*) echo 7 ;;
  "secrets versions add "*) echo 8 ;;
  "compute instance-groups managed describe "*status.autoscaler*)
    [[ -n "\${STUB_EXISTS:-}" ]] || exit 1; printf '%s\n' "\${STUB_MIG_AUTOSCALER:-}" ;;
  *" describe "*) [[ -n "\${STUB_EXISTS:-}" ]] || exit 1 ;;
esac
exit 0
`,
    { mode: 0o755 },
  );

  function realRun(
    script: string,
    env: Record<string, string> = {},
    args: string[] = [],
  ): Run & { calls: string[] } {
    fs.rmSync(fakeLog, { force: true });
    const result = spawnSync('bash', [path.join(DEPLOY_DIR, script), ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: `${fakeDir}:${process.env.PATH ?? ''}`, HOME: tmp, TMPDIR: tmp, ...BASE_ENV, ...env },
    });
    const calls = fs.existsSync(fakeLog) ? fs.readFileSync(fakeLog, 'utf8').trim().split('\n') : [];
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, commands: [], calls };
  }

  const invokers = RUNNER_MEMBERS.join(' ');

  it('deploys a new proxy, reads its URL and sets AUTH_AUDIENCE to it, with the newest secret version pinned', () => {
    const run = realRun('token-proxy.sh', { STUB_INVOKERS: invokers });
    expect(run.stderr).not.toContain('error');
    expect(run.status).toBe(0);
    const verbs = run.calls.map((c) => c.split(' ').slice(0, 3).join(' '));
    expect(verbs).toEqual([
      'secrets versions list',
      'run services describe',
      'run deploy gh-token-proxy',
      'run services describe',
      'run services update',
      'run services add-iam-policy-binding',
      'run services add-iam-policy-binding',
      'run services get-iam-policy',
      'projects get-iam-policy my-project',
    ]);
    expect(run.calls[2]).toContain('AUTH_AUDIENCE=https://audience-pending.invalid');
    expect(run.calls[2]).toContain('--set-secrets=GITHUB_APP_PRIVATE_KEY=gh-runner-github-credential:7 ');
    expect(run.calls[4]).toContain(`--update-env-vars=AUTH_AUDIENCE=${SERVICE_URL}`);
    expect(run.stdout.trim()).toBe(`TOKEN_PROXY_URL=${SERVICE_URL}`);
  });

  it('deploys an existing proxy once, with its URL as the audience', () => {
    const run = realRun('token-proxy.sh', {
      STUB_EXISTS: '1',
      STUB_INVOKERS: invokers,
      GITHUB_SECRET_VERSION: '3',
    });
    expect(run.status).toBe(0);
    const deploys = run.calls.filter((c) => c.startsWith('run deploy'));
    expect(deploys).toHaveLength(1);
    expect(deploys[0]).toContain(`AUTH_AUDIENCE=${SERVICE_URL}`);
    expect(run.calls.filter((c) => c.startsWith('run services update'))).toHaveLength(0);
    expect(run.calls.filter((c) => c.startsWith('secrets versions list'))).toHaveLength(0);
  });

  it('stops when someone else also holds roles/run.invoker, naming the command with --project', () => {
    const run = realRun('token-proxy.sh', { STUB_INVOKERS: `${invokers} allUsers` });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('allUsers also holds roles/run.invoker');
    expect(run.stderr).toContain(
      `remove-iam-policy-binding gh-token-proxy --project=${PROJECT} --region=${REGION} --member=allUsers --role=roles/run.invoker`,
    );
  });

  it('warns about principals that can invoke through project-level roles, and only those', () => {
    const bindings = [
      'roles/editor\\tserviceAccount:326694433618-compute@developer.gserviceaccount.com',
      'roles/editor\\tserviceAccount:326694433618@cloudservices.gserviceaccount.com',
      'roles/viewer\\tuser:auditor@example.com',
      `projects/${PROJECT}/roles/invoker\\tgroup:ops@example.com`,
      'roles/editor\\tserviceAccount:service-326694433618@serverless-robot-prod.iam.gserviceaccount.com',
    ].join('\\n');
    const run = realRun('token-proxy.sh', { STUB_INVOKERS: invokers, STUB_PROJECT_BINDINGS: bindings });
    expect(run.status).toBe(0);
    expect(run.stderr).toContain('can invoke every Cloud Run service');
    expect(run.stderr).toContain(
      'serviceAccount:326694433618-compute@developer.gserviceaccount.com (roles/editor)',
    );
    expect(run.stderr).toContain(`group:ops@example.com (projects/${PROJECT}/roles/invoker)`);
    expect(run.stderr).not.toContain('auditor@example.com');
    expect(run.stderr).not.toContain('cloudservices');
    expect(run.stderr).not.toContain('serverless-robot-prod');
    expect(run.stderr).toContain('A project of its own');
    // Each role is looked up once.
    expect(run.calls.filter((c) => c.startsWith('iam roles describe roles/editor'))).toHaveLength(1);
  });

  it('prints the secret version it added, for token-proxy.sh to pin', () => {
    const run = realRun('github-secret.sh');
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe('GITHUB_SECRET_VERSION=8');
    expect(run.calls.find((c) => c.startsWith('secrets versions add'))).toContain(`--data-file=${KEY_FILE}`);
  });

  it('needs the credential file in a real run', () => {
    const run = realRun('github-secret.sh', { GITHUB_APP_PRIVATE_KEY_FILE: path.join(tmp, 'absent.pem') });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('cannot read');
    expect(run.calls).toEqual([]);
  });

  it('stages the function source with main at the deleter function entry', () => {
    const work = path.join(tmp, 'real-work');
    const run = realRun('instance-deleter.sh', { DEPLOY_WORK_DIR: work, STUB_INVOKERS: invokers }, [
      '--skip-build',
    ]);
    expect(run.stderr).not.toContain('missing');
    expect(run.status).toBe(0);
    const source = path.join(work, 'function-source');
    const pkg = JSON.parse(fs.readFileSync(path.join(source, 'package.json'), 'utf8'));
    expect(pkg.main).toBe(SERVICE_ENTRY_POINTS['instance-deleter'].function);
    // Cloud Build runs gcp-build after installing the dependencies: it fills the compile cache with the
    // runtime's Node; the one built here is not staged. Run here, with the dependencies beside it, it writes one.
    expect(pkg.scripts).toEqual({
      'gcp-build': 'node dist/services/instance-deleter/src/prime-compile-cache.js',
    });
    const cache = path.join(source, 'dist/services/instance-deleter/.node-compile-cache');
    expect(fs.existsSync(cache)).toBe(false);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(source, 'node_modules'));
    const primed = spawnSync(process.execPath, pkg.scripts['gcp-build'].split(' ').slice(1), {
      cwd: source,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '' },
    });
    expect(primed.stderr).toBe('');
    expect(primed.status).toBe(0);
    expect(fs.readdirSync(cache)).toEqual([expect.stringContaining(process.version)]);
    expect(fs.existsSync(path.join(source, pkg.main))).toBe(true);
    expect(fs.existsSync(path.join(source, 'dist/shared/src/index.js'))).toBe(true);
    // The deleter reaches shared/ as `#shared`: the staged package.json must still map it into dist/.
    expect(fs.existsSync(path.join(source, pkg.imports['#shared'].default))).toBe(true);
    expect(fs.existsSync(path.join(source, 'dist/services/token-proxy'))).toBe(false);
    expect(fs.existsSync(path.join(source, 'package-lock.json'))).toBe(true);
    const deploy = run.calls.find((c) => c.startsWith('functions deploy'))!;
    expect(deploy).toContain(`--source=${source}`);
    expect(run.stdout.trim()).toBe(
      `INSTANCE_DELETER_URL=https://${REGION}-${PROJECT}.cloudfunctions.net/gh-instance-deleter`,
    );
  });

  it('removes the temporary function source when it exits', () => {
    const scratch = fs.mkdtempSync(path.join(tmp, 'scratch-'));
    const run = realRun(
      'instance-deleter.sh',
      { DEPLOY_WORK_DIR: '', TMPDIR: scratch, STUB_INVOKERS: invokers },
      ['--skip-build'],
    );
    expect(run.status).toBe(0);
    const deploy = run.calls.find((c) => c.startsWith('functions deploy'))!;
    expect(deploy).toContain(`--source=${scratch}/gce-github-runners-deploy.`);
    expect(entries(scratch)).toEqual([]);
  });

  it('deploys a new autoscaler, sets its audience, then points the scheduler job at the URL it read', () => {
    const run = realRun('autoscaler.sh');
    expect(run.stderr).not.toContain('error');
    expect(run.status).toBe(0);
    const verbs = run.calls.map((c) => c.split(' ').slice(0, 3).join(' '));
    expect(verbs).toEqual([
      'secrets versions list',
      'secrets versions list',
      'iam roles describe',
      'iam roles create',
      'projects add-iam-policy-binding my-project',
      'projects remove-iam-policy-binding my-project',
      'secrets add-iam-policy-binding gh-runner-github-credential',
      'secrets add-iam-policy-binding gh-runner-webhook-secret',
      'run services describe',
      'run deploy gh-autoscaler',
      'run services describe',
      'run services update',
      'scheduler jobs describe',
      'scheduler jobs create',
    ]);
    expect(run.calls[9]).toContain(
      '--set-secrets=GITHUB_APP_PRIVATE_KEY=gh-runner-github-credential:7,GITHUB_WEBHOOK_SECRET=gh-runner-webhook-secret:7 ',
    );
    expect(run.calls[11]).toContain(`--update-env-vars=AUTH_AUDIENCE=${SERVICE_URL}`);
    expect(run.calls[13]).toContain(`--uri=${SERVICE_URL}/reconcile `);
    expect(run.calls[13]).toContain(`--oidc-token-audience=${SERVICE_URL} `);
    expect(run.stdout.trim()).toBe(`AUTOSCALER_URL=${SERVICE_URL}`);
    expect(run.stderr).toContain(`webhook URL: ${SERVICE_URL}/webhook`);
  });

  it('updates an existing autoscaler and scheduler job in place', () => {
    const run = realRun('autoscaler.sh', {
      STUB_EXISTS: '1',
      GITHUB_SECRET_VERSION: '3',
      GITHUB_WEBHOOK_SECRET_VERSION: '2',
    });
    expect(run.status).toBe(0);
    expect(run.calls.filter((c) => c.startsWith('run deploy'))).toHaveLength(1);
    expect(run.calls.find((c) => c.startsWith('run deploy'))).toContain(`AUTH_AUDIENCE=${SERVICE_URL}`);
    expect(run.calls.filter((c) => c.startsWith('run services update'))).toHaveLength(0);
    expect(run.calls.filter((c) => c.startsWith('iam roles update'))).toHaveLength(1);
    expect(run.calls.filter((c) => c.startsWith('scheduler jobs update http'))).toHaveLength(1);
    expect(run.calls.filter((c) => c.startsWith('scheduler jobs create'))).toHaveLength(0);
  });

  it('takes the CPU autoscaler off an existing MIG, and only when it has one', () => {
    const args = ['--trust-level', 'presubmit', '--template', 'gh-runner-presubmit-t2'];
    const autoscaled = realRun(
      'runner-mig.sh',
      {
        STUB_EXISTS: '1',
        STUB_MIG_AUTOSCALER: `https://www.googleapis.com/compute/v1/projects/${PROJECT}/regions/${REGION}/autoscalers/gh-runner-presubmit-abcd`,
      },
      args,
    );
    expect(autoscaled.status).toBe(0);
    expect(
      autoscaled.calls.filter((c) => c.startsWith('compute instance-groups managed stop-autoscaling')),
    ).toEqual([
      `compute instance-groups managed stop-autoscaling gh-runner-presubmit --project=${PROJECT} --region=${REGION}`,
    ]);
    const plain = realRun('runner-mig.sh', { STUB_EXISTS: '1' }, args);
    expect(plain.status).toBe(0);
    expect(plain.calls.some((c) => c.includes('stop-autoscaling'))).toBe(false);
    expect(plain.calls.some((c) => c.includes('set-autoscaling'))).toBe(false);
    const fresh = realRun('runner-mig.sh', {}, args);
    expect(fresh.status).toBe(0);
    expect(fresh.calls.some((c) => c.includes('autoscal'))).toBe(false);
  });

  it('all.sh --target run deploys everything, passing each value to the steps after it', () => {
    const scratch = fs.mkdtempSync(path.join(tmp, 'scratch-'));
    const run = realRun('all.sh', { DEPLOY_WORK_DIR: '', TMPDIR: scratch, STUB_INVOKERS: invokers }, [
      '--target',
      'run',
    ]);
    expect(run.stderr).not.toMatch(/\berror\b|unknown argument/);
    expect(run.status).toBe(0);
    // The secret version github-secret.sh added is the one the proxy pins; no lookup.
    expect(run.calls.filter((c) => c.startsWith('secrets versions list'))).toHaveLength(0);
    expect(run.calls.find((c) => c.startsWith('run deploy gh-token-proxy'))).toContain(
      'gh-runner-github-credential:8 ',
    );
    expect(run.calls.find((c) => c.startsWith('run deploy gh-instance-deleter'))).toBeDefined();
    expect(run.calls.filter((c) => c.startsWith('functions deploy'))).toHaveLength(0);
    // The autoscaler pins the key and the webhook secret versions the secret steps added, and its job
    // calls the URL it printed.
    expect(run.calls.find((c) => c.startsWith('run deploy gh-autoscaler'))).toContain(
      '--set-secrets=GITHUB_APP_PRIVATE_KEY=gh-runner-github-credential:8,GITHUB_WEBHOOK_SECRET=gh-runner-webhook-secret:8 ',
    );
    expect(run.calls.find((c) => c.startsWith('scheduler jobs create http'))).toContain(
      `--oidc-token-audience=${SERVICE_URL} `,
    );
    expect(run.calls.filter((c) => c.startsWith('logging metrics create'))).toHaveLength(
      metricFiles().length,
    );
    expect(run.calls.filter((c) => c.startsWith('monitoring policies create'))).toHaveLength(
      policyFiles().length,
    );
    // The templates carry the URLs the services printed, and each MIG gets its level's template.
    const templates = run.calls.filter((c) => c.startsWith('compute instance-templates create'));
    expect(templates).toHaveLength(2);
    for (const template of templates) {
      expect(template).toContain(`token-proxy-url=${SERVICE_URL}`);
      expect(template).toContain(`instance-deleter-url=${SERVICE_URL}`);
    }
    const migs = run.calls.filter((c) => c.startsWith('compute instance-groups managed create'));
    expect(migs.map((c) => /--template=(\S+)/.exec(c)![1])).toEqual(templates.map((c) => c.split(' ')[3]));
    expect(entries(scratch)).toEqual([]);
  });
});
