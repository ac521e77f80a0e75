import fs from 'node:fs';
import path from 'node:path';
import { IAP_ASSERTION_PATH } from './iap-front.js';
import {
  describeServiceExit,
  repoRoot,
  SANDBOX_ORG,
  RUNNER_LABELS,
  SANDBOX_POLICY,
  SANDBOX_PROJECT,
  SandboxError,
  SERVICE_ACCOUNTS,
  shellQuote,
  startSandbox,
  STATUS_VIEWER,
  STATUS_VIEWER_DOMAIN,
} from './sandbox.js';
import type { Sandbox, SandboxOptions } from './sandbox.js';

const SANDBOX_USAGE = `Usage: npm start [-- --help]

Starts the whole system on 127.0.0.1, with no cloud account: an emulated GitHub API, Compute Engine API,
Google identity issuer, IAP's signer and a metadata server per simulated runner VM, and the token proxy,
instance deleter, autoscaler and fleet status page built from dist/. Jobs queued at the fake GitHub reach the autoscaler as signed
webhooks; each VM it creates registers a runner, runs one job and deletes itself.
Prints the URLs and commands to try, then runs until Ctrl-C (or SIGTERM, SIGHUP).

Environment:
  SANDBOX_PROXY_PORT     token proxy port (default 8080; 0 picks a free port)
  SANDBOX_DELETER_PORT   instance deleter port (default 8081; 0 picks a free port)
  SANDBOX_AUTOSCALER_PORT  autoscaler port (default 8082; 0 picks a free port)
  SANDBOX_STATUS_PORT    fleet status port (default 8083; 0 picks a free port)
  SANDBOX_IAP_PORT       port of the stand-in for IAP in front of it, to open in a browser (default 8084)
  POLICY, POLICY_FILE    the token proxy's caller policy, as in production (default: the sandbox's own,
                         rules "presubmit" and "postsubmit"); POLICY=open lets any verified caller in
  SANDBOX_VERBOSE=1      print the services' log lines

Nothing else of your environment reaches the services: a GITHUB_TOKEN you exported is not used.
Production runs through npm run start:token-proxy, start:instance-deleter, start:autoscaler and
start:fleet-status.
`;

/** Thrown for a command line the sandbox does not understand; printed with the usage, exit status 2. */
class UsageError extends Error {}

/** Reads a port from the environment (the sandbox's only settings), or the default. */
function portFrom(value: string | undefined, fallback: number, variable: string): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new SandboxError(`${variable} must be a port number, not ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** The directory the user ran `npm start` in (npm runs scripts in the package root and says where in INIT_CWD). */
function userDirectory(): string {
  return process.env.INIT_CWD ?? process.cwd();
}

/** POLICY / POLICY_FILE from the environment; a relative POLICY_FILE is read from the user's directory. */
function policyFromEnv(env: NodeJS.ProcessEnv): NonNullable<SandboxOptions['policy']> {
  const policy: NonNullable<SandboxOptions['policy']> = {};
  if (env.POLICY) policy.POLICY = env.POLICY;
  if (env.POLICY_FILE) policy.POLICY_FILE = path.resolve(userDirectory(), env.POLICY_FILE);
  return policy;
}

/** Rule names of a policy document, when it is one (the proxy has validated it by now). */
function ruleNames(json: string): string {
  try {
    const rules = (JSON.parse(json) as { rules?: Array<{ name?: unknown }> }).rules ?? [];
    const names = rules.map((rule, i) => (typeof rule.name === 'string' ? rule.name : `#${i + 1}`));
    return names.length === 0 ? 'no rules' : `rules ${names.map((name) => JSON.stringify(name)).join(', ')}`;
  } catch {
    return 'not JSON';
  }
}

/** One line saying which caller policy the sandbox's token proxy runs with. */
function describePolicy(policy: NonNullable<SandboxOptions['policy']>): string {
  if (policy.POLICY_FILE !== undefined && policy.POLICY === undefined) {
    const text = fs.existsSync(policy.POLICY_FILE) ? fs.readFileSync(policy.POLICY_FILE, 'utf8') : '';
    return `POLICY_FILE ${policy.POLICY_FILE} (${ruleNames(text)})`;
  }
  if (policy.POLICY !== undefined) {
    const what = policy.POLICY.trim() === 'open' ? 'open: any verified caller' : ruleNames(policy.POLICY);
    return `POLICY from your environment (${what})${policy.POLICY_FILE ? ', and POLICY_FILE' : ''}`;
  }
  return `the sandbox's own (${ruleNames(JSON.stringify(SANDBOX_POLICY))}); set POLICY or POLICY_FILE to try yours`;
}

