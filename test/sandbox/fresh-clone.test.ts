/**
 * `npm run start:<service>` on a fresh clone, where dist/ does not exist yet: scripts/start.js builds
 * first, then starts the service, which says what its configuration lacks. It once failed with "Cannot
 * find module …/dist/…" and a stack trace. The clone is a copy of the sources in a temporary directory,
 * sharing this checkout's node_modules; the build in it takes a while on a busy machine, nothing is timed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch, ROOT } from './started-sandbox.js';

const SOURCES = [
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'scripts',
  'services',
  'shared',
  'sandbox',
  'bench',
];

let clone: string;

beforeAll(() => {
  clone = fs.mkdtempSync(path.join(os.tmpdir(), 'fresh-clone-'));
  for (const entry of SOURCES)
    fs.cpSync(path.join(ROOT, entry), path.join(clone, entry), { recursive: true });
  fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules')), path.join(clone, 'node_modules'), 'dir');
});

afterAll(() => fs.rmSync(clone, { recursive: true, force: true }));

it('builds first, then starts each service, which names what its configuration lacks', async () => {
  expect(fs.existsSync(path.join(clone, 'dist'))).toBe(false);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: clone };

  const proxy = launch(process.execPath, [path.join(clone, 'scripts', 'start.js'), 'token-proxy'], env);
  const proxyStatus = await proxy.exited;
  const proxyOutput = `${proxy.stdout()}${proxy.stderr()}`;
  expect(proxyOutput).not.toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND|\n\s+at /);
  expect(proxy.stdout()).toContain('Building…');
  expect({ status: proxyStatus, stderr: proxy.stderr() }).toEqual({
    status: 1,
    stderr: expect.stringMatching(/^Invalid configuration:\n {2}- AUTH_AUDIENCE: is required/),
  });
  expect(fs.existsSync(path.join(clone, 'dist', '.build-stamp'))).toBe(true);

  // Built now: the deleter starts without building again.
  const deleter = launch(
    process.execPath,
    [path.join(clone, 'scripts', 'start.js'), 'instance-deleter'],
    env,
  );
  expect(await deleter.exited).toBe(1);
  expect(deleter.stdout()).not.toContain('Building…');
  expect(deleter.stderr()).toMatch(/^Invalid configuration:[^]*ALLOWED_MIG_PATTERN: is required/);
});
