/**
 * deploy/fleet-status.sh's dry run: IAP in front, nobody but IAP's service agent may invoke the service, the
 * viewers become IAP members exactly as the service matches them, the service's account reads MIGs and
 * templates only. A stub gcloud first on PATH records any call; none may happen.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-status-deploy-'));
const stubDir = path.join(tmp, 'bin');
const stubLog = path.join(tmp, 'gcloud-calls.log');
fs.mkdirSync(stubDir);
fs.writeFileSync(path.join(stubDir, 'gcloud'), `#!/bin/sh\necho "gcloud $*" >> '${stubLog}'\nexit 1\n`, {
  mode: 0o755,
});

const STATUS_SA = 'gh-fleet-status@my-project.iam.gserviceaccount.com';

function dryRun(env: Record<string, string>) {
  const result = spawnSync('bash', [path.join(ROOT, 'deploy/fleet-status.sh'), '--dry-run'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: {
      PATH: `${stubDir}:${process.env.PATH ?? ''}`,
      HOME: tmp,
      PROJECT_ID: 'my-project',
      REGION: 'us-central1',
      IMAGE_TAG: 'test',
      STATUS_VIEWERS: 'Alice@Example.com, domain:example.com',
      ...env,
    },
  });
  const lines = result.stdout.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  return { ...result, lines };
}

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  expect(fs.existsSync(stubLog) ? fs.readFileSync(stubLog, 'utf8') : '').toBe('');
});

describe('deploy/fleet-status.sh --dry-run', () => {
  it('deploys behind IAP, invokable by IAP only, with the service configured for IAP and the autoscaler', () => {
    const run = dryRun({});
    expect(run.status).toBe(0);
    const deploy = run.lines.find((l) => l.startsWith('gcloud beta run deploy gh-fleet-status '))!;
    for (const flag of [
      '--iap',
      '--no-allow-unauthenticated',
      '--ingress=all',
      `--service-account=${STATUS_SA}`,
    ]) {
      expect(deploy.split(' ')).toContain(flag);
    }
    expect(deploy).toContain('SERVICE=fleet-status##');
    expect(deploy).toContain(
      `IAP_AUDIENCE=/projects/'"\${PROJECT_NUMBER}"'/locations/us-central1/services/gh-fleet-status##`,
    );
    expect(deploy).toContain('STATUS_VIEWERS=Alice@Example.com, domain:example.com##');
    expect(deploy).toContain(
      `AUTOSCALER_URL='"\${AUTOSCALER_URL}"'##AUTOSCALER_AUDIENCE='"\${AUTOSCALER_URL}"`,
    );
    expect(deploy.split(' ')).not.toContain('--allow-unauthenticated');

    const invokers = run.lines.filter((l) =>
      l.startsWith('gcloud run services add-iam-policy-binding gh-fleet-status '),
    );
    expect(invokers).toEqual([
      expect.stringContaining(
        '--member=serviceAccount:service-"${PROJECT_NUMBER}"@gcp-sa-iap.iam.gserviceaccount.com --role=roles/run.invoker',
      ),
    ]);
    const accessors = run.lines.filter((l) => l.startsWith('gcloud beta iap web add-iam-policy-binding '));
    expect(accessors.map((l) => /--member=(\S+)/.exec(l)?.[1])).toEqual([
      'user:alice@example.com',
      'domain:example.com',
    ]);
    expect(accessors.every((l) => l.includes('--resource-type=cloud-run --service=gh-fleet-status'))).toBe(
      true,
    );
    expect(run.lines).toContainEqual(
      expect.stringMatching(
        /^gcloud run services add-iam-policy-binding gh-autoscaler .*--member=serviceAccount:gh-fleet-status@my-project\.iam\.gserviceaccount\.com --role=roles\/run\.invoker/,
      ),
    );
    expect(run.stdout).toContain(`# add ${STATUS_SA} to the autoscaler's FLEET_VIEWERS`);
  });

  it("gives the service's account read access to MIGs and templates, nothing more", () => {
    const run = dryRun({});
    const role = run.lines.find((l) => l.startsWith('if gcloud iam roles describe ghRunnerFleetViewer'))!;
    const permissions = [...role.matchAll(/--permissions=([^\s;]+)/g)].map((m) => m[1]);
    expect(new Set(permissions)).toEqual(
      new Set([
        'compute.instanceGroupManagers.get,compute.instanceGroupManagers.list,compute.instanceTemplates.get,compute.instanceTemplates.list',
      ]),
    );
    expect(run.lines.filter((l) => l.includes('add-iam-policy-binding my-project'))).toEqual([
      `gcloud projects add-iam-policy-binding my-project --member=serviceAccount:${STATUS_SA} --role=projects/my-project/roles/ghRunnerFleetViewer --condition=None`,
    ]);
  });

  it('takes the autoscaler URL and audience when given, instead of reading them', () => {
    const run = dryRun({
      AUTOSCALER_URL: 'https://gh-autoscaler-abc-uc.a.run.app',
      AUTOSCALER_AUDIENCE: 'https://autoscaler.example',
    });
    expect(run.stdout).not.toContain('gcloud run services describe gh-autoscaler');
    expect(run.stdout).toContain(
      'AUTOSCALER_URL=https://gh-autoscaler-abc-uc.a.run.app##AUTOSCALER_AUDIENCE=https://autoscaler.example',
    );
  });

  it.each([
    [{ STATUS_VIEWERS: '' }, /set STATUS_VIEWERS/],
    [{ STATUS_VIEWERS: 'example.com' }, /'example.com' is neither an email nor domain:NAME/],
    [{ STATUS_VIEWERS: ' , ' }, /STATUS_VIEWERS lists nobody/],
  ])('refuses %j', (env, message) => {
    const run = dryRun(env);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});
