import { OAuth2Client } from 'google-auth-library';
import { createComputeMigApi, createService, loadConfig } from '#autoscaler';
import { formatSoakReport, runSoak, SIMULATED_SOAK } from '#sandbox/soak/fleet-simulation';
import type { StartSoakTarget } from '#sandbox/soak/fleet-simulation';
import { captureLogs } from '#test-support/log-capture';
import { serveApp } from '#test-support/serve-app';

/**
 * The soak, in this process with an injected clock: 30 simulated minutes of random jobs, VMs that
 * never register, VMs that die mid-job and VMs that vanish and leave their runner behind, against the
 * autoscaler on loopback with the real clients and the fakes. At the end nothing is left that should not
 * be, and no job was killed. (`npm run soak` runs the same world in real time against the built service.)
 */
describe('soak', () => {
  it('leaves no VM or runner that should not be there after 30 simulated minutes, and kills no job', async () => {
    const logs = captureLogs('info');
    const startInProcess: StartSoakTarget = async (world) => {
      const auth = new OAuth2Client();
      auth.setCredentials({ access_token: 'ya29.soak-autoscaler' });
      const service = createService(loadConfig(world.env), {
        logger: logs.logger,
        now: world.now,
        compute: createComputeMigApi(world.compute.clientOptions(auth)),
      });
      const served = await serveApp(service.app);
      return { url: served.url, close: () => served.close() };
    };
    const report = await runSoak({ ...SIMULATED_SOAK, seed: 17, clock: 'simulated' }, startInProcess);
    process.stdout.write(`soak (simulated clock):\n${formatSoakReport(report)}\n`);

    expect(report.killedJobs).toEqual([]);
    expect(report.leftovers).toEqual({ vms: [], runners: [] });
    expect(report.jobs.unfinished).toBe(0);
    expect(report.reconcileProblems).toEqual([]);
    expect(report.jobs.queued).toBeGreaterThan(30);
    // Every fault was injected and every kind of reaping happened.
    expect(report.vms.neverRegistered).toBeGreaterThan(0);
    expect(report.vms.diedMidJob).toBeGreaterThan(0);
    expect(report.vms.vanished).toBe(2);
    expect(report.reaped.unregistered).toBe(report.vms.neverRegistered);
    expect(report.reaped.lost).toBeGreaterThan(0);
    expect(report.reaped.runnerLeft).toBeGreaterThanOrEqual(2);
    expect(report.reaped.idle).toBeGreaterThan(0);
    const decisions = logs.lines().filter((line) => line.message === 'reaper decision');
    expect(decisions.length).toBeGreaterThan(0);
    expect(decisions.every((line) => typeof line.reason === 'string' && line.reason !== '')).toBe(true);
  }, 300_000);
});
