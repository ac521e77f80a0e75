/**
 * The built deleter's Compute client with the trimmed API descriptor the build writes
 * (services/instance-deleter/build/build-compute-descriptor.mjs). It runs in a plain node child: jest resolves modules itself and
 * ignores `require.cache`, so only a real process shows which descriptor the clients use. Every call the
 * deleter makes, zonal and regional, with operation waits, a failed operation and a 404, over google-gax's
 * REST half alone (no @grpc/* module loaded).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startFakeComputeApi } from '#fakes/compute-api';
import type { FakeComputeApi } from '#fakes/compute-api';
import { repoRoot } from '#sandbox/sandbox';

const CHILD = `
const { createComputeClient, computeDescriptor } = await import(process.env.CLIENT_MODULE);
const { PassThroughClient } = await import('google-auth-library');
const api = createComputeClient({ apiEndpoint: '127.0.0.1', port: Number(process.env.FAKE_PORT), protocol: 'http', authClient: new PassThroughClient() });
const out = { computeDescriptor, calls: [] };
const instance = await api.getInstance('p', 'us-central1-b', 'vz1');
out.calls.push(['getInstance', instance.id.length]);
for (const ref of [
  { project: 'p', scope: 'zones', location: 'us-central1-b', name: 'gh-runner-z' },
  { project: 'p', scope: 'regions', location: 'us-central1', name: 'gh-runner-r' },
]) {
  const mig = await api.getMig(ref);
  out.calls.push(['getMig', ref.scope, mig.targetSize, mig.autoscaler?.name]);
  out.calls.push(['getRecommendedSize', ref.scope, await api.getRecommendedSize(mig.autoscaler)]);
  const members = await api.listManagedInstances(ref);
  out.calls.push(['listManagedInstances', ref.scope, members.map((m) => m.name).sort()]);
  await api.deleteInstance(ref, members[0].zone, members[0].name);
  out.calls.push(['deleteInstance', ref.scope]);
}
for (const failing of [
  () => api.getInstance('p', 'us-central1-b', 'missing'),
  () => api.deleteInstance({ project: 'p', scope: 'zones', location: 'us-central1-b', name: 'gh-runner-z' }, 'us-central1-b', 'missing'),
]) {
  try { await failing(); out.calls.push(['no error']); } catch (error) { out.calls.push([error.name, error.status]); }
}
// What the process loaded: REST clients need none of google-gax's gRPC half.
const { createRequire } = await import('node:module');
out.grpcFiles = Object.keys(createRequire(process.env.CLIENT_MODULE).cache).filter((file) => file.includes('/@grpc/'));
process.stdout.write(JSON.stringify(out));
`;

describe('the built Compute client with the trimmed descriptor', () => {
  let fake: FakeComputeApi;
  const clientModule = path.join(repoRoot(), 'dist/services/instance-deleter/src/compute-client.js');

  beforeAll(async () => {
    fake = await startFakeComputeApi({ requireAuth: false, operationsPendingPolls: 2 });
    fake.addProject({ projectId: 'p', projectNumber: 1 });
    const zonal = fake.addMig({
      project: 'p',
      zone: 'us-central1-b',
      name: 'gh-runner-z',
      autoscaler: { recommendedSize: 1 },
    });
    const regional = fake.addMig({
      project: 'p',
      region: 'us-central1',
      name: 'gh-runner-r',
      autoscaler: { recommendedSize: 2 },
    });
    fake.addInstance({ project: 'p', zone: 'us-central1-b', name: 'vz1', mig: zonal });
    fake.addInstance({ project: 'p', zone: 'us-central1-b', name: 'vz2', mig: zonal });
    fake.addInstance({ project: 'p', zone: 'us-central1-a', name: 'vr1', mig: regional });
    fake.addInstance({ project: 'p', zone: 'us-central1-c', name: 'vr2', mig: regional });
  });
  afterAll(() => fake.close());

  it('is what the build wrote, for the installed @google-cloud/compute', () => {
    const written = JSON.parse(
      fs.readFileSync(
        path.join(repoRoot(), 'dist/services/instance-deleter/compute-descriptor.json'),
        'utf8',
      ),
    ) as { computeVersion: string };
    const installed = JSON.parse(
      fs.readFileSync(path.join(repoRoot(), 'node_modules/@google-cloud/compute/package.json'), 'utf8'),
    ) as { version: string };
    expect(written.computeVersion).toBe(installed.version);
  });

  it('loads its modules from the compile cache the build filled (services/instance-deleter/src/compile-cache.ts)', async () => {
    const prime = path.join(repoRoot(), 'dist/services/instance-deleter/src/prime-compile-cache.js');
    // Node's own debug output of the cache: one line per module, whether its entry was accepted.
    const { stderr } = await promisify(execFile)(process.execPath, [prime], {
      cwd: repoRoot(),
      env: { PATH: process.env.PATH ?? '', NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
    });
    const accepted = stderr.split('\n').filter((line) => line.includes(' was accepted'));
    expect(accepted).toEqual(
      expect.arrayContaining([
        expect.stringContaining('dist/services/instance-deleter/src/compute-client.js'),
        expect.stringContaining('@google-cloud/compute/build/src/v1/instances_client.js'),
        expect.stringContaining('google-gax/build/src/fallback.js'),
      ]),
    );
    expect(stderr).not.toMatch(/was rejected|mismatch/);
  }, 60_000);

  it('makes every call the deleter makes', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CHILD], {
      cwd: repoRoot(),
      env: { PATH: process.env.PATH ?? '', CLIENT_MODULE: clientModule, FAKE_PORT: String(fake.port) },
    });
    expect(JSON.parse(stdout)).toEqual({
      computeDescriptor: 'trimmed',
      calls: [
        ['getInstance', 19],
        ['getMig', 'zones', 2, 'gh-runner-z'],
        ['getRecommendedSize', 'zones', 1],
        ['listManagedInstances', 'zones', ['vz1', 'vz2']],
        ['deleteInstance', 'zones'],
        ['getMig', 'regions', 2, 'gh-runner-r'],
        ['getRecommendedSize', 'regions', 2],
        ['listManagedInstances', 'regions', ['vr1', 'vr2']],
        ['deleteInstance', 'regions'],
        ['ComputeError', 404],
        ['ComputeError', 400],
      ],
      grpcFiles: [],
    });
  }, 60_000);
});
