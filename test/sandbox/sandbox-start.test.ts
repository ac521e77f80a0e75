/**
 * `npm start` as a newcomer meets it: started in a child process with free ports (`SANDBOX_*_PORT=0`),
 * its banner read back and its printed commands pasted into bash. What is checked: the services listen on
 * loopback only, a GITHUB_TOKEN in the user's environment never reaches them, the commands work in order,
 * a policy of the user's own is enforced, a service that dies is reported, a port given twice is refused,
 * and SIGTERM to the npm process leaves no process and no port behind.
 *
 * Every wait is bounded by a generous deadline (a busy machine is slow, not broken); nothing is timed.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  accepts,
  alive,
  BANNER_END,
  environmentOf,
  eventually,
  launch,
  NPM,
  parseBanner,
  portOf,
  processTree,
  ROOT,
  sandboxEnv,
  START_SCRIPT,
  stopAll,
  waitForOutput,
} from './started-sandbox.js';
import type { Banner, Started } from './started-sandbox.js';
import { freePort } from '#sandbox/node-process';

const TEST_TIMEOUT_MS = 300_000;

/** Runs `script` with bash in the repository root, as a user pasting it; resolves with its exit and output. */
function bash(script: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', script],
      { cwd: ROOT, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
          output: `${stdout}${stderr}`,
        }),
    );
  });
}

async function identityToken(metadataHost: string, audience: string): Promise<string> {
  const res = await fetch(
    `http://${metadataHost}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${audience}&format=full`,
    { headers: { 'Metadata-Flavor': 'Google' } },
  );
  return res.text();
}

/** POST /jitconfig as one of the sandbox's VMs: the status the proxy answers. */
async function jitConfigStatus(banner: Banner, vmName: string): Promise<{ status: number; body: string }> {
  const vm = banner.vms.find((v) => v.name.startsWith(vmName))!;
  const token = await identityToken(vm.metadataHost, banner.proxyUrl);
  const res = await fetch(`${banner.proxyUrl}/jitconfig`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: JSON.stringify({ scope: 'my-org' }),
  });
  return { status: res.status, body: await res.text() };
}

/** An IPv4 address of this machine that is not loopback, or (Linux) 127.0.0.2, which 127.0.0.1 is not. */
function otherLocalAddress(): string {
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((info) => info && info.family === 'IPv4' && !info.internal);
  return external?.address ?? '127.0.0.2';
}

