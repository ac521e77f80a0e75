import { runAutoscaledVm } from '#sandbox/autoscaled-vm';
import type { AutoscaledVmOutcome } from '#sandbox/autoscaled-vm';
import {
  SANDBOX_ORG,
  SANDBOX_RUNNER_VERSION,
  SCHEDULER_SERVICE_ACCOUNT,
  startSandbox,
  STATUS_IAP_AUDIENCE,
} from '#sandbox/sandbox';
import type { Sandbox, SandboxVm } from '#sandbox/sandbox';
import { headlessChromium } from './headless-chromium.js';

const METADATA = { 'Metadata-Flavor': 'Google' };

/** An identity token from a metadata server of the sandbox (a VM's, or Cloud Scheduler's). */
async function identityToken(metadataHost: string, audience: string): Promise<string> {
  const url = `http://${metadataHost}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(audience)}&format=full`;
  const answer = await fetch(url, { headers: METADATA });
  expect(answer.status).toBe(200);
  return answer.text();
}

/**
 * The status page of the sandbox `npm start` runs (the same `startSandbox`, every port free), in a real
 * browser: the status service is the built one, reading the built autoscaler's `GET /fleet` with its own
 * identity token; the browser comes in through the sandbox's stand-in for IAP, as `npm start` tells a person
 * to. A VM lives a runner's life (a JIT runner through the token proxy, connected with the release its
 * template names), Cloud Scheduler's reconciliation joins it, and the page shows it.
 */
describe('the sandbox status page in chromium', () => {
  let sandbox: Sandbox;
  let vm: SandboxVm;
  const lives = new AbortController();
  let life: Promise<AutoscaledVmOutcome>;
  const { browse, closeAll } = headlessChromium('sandbox-status');

  beforeAll(async () => {
    sandbox = await startSandbox({
      proxyPort: 0,
      deleterPort: 0,
      autoscalerPort: 0,
      statusPort: 0,
      iapFrontPort: 0,
      vms: { presubmit: 0, postsubmit: 0 },
    });
    vm = await sandbox.addVm('presubmit');
    // The VM's runner registers and waits for a job that never comes (until the test ends).
    life = runAutoscaledVm(vm.name, {
      metadataHost: vm.metadataHost,
      githubUrl: sandbox.github.baseUrl,
      jobMs: 0,
      idleTimeoutMs: 600_000,
      signal: lives.signal,
    });
    const online = async () =>
      sandbox.github
        .listRunners({ kind: 'org', org: SANDBOX_ORG })
        .some((r) => r.name === vm.name && r.status === 'online');
    for (let i = 0; i < 600 && !(await online()); i += 1) await new Promise((r) => setTimeout(r, 100));
    expect(await online()).toBe(true);

    // Cloud Scheduler's reconciliation joins the VM with its runner.
    const scheduler = sandbox.schedulerMetadataHost;
    const reconciled = await fetch(`${sandbox.autoscalerUrl}/reconcile`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await identityToken(scheduler, sandbox.autoscalerUrl)}` },
    });
    expect(reconciled.status).toBe(200);
    expect(SCHEDULER_SERVICE_ACCOUNT).toMatch(/^autoscaler-scheduler@/);
  }, 180_000);

  afterAll(async () => {
    lives.abort();
    await life?.catch(() => undefined);
    await closeAll();
    await sandbox?.stop();
  }, 120_000);

  it('shows the pool, its VM and the runner with the version it reported', async () => {
    const page = await (await browse()).newPage();
    const response = await page.goto(`${sandbox.statusFrontUrl}/status`);
    expect(response?.status()).toBe(200);
    await expect(page.title()).resolves.toMatch(/^Fleet status/);
    await expect(page.locator('header').innerText()).resolves.toContain('signed in as you@example.com');

    const pool = page.locator('section#pool-presubmit');
    await expect(pool.locator('h2').innerText()).resolves.toMatch(/^presubmit/);
    await expect(pool.locator('table.migs').innerText()).resolves.toContain('gh-runner-presubmit');
    const row = pool.locator('table.vms tr', { hasText: vm.name });
    await expect(row.count()).resolves.toBe(1);
    const text = await row.innerText();
    // VM, template (its version), state, runner (named after the VM), the version it reported, status.
    expect(text).toContain(`gh-runner-presubmit-${SANDBOX_RUNNER_VERSION.replaceAll('.', '-')}`);
    expect(text).toMatch(
      new RegExp(`idle\\s+${vm.name}\\s+#\\d+\\s+${SANDBOX_RUNNER_VERSION.replace(/\./g, '\\.')}\\s+online`),
    );
    // Judged on the version the runner reported: 2.331.0 came out 10 days ago.
    await expect(pool.innerText()).resolves.toMatch(
      new RegExp(`Runners report: ${SANDBOX_RUNNER_VERSION.replace(/\./g, '\\.')}: 1 runner`),
    );
    await expect(pool.innerText()).resolves.toMatch(/2\.331\.0 came out 10 days ago: 20 days left/);
    expect(await page.locator('script').count()).toBe(0);
  }, 120_000);

  it("refuses a runner VM's identity token, and a person outside STATUS_VIEWERS", async () => {
    const vmToken = await identityToken(vm.metadataHost, sandbox.statusUrl);
    const asVm = await (
      await browse({ authorization: `Bearer ${vmToken}`, 'x-goog-iap-jwt-assertion': vmToken })
    ).newPage();
    const refused = await asVm.goto(`${sandbox.statusUrl}/status`);
    expect(refused?.status()).toBe(401);
    await expect(asVm.locator('body').innerText()).resolves.toMatch(/must be signed with ES256/);

    const outsider = sandbox.iap.mintAssertion({ audience: STATUS_IAP_AUDIENCE, email: 'eve@other.example' });
    const asOutsider = await (await browse({ 'x-goog-iap-jwt-assertion': outsider })).newPage();
    expect((await asOutsider.goto(`${sandbox.statusUrl}/status`))?.status()).toBe(403);

    const anonymous = await (await browse()).newPage();
    expect((await anonymous.goto(`${sandbox.statusUrl}/status`))?.status()).toBe(401);
  }, 120_000);
});