/** The banner: where everything is, and commands that work when pasted in order into bash or zsh. */
function banner(sandbox: Sandbox, policy: NonNullable<SandboxOptions['policy']>): string {
  const vms = sandbox.vms();
  const [pre, scripted] = vms.filter((vm) => vm.kind === 'presubmit');
  const post = vms.find((vm) => vm.kind === 'postsubmit');
  if (!pre || !scripted || !post)
    throw new SandboxError('the sandbox needs two presubmit VMs and a postsubmit VM');
  const ownPolicy = policy.POLICY === undefined && policy.POLICY_FILE === undefined;
  const token = (host: string, audience: string) =>
    `TOKEN=$(curl -s -H 'Metadata-Flavor: Google' 'http://${host}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${audience}&format=full')`;
  const call = (args: string, url: string) =>
    `curl -s -w ' (HTTP %{http_code})\\n' ${args}-H "Authorization: Bearer $TOKEN" ${url}`;
  const scope = (extra = '') => `--data-binary '{"scope": "${SANDBOX_ORG}"${extra}}' `;
  const here = userDirectory();
  const script = (name: string) =>
    `bash ${shellQuote(path.relative(here, path.join(repoRoot(), 'deploy', 'vm', name)) || name)}`;
  const runnerDir = sandbox.runnerDir(scripted);
  const asVm = `GCE_METADATA_HOST=${scripted.metadataHost}`;

  return `
Sandbox running on 127.0.0.1 (no cloud account used). Ctrl-C stops everything.

  token proxy        ${sandbox.proxyUrl}
  instance deleter   ${sandbox.deleterUrl}
  autoscaler         ${sandbox.autoscalerUrl}   (webhook from the fake GitHub, pools presubmit and postsubmit)
  fleet status       ${sandbox.statusUrl}   (behind IAP: only with IAP's signed header; viewers domain:${STATUS_VIEWER_DOMAIN})
  status page        ${sandbox.statusFrontUrl}/status   (open it in a browser: a stand-in for IAP signs you in as ${STATUS_VIEWER})
  fake GitHub API    ${sandbox.github.baseUrl}   (org "${SANDBOX_ORG}", runner groups presubmit and postsubmit)
  fake Compute API   ${sandbox.compute.url}   (project ${SANDBOX_PROJECT.projectId})
  identity issuer    ${sandbox.issuer.certsUrl}

Caller policy: ${describePolicy(policy)}.
VMs call as ${SERVICE_ACCOUNTS.presubmit}
         or ${SERVICE_ACCOUNTS.postsubmit}.

Simulated VMs (name, GCE_METADATA_HOST, zone):
${vms.map((vm) => `  ${vm.name.padEnd(30)} ${vm.metadataHost.padEnd(18)} ${vm.zone}`).join('\n')}

Try it: paste the indented lines in order into bash or zsh${ownPolicy ? '' : ' (what each answers depends on your policy)'}.

A presubmit VM asks for a JIT runner config (200), then for a postsubmit label (403: its rule forbids it):
  ${token(pre.metadataHost, sandbox.proxyUrl)}
  ${call(`-X POST ${scope()}`, `${sandbox.proxyUrl}/jitconfig`)}
  ${call(`-X POST ${scope(', "labels": ["postsubmit"]')}`, `${sandbox.proxyUrl}/jitconfig`)}

A postsubmit VM may still use the upstream API, a registration token (200):
  ${token(post.metadataHost, sandbox.proxyUrl)}
  ${call(`-X POST ${scope()}`, `${sandbox.proxyUrl}/register`)}

The presubmit VM asks the deleter whether its MIG wants to shrink (false), then deletes itself:
  ${token(pre.metadataHost, sandbox.deleterUrl)}
  ${call('', `${sandbox.deleterUrl}/`)}
  ${call('-X DELETE ', `${sandbox.deleterUrl}/`)}

The real VM scripts (deploy/vm/) as the other presubmit VM, ${scripted.name}: at boot (a JIT config,
then one job on the runner stand-in), on the idle timer (GitHub lists no busy runner for it, and its
MIG is not shrinking: the VM is kept), at shutdown (the ephemeral runner is already gone) and after the job (the VM deletes itself):
  ${asVm} RUNNER_DIR=${shellQuote(runnerDir)} ${script('register.sh')}
  ${asVm} ${script('idle-check.sh')}
  ${asVm} ${script('deregister.sh')}
  ${asVm} ${script('delete-self.sh')}
The runner stand-in's JSON record goes to ${path.join(runnerDir, 'runner-standin.jsonl')}
(prefix register.sh with RUNNER_STANDIN_LOG=/dev/stderr to see it here).

The autoscaler: queue a postsubmit job at the fake GitHub (201); its signed webhook reaches the autoscaler,
which creates a VM in gh-runner-postsubmit; the VM registers a JIT runner, runs the job and deletes itself.
Then Cloud Scheduler's reconciliation, with its own identity token (200: redelivers lost webhooks):
  curl -s -w ' (HTTP %{http_code})\\n' -X POST -H 'Content-Type: application/json' --data-binary '{"repository": "${SANDBOX_ORG}/app", "labels": ${JSON.stringify(RUNNER_LABELS.postsubmit)}}' ${sandbox.github.baseUrl}/_sandbox/jobs
  ${token(sandbox.schedulerMetadataHost, sandbox.autoscalerUrl)}
  ${call('-X POST ', `${sandbox.autoscalerUrl}/reconcile`)}
A job's status, and the runner (VM) that ran it: curl -s ${sandbox.github.baseUrl}/_sandbox/jobs/<its id>

The fleet status page: pools, MIGs and templates, VMs with their runners and the runner versions they
reported, against the actions/runner releases. In a browser on this machine: ${sandbox.statusFrontUrl}/status
(reconciliations join VMs and runners: run the POST /reconcile above first). Behind IAP, with curl: an
assertion as IAP signs it for ${STATUS_VIEWER} (200), then a runner VM's identity token instead (401):
  ASSERTION=$(curl -s ${sandbox.statusFrontUrl}${IAP_ASSERTION_PATH})
  curl -s -H "x-goog-iap-jwt-assertion: $ASSERTION" ${sandbox.statusUrl}/status.json | head -c 300; echo
  ${token(post.metadataHost, sandbox.statusUrl)}
  ${call('-H "x-goog-iap-jwt-assertion: $TOKEN" ', `${sandbox.statusUrl}/status`)}
`;
}