describe('npm start, with a GITHUB_TOKEN exported as the gh CLI, Codespaces and Actions do', () => {
  const secret = `ghp_sandboxMustIgnoreThis${Date.now()}`;
  let started: Started;
  let banner: Banner;

  beforeAll(async () => {
    started = launch(
      NPM,
      ['start'],
      sandboxEnv({ GITHUB_TOKEN: secret, AUTH_AUDIENCE: 'https://proxy.example', PORT: '0' }),
    );
    banner = parseBanner(await waitForOutput(started, BANNER_END));
  }, TEST_TIMEOUT_MS);

  afterAll(() => stopAll(started), 60_000);

  it('starts the sandbox, not a production proxy, with its own policy, and says which', () => {
    expect(started.stdout()).toContain('Sandbox running on 127.0.0.1');
    expect(banner.policyLine).toContain(`the sandbox's own (rules "presubmit", "postsubmit")`);
    expect(banner.vms.filter((vm) => vm.name.startsWith('gh-runner-presubmit-'))).toHaveLength(2);
  });

  it('keeps the token out of the services and out of their output', () => {
    const services = processTree(started.child.pid!).filter((p) => /dist\/services\//.test(p.args));
    expect(services.filter((p) => p.args.includes('token-proxy/src/main.js'))).toHaveLength(1);
    expect(services.filter((p) => p.args.includes('instance-deleter/src/main.js'))).toHaveLength(1);
    expect(services.filter((p) => p.args.includes('autoscaler/src/main.js'))).toHaveLength(1);
    for (const service of services) {
      const env = environmentOf(service.pid);
      if (env === undefined) continue; // not Linux: the proxy's answers below still show it uses the App
      expect([...env.values()].filter((value) => value.includes(secret))).toEqual([]);
      expect(env.get('HOST')).toBe('127.0.0.1');
    }
    expect(started.stdout() + started.stderr()).not.toContain(secret);
  });

  it('binds the services to loopback only', async () => {
    const other = otherLocalAddress();
    // The address tells "all interfaces" from "loopback": a server on 0.0.0.0 answers on it.
    const control = await new Promise<net.Server>((resolve) => {
      const server = net.createServer();
      server.listen(0, '0.0.0.0', () => resolve(server));
    });
    const controlPort = (control.address() as net.AddressInfo).port;
    try {
      expect(await accepts(other, controlPort)).toBe(true);
    } finally {
      control.close();
    }
    for (const url of [
      banner.proxyUrl,
      banner.deleterUrl,
      banner.autoscalerUrl,
      banner.statusUrl,
      banner.statusPageUrl,
    ]) {
      expect({ url, loopback: await accepts('127.0.0.1', portOf(url)) }).toEqual({ url, loopback: true });
      expect({ url, other, reachable: await accepts(other, portOf(url)) }).toEqual({
        url,
        other,
        reachable: false,
      });
    }
  });

  it(
    'prints commands that succeed when pasted in order into bash',
    async () => {
      // The VM scripts' own retry budget is minutes; a failure should show sooner than that.
      const run = await bash(banner.commands.join('\n'), {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: os.tmpdir(),
        RETRY_DEADLINE_SECONDS: '60',
      });
      const output = run.output;
      expect({ code: run.code, output }).toMatchObject({ code: 0 });
      const lines = output.split('\n');
      const statuses = lines.map((line) => / \(HTTP (\d{3})\)$/.exec(line)?.[1]).filter(Boolean);
      // JIT config, the postsubmit label refused, a registration token, GET / (false), DELETE /; a job
      // queued at the fake GitHub, POST /reconcile, and the status page refusing a VM's identity token.
      expect(statuses).toEqual(['200', '403', '200', '200', '200', '201', '200', '401']);
      // Through IAP's signed header, the status service answers its view of the fleet.
      expect(output).toMatch(/^\{"generatedAt":"[^"]+","autoscaler":\{"generatedAt":"/m);
      expect(output).toContain('must be signed with ES256 (a Google identity token is not an IAP assertion)');
      expect(output).toMatch(/"redelivered":\[\]/);
      expect(output).toMatch(/^\{"encoded_jit_config":"[A-Za-z0-9+/=]+"/m);
      expect(output).toContain('may not use label \\"postsubmit\\"');
      expect(output).toMatch(/^false \(HTTP 200\)$/m);
      expect(output).toMatch(/is deleting instance gh-runner-presubmit-/);
      // The four VM scripts, as the second presubmit VM (the first was deleted just above).
      const scripted = banner.vms.filter((vm) => vm.name.startsWith('gh-runner-presubmit-'))[1]!.name;
      expect(output).toContain(`register.sh: got a JIT config for runner ${scripted}`);
      expect(output).toContain('register.sh: run.sh exited with status 0');
      // GitHub, through the proxy, says the runner is gone; the deleter keeps the VM (its MIG has no autoscaler).
      expect(output).toContain('idle-check.sh: idle: GitHub lists no runner for this VM');
      expect(output).toContain(`idle: instance deleter: kept no-recommendation: MIG gh-runner-presubmit`);
      expect(output).toContain(`keeping instance ${scripted}`);
      expect(output).toMatch(/no runner to remove/);
      expect(output).toContain(
        `instance deleter: MIG gh-runner-presubmit in region us-central1 is deleting instance ${scripted}`,
      );
      // The runner stand-in's JSON went to its file, not the terminal.
      expect(output).not.toMatch(/"event":/);
      const record = /^The runner stand-in's JSON record goes to (.*)$/m.exec(started.stdout())![1]!;
      expect(fs.readFileSync(record, 'utf8')).toMatch(/"event":"exited"/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'leaves no process and no port behind when the npm process gets SIGTERM',
    async () => {
      const tree = processTree(started.child.pid!);
      // npm, its shell, scripts/start.js, the sandbox, and the four services.
      expect(tree.filter((p) => /dist\/services\//.test(p.args))).toHaveLength(4);
      expect(tree.some((p) => p.args.includes('dist/sandbox/main.js'))).toBe(true);
      const ports = [
        banner.proxyUrl,
        banner.deleterUrl,
        banner.autoscalerUrl,
        banner.statusUrl,
        banner.statusPageUrl,
        banner.githubUrl,
        banner.computeUrl,
      ].map(portOf);

      started.child.kill('SIGTERM');

      const gone = await eventually(() => tree.every((p) => !alive(p.pid)), 60_000);
      expect(tree.filter((p) => alive(p.pid))).toEqual([]);
      expect(gone).toBe(true);
      for (const port of ports)
        expect({ port, open: await accepts('127.0.0.1', port) }).toEqual({ port, open: false });
      const runnerDir = /RUNNER_DIR=(\S+)/.exec(started.stdout())![1]!;
      expect(fs.existsSync(runnerDir)).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('scripts/start.js', () => {
  it(
    'prints the usage for --help and exits 0; refuses an unknown flag with 2',
    async () => {
      const help = launch(process.execPath, [START_SCRIPT, '--help'], sandboxEnv());
      expect(await help.exited).toBe(0);
      expect(help.stdout()).toMatch(/^Usage: npm start/);
      expect(help.stdout()).toContain('POLICY, POLICY_FILE');

      const bad = launch(process.execPath, [START_SCRIPT, '--fast'], sandboxEnv());
      expect(await bad.exited).toBe(2);
      expect(bad.stderr()).toMatch(/^unknown argument "--fast"/);
      expect(bad.stderr()).toContain('Usage: npm start');

      const unknown = launch(process.execPath, [START_SCRIPT, 'tokenproxy'], sandboxEnv());
      expect(await unknown.exited).toBe(2);
      expect(unknown.stderr()).toContain('unknown command "tokenproxy"');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses the same port for the token proxy and the instance deleter, before starting anything',
    async () => {
      // Below the ephemeral range: no concurrent test's listen(0) takes it before the last check.
      const port = await freePort();
      const run = launch(
        process.execPath,
        [START_SCRIPT],
        sandboxEnv({ SANDBOX_PROXY_PORT: String(port), SANDBOX_DELETER_PORT: String(port) }),
      );
      expect(await run.exited).toBe(1);
      expect(run.stderr()).toContain(
        `Sandbox failed to start: the token proxy and the instance deleter cannot share port ${port}`,
      );
      expect(run.stdout()).not.toContain('Sandbox running');
      expect(await accepts('127.0.0.1', port)).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'says so and stops when a service dies while the sandbox runs',
    async () => {
      const run = launch(process.execPath, [START_SCRIPT], sandboxEnv());
      try {
        const banner = parseBanner(await waitForOutput(run, BANNER_END));
        const deleter = processTree(run.child.pid!).find((p) =>
          p.args.includes('instance-deleter/src/main.js'),
        )!;
        process.kill(deleter.pid, 'SIGKILL');
        expect(await run.exited).toBe(1);
        expect(run.stderr()).toContain(
          'Sandbox: the instance deleter was killed (SIGKILL) while the sandbox was running.',
        );
        expect(run.stderr()).toContain('Stopping the sandbox.');
        expect(await accepts('127.0.0.1', portOf(banner.proxyUrl))).toBe(false);
      } finally {
        await stopAll(run);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it.each([
    ['POLICY, inline', false],
    ['POLICY_FILE, relative to where npm ran', true],
  ])(
    'passes %s to the proxy, and the proxy enforces it',
    async (_, asFile) => {
      // Postsubmit VMs only: a presubmit VM, allowed by the sandbox's own policy, is now refused.
      const policy = JSON.stringify({
        rules: [
          {
            name: 'postsubmit-only',
            callers: { serviceAccounts: ['runner-postsubmit@sandbox-project.iam.gserviceaccount.com'] },
            scopes: ['my-org'],
            runnerGroups: ['postsubmit'],
            defaultRunnerGroup: 'postsubmit',
            defaultLabels: ['self-hosted', 'postsubmit'],
          },
        ],
      });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-policy-'));
      fs.writeFileSync(path.join(dir, 'policy.json'), policy);
      const env = asFile ? { POLICY_FILE: 'policy.json', INIT_CWD: dir } : { POLICY: policy };
      const run = launch(process.execPath, [START_SCRIPT], sandboxEnv(env));
      try {
        const banner = parseBanner(await waitForOutput(run, BANNER_END));
        expect(banner.policyLine).toBe(
          asFile
            ? `Caller policy: POLICY_FILE ${path.join(dir, 'policy.json')} (rules "postsubmit-only").`
            : 'Caller policy: POLICY from your environment (rules "postsubmit-only").',
        );
        expect(run.stdout()).toContain('what each answers depends on your policy');
        const refused = await jitConfigStatus(banner, 'gh-runner-presubmit-');
        expect(refused).toMatchObject({ status: 403 });
        const allowed = await jitConfigStatus(banner, 'gh-runner-postsubmit-');
        expect(allowed).toMatchObject({ status: 200 });
      } finally {
        await stopAll(run);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    TEST_TIMEOUT_MS,
  );
});
