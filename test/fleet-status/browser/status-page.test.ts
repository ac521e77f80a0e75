import fs from 'node:fs';
import path from 'node:path';
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi } from '#fakes/compute-api';
import { startFakeGitHub } from '#fakes/github-api';
import type { FakeGitHub } from '#fakes/github-api';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import { buildFleetWorld, startFleetStub, STUB_AUDIENCE } from '../fleet-stub.js';
import { buildStatus, runnerReleases, startStatusSide } from '../harness.js';
import type { StatusSide, StatusUnderTest } from '../harness.js';
import { headlessChromium } from './headless-chromium.js';

/** Set FLEET_STATUS_SCREENSHOT=docs/images/fleet-status.png to refresh the picture in the docs. */
const SCREENSHOT = process.env.FLEET_STATUS_SCREENSHOT;

/**
 * The status page in a real browser: the status service (in process) reads a stand-in for the autoscaler's
 * `GET /fleet` (with the join of VMs and runners being added to it) with its own identity token, Compute
 * from the fake, and the releases from the fake GitHub; the browser comes through "IAP" with the
 * `x-goog-iap-jwt-assertion` header IAP adds.
 */
describe('fleet status page in chromium', () => {
  let google: FakeGoogleIssuer;
  let compute: FakeComputeApi;
  let github: FakeGitHub;
  let side: StatusSide;
  let stub: ServedApp;
  let status: StatusUnderTest;
  let served: ServedApp;
  const { browse, userDataDirs, closeAll } = headlessChromium('fleet-status');

  beforeAll(async () => {
    [google, compute, github] = await Promise.all([
      startFakeGoogleIssuer(),
      startFakeComputeApi({ bootDelayMs: Infinity }),
      startFakeGitHub(),
    ]);
    github.runnerReleases = runnerReleases(Date.now());
    const world = buildFleetWorld(compute, Date.now);
    stub = await startFleetStub(google, () => world.view());
    side = await startStatusSide(google);
    status = buildStatus({
      autoscalerUrl: stub.url,
      autoscalerAudience: STUB_AUDIENCE,
      compute,
      github,
      side,
    });
    served = await serveApp(status.app);
  }, 60_000);

  afterAll(async () => {
    await closeAll();
    await served?.close();
    await stub?.close();
    await side?.close();
    await Promise.all([google?.close(), compute?.close(), github?.close()]);
  }, 60_000);

  it('shows a pool, its MIGs and templates, a VM and its runner, readable without JavaScript', async () => {
    const context = await browse({ 'x-goog-iap-jwt-assertion': status.assertion() });
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    const response = await page.goto(`${served.url}/status`);
    expect(response?.status()).toBe(200);

    await expect(page.title()).resolves.toMatch(/^Fleet status/);
    const cpu = page.locator('section#pool-linux-cpu');
    await expect(cpu.locator('h2').innerText()).resolves.toMatch(/^linux-cpu/);
    const busyVm = cpu.locator('table.vms tr', { hasText: 'gh-cpu-8812001' });
    await expect(busyVm.innerText()).resolves.toMatch(/gh-cpu-8812001\s+#41\s+2\.329\.0\s+online\s+busy/);
    await expect(cpu.locator('table.vms tr', { hasText: 'gh-cpu-8812002' }).innerText()).resolves.toMatch(
      /gh-cpu-8812002\s+#42/,
    );
    await expect(cpu.locator('table.migs').innerText()).resolves.toMatch(
      /canary\s+gh-runner-2-331-0\s+runner 2\.331\.0/,
    );
    await expect(cpu.innerText()).resolves.toMatch(/2\.330\.0 came out 20 days ago: 10 days left/);
    await expect(
      page.locator('section#pool-linux-gpu table.vms tr', { hasText: 'gh-gpu-7001' }).count(),
    ).resolves.toBe(1);

    // The inline style applies: the CSP allows it by its hash (a blocked style would leave the header white).
    const headerBackground = await page
      .locator('header')
      .evaluate(
        (el) =>
          (
            globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }
          ).getComputedStyle(el).backgroundColor,
      );
    expect(headerBackground).toBe('rgb(36, 41, 47)');
    expect(consoleErrors).toEqual([]);
    expect(await page.locator('script').count()).toBe(0);

    const file = SCREENSHOT ? path.resolve(SCREENSHOT) : path.join(userDataDirs[0]!, 'fleet-status.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(fs.statSync(file).size).toBeGreaterThan(10_000);
  }, 90_000);

  it("refuses a runner VM's identity token, and a visit without IAP", async () => {
    const vmToken = google.mintIdentityToken({
      audience: served.url,
      email: 'gh-runner@runners-prod.iam.gserviceaccount.com',
      compute: {
        projectId: 'runners-prod',
        projectNumber: 123456789012,
        zone: 'us-central1-a',
        instanceId: '9223372036854775809',
        instanceName: 'gh-cpu-8812001',
      },
    });
    const asVm = await browse({ authorization: `Bearer ${vmToken}`, 'x-goog-iap-jwt-assertion': vmToken });
    const vmPage = await asVm.newPage();
    const refused = await vmPage.goto(`${served.url}/status`);
    expect(refused?.status()).toBe(401);
    await expect(vmPage.locator('body').innerText()).resolves.toMatch(/must be signed with ES256/);

    const anonymous = await (await browse()).newPage();
    const none = await anonymous.goto(`${served.url}/status`);
    expect(none?.status()).toBe(401);
    await expect(anonymous.locator('body').innerText()).resolves.toMatch(
      /no x-goog-iap-jwt-assertion header/,
    );
  }, 90_000);
});
