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

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEPLOY_DIR = path.join(ROOT, 'deploy');

const PROJECT = 'my-project';
const REGION = 'us-central1';
const RUNNER_SA = `gh-runner@${PROJECT}.iam.gserviceaccount.com`;
const PROXY_SA = `gh-token-proxy@${PROJECT}.iam.gserviceaccount.com`;
const DELETER_SA = `gh-instance-deleter@${PROJECT}.iam.gserviceaccount.com`;

/** Exactly the role's permissions; a change here must be a deliberate change of deleter-role-permissions.txt. */
const DELETER_PERMISSIONS = [
  'compute.instances.get',
  'compute.instanceGroupManagers.get',
  'compute.instanceGroupManagers.update',
  'compute.autoscalers.get',
  'compute.zoneOperations.get',
  'compute.regionOperations.get',
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

const BASE_ENV: Record<string, string> = {
  PROJECT_ID: PROJECT,
  REGION,
  IMAGE_TAG: 'test',
  ALLOWED_SCOPES: 'my-org;match:my-org/.*',
  GITHUB_APP_ID: '123456',
  GITHUB_APP_PRIVATE_KEY_FILE: KEY_FILE,
  ALLOWED_MIG_PATTERN: 'gh-runner-.*',
  RUNNER_SCOPE: 'my-org',
  RUNNER_LABELS: 'linux-x64,gpu',
  RUNNER_GROUP: 'gce',
  TEMPLATE_NAME: 'gh-runner-test',
  DEPLOY_WORK_DIR: path.join(tmp, 'work'),
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

/** Splits a line the way bash would for the quoting the scripts print: bare, '...', and "${NAME}". */
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
        ['||', '&&', ';', 'then', 'else', 'if', 'fi', '>/dev/null', '2>&1'].includes(word.replace(/;$/, ''))
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

function expectClean(run: Run): void {
  const all = run.stdout + run.stderr;
  for (const forbidden of [
    'allUsers',
    'allAuthenticatedUsers',
    '--allow-unauthenticated',
    'cloud-platform',
  ]) {
    expect(all).not.toContain(forbidden);
  }
  expect(all).not.toContain('--no-invoker-iam-check');
  // The key's body lines and the PAT never appear.
  for (const line of KEY_PEM.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) {
    expect(all).not.toContain(line);
  }
  expect(all).not.toContain(PAT);
  expect(fs.existsSync(stubLog) ? fs.readFileSync(stubLog, 'utf8') : '').toBe('');
}

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

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
    expect(flagValues(deploy, '--set-secrets')).toEqual([
      'GITHUB_APP_PRIVATE_KEY=gh-runner-github-credential:latest',
    ]);
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

  it('grants roles/run.invoker to the runner service account only, and checks nobody else holds it', () => {
    const bindings = find(run, 'gcloud', 'run', 'services', 'add-iam-policy-binding');
    expect(bindings).toHaveLength(1);
    expect(bindings[0]).toContain('gh-token-proxy');
    expect(flagValues(bindings[0]!, '--member')).toEqual([`serviceAccount:${RUNNER_SA}`]);
    expect(flagValues(bindings[0]!, '--role')).toEqual(['roles/run.invoker']);
    expect(run.stdout).toMatch(
      /^RUN_INVOKERS="\$\(gcloud run services get-iam-policy gh-token-proxy .*roles\/run\.invoker/m,
    );
  });

  it('binds more runner service accounts when asked, one binding each', () => {
    const other = `gh-runner-trusted@${PROJECT}.iam.gserviceaccount.com`;
    const multi = runScript('token-proxy.sh', { RUNNER_INVOKER_SA_EMAILS: other });
    const members = find(multi, 'gcloud', 'run', 'services', 'add-iam-policy-binding').flatMap((b) =>
      flagValues(b, '--member'),
    );
    expect(members).toEqual([`serviceAccount:${RUNNER_SA}`, `serviceAccount:${other}`]);
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

  it('mounts a PAT as GITHUB_TOKEN in PAT mode', () => {
    const pat = runScript('token-proxy.sh', { GITHUB_AUTH: 'pat', GITHUB_APP_ID: '' });
    const deploy = one(pat, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    expect(flagValues(deploy, '--set-secrets')).toEqual(['GITHUB_TOKEN=gh-runner-github-credential:latest']);
    expect(dictFlag(flagValues(deploy, '--set-env-vars')[0]!)).not.toHaveProperty('GITHUB_APP_ID');
  });

  it('keeps commas inside values with gcloud alternate delimiters', () => {
    const commas = runScript('token-proxy.sh', { ALLOWED_SCOPES: 'my-org;match:my-org/(a|b){1,2}' });
    const deploy = one(commas, 'gcloud', 'run', 'deploy', 'gh-token-proxy');
    expect(dictFlag(flagValues(deploy, '--set-env-vars')[0]!).ALLOWED_SCOPES).toBe(
      'my-org;match:my-org/(a|b){1,2}',
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
    const add = one(run, 'gcloud', 'secrets', 'versions', 'add', 'gh-runner-github-credential');
    expect(flagValues(add, '--data-file')).toEqual([file]);
    const grant = one(run, 'gcloud', 'secrets', 'add-iam-policy-binding', 'gh-runner-github-credential');
    expect(flagValues(grant, '--member')).toEqual([`serviceAccount:${PROXY_SA}`]);
    expect(flagValues(grant, '--role')).toEqual(['roles/secretmanager.secretAccessor']);
    // Granted on the secret, never on the project.
    expect(find(run, 'gcloud', 'projects', 'add-iam-policy-binding')).toHaveLength(0);
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

  it('binds the role to the deleter service account only', () => {
    const bindings = find(run, 'gcloud', 'projects', 'add-iam-policy-binding');
    expect(bindings).toHaveLength(1);
    expect(flagValues(bindings[0]!, '--member')).toEqual([`serviceAccount:${DELETER_SA}`]);
    expect(flagValues(bindings[0]!, '--role')).toEqual([`projects/${PROJECT}/roles/ghRunnerInstanceDeleter`]);
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
    // The function outlives the deleter's longest wait for a stable MIG (100 s by default).
    expect(flagValues(deploy, '--timeout')).toEqual(['160s']);
  });

  it('lets only the runner service account invoke the function', () => {
    const bindings = find(run, 'gcloud', 'functions', 'add-invoker-policy-binding');
    expect(bindings).toHaveLength(1);
    expect(flagValues(bindings[0]!, '--member')).toEqual([`serviceAccount:${RUNNER_SA}`]);
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
    expect(bindings.flatMap((b) => flagValues(b, '--member'))).toEqual([`serviceAccount:${RUNNER_SA}`]);
    expect(onRun.stdout).toContain('--update-env-vars=AUTH_AUDIENCE="${INSTANCE_DELETER_URL}"');
  });

  it('requires ALLOWED_MIG_PATTERN', () => {
    const refused = runScript('instance-deleter.sh', { ALLOWED_MIG_PATTERN: '' });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('ALLOWED_MIG_PATTERN');
  });
});

describe('deploy/instance-template.sh --dry-run', () => {
  const run = runScript('instance-template.sh', {
    TOKEN_PROXY_URL: 'https://gh-token-proxy-abc-uc.a.run.app',
  });

  it('succeeds without gcloud', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run);
  });

  it('runs VMs as the runner service account with no OAuth scopes and no external address', () => {
    const create = one(run, 'gcloud', 'compute', 'instance-templates', 'create', 'gh-runner-test');
    expect(flagValues(create, '--service-account')).toEqual([RUNNER_SA]);
    expect(create).toContain('--no-scopes');
    expect(flagValues(create, '--scopes')).toEqual([]);
    expect(create).toContain('--no-address');
    expect(create).toContain('--shielded-secure-boot');
  });

  it('carries the attributes the VM scripts read', () => {
    const create = one(run, 'gcloud', 'compute', 'instance-templates', 'create', 'gh-runner-test');
    const metadata = dictFlag(flagValues(create, '--metadata')[0]!);
    expect(metadata).toMatchObject({
      'github-runner-scope': 'my-org',
      'github-runner-labels': 'linux-x64,gpu',
      'github-runner-group': 'gce',
      'github-runner-mode': 'jit',
      'github-url': 'https://github.com',
      'token-proxy-url': 'https://gh-token-proxy-abc-uc.a.run.app',
      'instance-deleter-url': `https://${REGION}-${PROJECT}.cloudfunctions.net/gh-instance-deleter`,
      'block-project-ssh-keys': 'TRUE',
    });
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
    const lookup = runScript('instance-template.sh');
    expect(lookup.status).toBe(0);
    expect(lookup.stdout).toMatch(/^TOKEN_PROXY_URL="\$\(gcloud run services describe gh-token-proxy /m);
    expect(lookup.stdout).toContain(`##token-proxy-url='"\${TOKEN_PROXY_URL}"'##`);
  });
});

describe('deploy/all.sh --dry-run', () => {
  const run = runScript('all.sh');

  it('prints every step as one bash script, with no secret, no public invoker and no gcloud call', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectClean(run);
    expect(spawnSync('bash', ['-n'], { input: run.stdout }).status).toBe(0);
    for (const step of [
      'gcloud services enable',
      'gcloud builds submit',
      'gcloud run deploy gh-token-proxy',
    ]) {
      expect(run.stdout).toContain(step);
    }
    expect(find(run, 'gcloud', 'compute', 'instance-templates', 'create')).toHaveLength(1);
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
    'instance-deleter.sh',
    'instance-template.sh',
  ])('%s explains itself and needs no variable', (script) => {
    const result = spawnSync('bash', [path.join(DEPLOY_DIR, script), '--help'], {
      encoding: 'utf8',
      env: { PATH: `${stubDir}:${process.env.PATH ?? ''}` },
    });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: deploy\//);
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
 * a resource exists once it has been created or deployed, a service's URL is fixed, and the invoker
 * policy lists whatever STUB_INVOKERS says.
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

  const runner = `serviceAccount:${RUNNER_SA}`;

  it('deploys a new proxy, reads its URL and sets AUTH_AUDIENCE to it', () => {
    const run = realRun('token-proxy.sh', { STUB_INVOKERS: runner });
    expect(run.stderr).not.toContain('error');
    expect(run.status).toBe(0);
    const verbs = run.calls.map((c) => c.split(' ').slice(0, 3).join(' '));
    expect(verbs).toEqual([
      'run services describe',
      'run deploy gh-token-proxy',
      'run services describe',
      'run services update',
      'run services add-iam-policy-binding',
      'run services get-iam-policy',
    ]);
    expect(run.calls[1]).toContain('AUTH_AUDIENCE=https://audience-pending.invalid');
    expect(run.calls[3]).toContain(`--update-env-vars=AUTH_AUDIENCE=${SERVICE_URL}`);
    expect(run.stdout.trim()).toBe(`TOKEN_PROXY_URL=${SERVICE_URL}`);
  });

  it('deploys an existing proxy once, with its URL as the audience', () => {
    const run = realRun('token-proxy.sh', { STUB_EXISTS: '1', STUB_INVOKERS: runner });
    expect(run.status).toBe(0);
    const deploys = run.calls.filter((c) => c.startsWith('run deploy'));
    expect(deploys).toHaveLength(1);
    expect(deploys[0]).toContain(`AUTH_AUDIENCE=${SERVICE_URL}`);
    expect(run.calls.filter((c) => c.startsWith('run services update'))).toHaveLength(0);
  });

  it('stops when someone else also holds roles/run.invoker', () => {
    const run = realRun('token-proxy.sh', { STUB_INVOKERS: `${runner} allUsers` });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('allUsers also holds roles/run.invoker');
    expect(run.stderr).toContain('remove-iam-policy-binding');
  });

  it('stages the function source with main at the deleter function entry', () => {
    const work = path.join(tmp, 'real-work');
    const run = realRun('instance-deleter.sh', { DEPLOY_WORK_DIR: work, STUB_INVOKERS: runner }, [
      '--skip-build',
    ]);
    expect(run.stderr).not.toContain('missing');
    expect(run.status).toBe(0);
    const source = path.join(work, 'function-source');
    const pkg = JSON.parse(fs.readFileSync(path.join(source, 'package.json'), 'utf8'));
    expect(pkg.main).toBe(SERVICE_ENTRY_POINTS['instance-deleter'].function);
    expect(pkg.scripts).toEqual({});
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
});
