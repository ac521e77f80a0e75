import { SandboxError, SANDBOX_ORG, startSandbox } from './sandbox.js';

/** Reads a port from the environment (the sandbox's only settings), or the default. */
function portFrom(value: string | undefined, fallback: number, variable: string): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new SandboxError(`${variable} must be a port number, not ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** `npm start` without cloud credentials: the whole system on loopback, until Ctrl-C. */
async function main(): Promise<void> {
  const env = process.env;
  const sandbox = await startSandbox({
    proxyPort: portFrom(env.SANDBOX_PROXY_PORT, 8080, 'SANDBOX_PROXY_PORT'),
    deleterPort: portFrom(env.SANDBOX_DELETER_PORT, 8081, 'SANDBOX_DELETER_PORT'),
    onServiceLog: env.SANDBOX_VERBOSE ? (service, line) => console.log(`[${service}] ${line}`) : () => {},
  });
  const vms = sandbox.vms();
  const pre = vms.find((vm) => vm.kind === 'presubmit')!;
  const post = vms.find((vm) => vm.kind === 'postsubmit')!;
  const md = (host: string, audience: string) =>
    `curl -s -H 'Metadata-Flavor: Google' 'http://${host}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${audience}&format=full'`;

  console.log(`
Sandbox running on 127.0.0.1 (no cloud account used). Ctrl-C stops everything.

  token proxy        ${sandbox.proxyUrl}
  instance deleter   ${sandbox.deleterUrl}
  fake GitHub API    ${sandbox.github.baseUrl}   (org "${SANDBOX_ORG}", groups presubmit/postsubmit)
  fake Compute API   ${sandbox.compute.url}
  identity issuer    ${sandbox.issuer.certsUrl}

Simulated VMs (GCE_METADATA_HOST of each):
${vms.map((vm) => `  ${vm.name.padEnd(30)} ${vm.metadataHost.padEnd(18)} ${vm.zone}`).join('\n')}

Try it (a presubmit VM asks for a JIT runner config, then tries a postsubmit label):
  TOKEN=$(${md(pre.metadataHost, sandbox.proxyUrl)})
  curl -s -X POST -H "Authorization: Bearer $TOKEN" --data-binary '{"scope": "${SANDBOX_ORG}"}' ${sandbox.proxyUrl}/jitconfig
  curl -s -X POST -H "Authorization: Bearer $TOKEN" --data-binary '{"scope": "${SANDBOX_ORG}", "labels": ["postsubmit"]}' ${sandbox.proxyUrl}/jitconfig

A postsubmit VM may still use the upstream API (a registration token):
  TOKEN=$(${md(post.metadataHost, sandbox.proxyUrl)})
  curl -s -X POST -H "Authorization: Bearer $TOKEN" --data-binary '{"scope": "${SANDBOX_ORG}"}' ${sandbox.proxyUrl}/register

Ask the deleter whether the MIG wants to shrink, then delete the VM:
  TOKEN=$(${md(pre.metadataHost, sandbox.deleterUrl)})
  curl -s -H "Authorization: Bearer $TOKEN" ${sandbox.deleterUrl}/
  curl -s -X DELETE -H "Authorization: Bearer $TOKEN" ${sandbox.deleterUrl}/

Run the real VM scripts against it:
  GCE_METADATA_HOST=${pre.metadataHost} RUNNER_DIR=sandbox/runner-standin SANDBOX_GITHUB_URL=${sandbox.github.baseUrl} bash deploy/vm/register.sh
`);

  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping the sandbox…');
    sandbox.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`Stopping the sandbox failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  const message = error instanceof SandboxError ? error.message : String((error as Error)?.stack ?? error);
  console.error(`Sandbox failed to start: ${message}`);
  process.exit(1);
});
