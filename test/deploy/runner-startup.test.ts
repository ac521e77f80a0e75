/**
 * deploy/runner-startup.sh's runner install, run for real against a loopback metadata server (the
 * sandbox's, with injected faults) and a loopback stand-in for GitHub's release downloads. It must read its
 * attributes through transient failures, and install only a release whose checksum it was given and
 * checked.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import type { FakeMetadataServer } from '#fakes/metadata-server';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const STARTUP = path.join(ROOT, 'deploy/runner-startup.sh');
const VERSION = '2.337.0';
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const TARBALL = `actions-runner-linux-${ARCH}-${VERSION}.tar.gz`;

let tmp: string;
let issuer: FakeGoogleIssuer;
let metadata: FakeMetadataServer | undefined;
let releases: http.Server;
let releasesUrl: string;
let tarball: Buffer;
let tarballSha: string;
const downloads: string[] = [];

/** A stand-in release: run.sh, and bin/installdependencies.sh, which the script runs. */
function makeTarball(dir: string): Buffer {
  const content = path.join(dir, 'release');
  fs.mkdirSync(path.join(content, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(content, 'run.sh'), '#!/bin/sh\necho runner\n', { mode: 0o755 });
  fs.writeFileSync(path.join(content, 'bin/installdependencies.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const out = path.join(dir, TARBALL);
  // Synchronous only here, at setup: no loopback server has to answer yet.
  expect(spawnSync('tar', ['-czf', out, '-C', content, '.']).status).toBe(0);
  return fs.readFileSync(out);
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-startup-test-'));
  tarball = makeTarball(tmp);
  tarballSha = crypto.createHash('sha256').update(tarball).digest('hex');
  issuer = await startFakeGoogleIssuer();
  releases = http.createServer((req, res) => {
    downloads.push(req.url ?? '');
    if (req.url === `/v${VERSION}/${TARBALL}`) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(tarball);
    } else {
      res.writeHead(404).end('Not Found');
    }
  });
  await new Promise<void>((resolve) => releases.listen(0, '127.0.0.1', resolve));
  releasesUrl = `http://127.0.0.1:${(releases.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await metadata?.close();
  metadata = undefined;
  downloads.length = 0;
});

afterAll(async () => {
  await new Promise<void>((resolve) => releases.close(() => resolve()));
  await issuer.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function startMetadata(attributes: Record<string, string>): Promise<FakeMetadataServer> {
  metadata = await startFakeMetadataServer({
    issuer,
    vm: {
      projectId: 'my-project',
      projectNumber: 326694433618,
      zone: 'us-central1-b',
      instanceId: '2875949485074006138',
      instanceName: 'gh-runner-presubmit-x7k2',
      serviceAccountEmail: 'gh-runner-presubmit@my-project.iam.gserviceaccount.com',
      attributes,
    },
  });
  return metadata;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  runnerDir: string;
}

/** Sources the startup script and runs its install_runner, as the current user, into a fresh directory. */
function installRunner(runnerDir?: string): Promise<Result> {
  const dir = runnerDir ?? fs.mkdtempSync(path.join(tmp, 'runner-'));
  if (!runnerDir) fs.rmSync(dir, { recursive: true });
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', 'source "$1" && install_runner', 'runner-startup', STARTUP], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: tmp,
        TMPDIR: tmp,
        RUNNER_DIR: dir,
        RUNNER_USER: os.userInfo().username,
        GCE_METADATA_HOST: metadata?.host ?? '127.0.0.1:9',
        RUNNER_DOWNLOAD_BASE: releasesUrl,
        METADATA_ATTEMPTS: '3',
        METADATA_MAX_DELAY_SECONDS: '1',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr, runnerDir: dir }));
  });
}

const pinned = () => ({ 'github-runner-version': VERSION, 'github-runner-sha256': tarballSha });

describe('deploy/runner-startup.sh install_runner', () => {
  it('installs the pinned release after checking it, and records it', async () => {
    await startMetadata(pinned());
    const result = await installRunner();
    expect(result.stderr).toContain(`installing actions/runner ${VERSION}`);
    expect(result.code).toBe(0);
    expect(fs.existsSync(path.join(result.runnerDir, 'run.sh'))).toBe(true);
    expect(fs.readFileSync(path.join(result.runnerDir, '.gce-github-runners-release'), 'utf8')).toBe(
      `version=${VERSION}\nsha256=${tarballSha}\narch=${ARCH}\n`,
    );
    expect(downloads).toEqual([`/v${VERSION}/${TARBALL}`]);
  }, 60_000);

  it('reads the checksum through transient metadata failures', async () => {
    const server = await startMetadata(pinned());
    server.controls.addFault({ path: 'github-runner-sha256', status: 503, times: 2 });
    const result = await installRunner();
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('reading instance attribute github-runner-sha256: 503; retrying');
    expect(server.controls.callsTo('GET', 'github-runner-sha256')).toHaveLength(3);
    expect(fs.existsSync(path.join(result.runnerDir, 'run.sh'))).toBe(true);
  }, 60_000);

  it('stops, installing nothing, when the checksum stays unreadable', async () => {
    const server = await startMetadata(pinned());
    server.controls.addFault({ path: 'github-runner-sha256', status: 503 });
    const result = await installRunner();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'reading instance attribute github-runner-sha256 failed after 3 attempts',
    );
    expect(fs.existsSync(result.runnerDir)).toBe(false);
    expect(downloads).toEqual([]);
  }, 60_000);

  it('stops on an unreachable metadata server', async () => {
    const result = await installRunner();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('failed after 3 attempts (last: network error)');
    expect(downloads).toEqual([]);
  }, 60_000);

  it('refuses to install a release without a checksum', async () => {
    await startMetadata({ 'github-runner-version': VERSION });
    const result = await installRunner();
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('github-runner-sha256 is not set: refusing to install');
    expect(downloads).toEqual([]);
    expect(fs.existsSync(result.runnerDir)).toBe(false);
  }, 60_000);

  it.each([
    ['no version', {}, 'github-runner-version is not set'],
    ['latest', { 'github-runner-version': 'latest' }, "'latest' is not a release version"],
  ])(
    'refuses %s',
    async (_, attributes, message) => {
      await startMetadata({ 'github-runner-sha256': 'ab'.repeat(32), ...attributes });
      const result = await installRunner();
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(downloads).toEqual([]);
    },
    60_000,
  );

  it('refuses a download that does not match the checksum, leaving nothing installed', async () => {
    await startMetadata({ 'github-runner-version': VERSION, 'github-runner-sha256': 'AB'.repeat(32) });
    const result = await installRunner();
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${TARBALL} does not match github-runner-sha256`);
    expect(fs.existsSync(path.join(result.runnerDir, 'run.sh'))).toBe(false);
  }, 60_000);

  it('keeps the release an image already holds, and replaces one the template does not ask for', async () => {
    await startMetadata(pinned());
    const first = await installRunner();
    expect(first.code).toBe(0);
    downloads.length = 0;
    const again = await installRunner(first.runnerDir);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`actions/runner ${VERSION} is already installed`);
    expect(downloads).toEqual([]);
    // An image baked with another release: the template's release is installed, checked.
    const record = path.join(first.runnerDir, '.gce-github-runners-release');
    fs.writeFileSync(record, 'version=2.300.0\nsha256=00\narch=x64\n');
    const replaced = await installRunner(first.runnerDir);
    expect(replaced.code).toBe(0);
    expect(replaced.stderr).toContain(
      `the image holds actions/runner 2.300.0; github-runner-version asks for ${VERSION}`,
    );
    expect(fs.readFileSync(record, 'utf8')).toContain(`version=${VERSION}`);
  }, 60_000);

  it('uses a runner an image holds without a record, reading no attribute', async () => {
    const server = await startMetadata({});
    const dir = fs.mkdtempSync(path.join(tmp, 'image-runner-'));
    fs.writeFileSync(path.join(dir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    const result = await installRunner(dir);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('using the actions/runner already in the image');
    expect(server.controls.calls).toHaveLength(0);
  }, 60_000);
});