/** `npm start`: the whole system on loopback, until Ctrl-C, SIGTERM or SIGHUP. */
async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(SANDBOX_USAGE);
    return;
  }
  if (argv.length > 0) throw new UsageError(`unknown argument ${JSON.stringify(argv[0])}`);

  const running: { sandbox?: Sandbox } = {};
  let stopping = false;
  const shutdown = (reason: string, status: number) => {
    if (stopping) return;
    stopping = true;
    // Still starting: what has started goes with this process (sandbox/exit-with-parent.ts).
    const { sandbox } = running;
    if (!sandbox) process.exit(status);
    if (status === 0) console.log(`\nStopping the sandbox (${reason})…`);
    else console.error(`\nSandbox: ${reason}\nStopping the sandbox.`);
    sandbox.stop().then(
      () => process.exit(status),
      (error: unknown) => {
        console.error(`Stopping the sandbox failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  // A Ctrl-C reaches this process (and scripts/start.js, which passes it on) but not the services: they
  // run in their own process groups and are stopped here, in order. Repeated signals change nothing.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => shutdown(signal, 0));
  }

  const env = process.env;
  const policy = policyFromEnv(env);
  const sandbox = await startSandbox({
    proxyPort: portFrom(env.SANDBOX_PROXY_PORT, 8080, 'SANDBOX_PROXY_PORT'),
    deleterPort: portFrom(env.SANDBOX_DELETER_PORT, 8081, 'SANDBOX_DELETER_PORT'),
    autoscalerPort: portFrom(env.SANDBOX_AUTOSCALER_PORT, 8082, 'SANDBOX_AUTOSCALER_PORT'),
    statusPort: portFrom(env.SANDBOX_STATUS_PORT, 8083, 'SANDBOX_STATUS_PORT'),
    iapFrontPort: portFrom(env.SANDBOX_IAP_PORT, 8084, 'SANDBOX_IAP_PORT'),
    policy,
    onServiceLog: env.SANDBOX_VERBOSE ? (service, line) => console.log(`[${service}] ${line}`) : () => {},
  });
  running.sandbox = sandbox;
  sandbox.serviceExit.then(
    (exit) => shutdown(describeServiceExit(exit), 1),
    () => {},
  );

  try {
    console.log(banner(sandbox, policy));
  } catch (error) {
    shutdown(`${(error as Error).message}.`, 1);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n\n${SANDBOX_USAGE}`);
    process.exit(2);
  }
  const message = error instanceof SandboxError ? error.message : String((error as Error)?.stack ?? error);
  console.error(`Sandbox failed to start: ${message}`);
  process.exit(1);
});
