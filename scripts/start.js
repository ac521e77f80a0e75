#!/usr/bin/env node
// `npm start`: builds when the sources are newer than the build, then starts the local sandbox. Always the
// sandbox, whatever the environment holds (a GITHUB_TOKEN exported by the gh CLI, Codespaces or an Actions
// job included): production starts through `npm run start:token-proxy` and `npm run start:instance-deleter`
// (or the container, deploy/container/entrypoint.sh).
// `npm run demo`, `npm run bench`, `npm run soak`, `npm run fleet` and `npm run start:<service>` come through here too
// (`start.js [demo|bench|soak|fleet|token-proxy|instance-deleter] [flags]`), so they also build first when needed.
//
// This process stays the parent of what it starts and nothing outlives it: the first SIGINT or SIGTERM is
// passed on (SIGHUP as SIGTERM), once; when its own parent goes away (npm exits on SIGTERM without passing
// it on) it stops the child; the child exits by itself if this process is killed outright
// (sandbox/exit-with-parent.ts). It exits with the child's status.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

const sourcesChanged = () => {
  if (!fs.existsSync(stamp)) return true;
  const built = fs.statSync(stamp).mtimeMs;
  return ['services', 'shared', 'sandbox', 'bench']
    .filter((dir) => fs.existsSync(path.join(root, dir)))
    .some((dir) => newestSource(path.join(root, dir)) > built);
};

if (sourcesChanged()) {
  console.log('Building…');
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

// After the build: the one list of entry paths (services/entry-points.ts), as compiled.
const { SERVICE_ENTRY_POINTS, TOOL_ENTRY_POINTS } = await import('#entry-points');
const { exitWithParentArgs } = await import('#sandbox/node-process');

// `start.js --help` and `npm start -- --help` are the sandbox's flags.
const argv = process.argv.slice(2);
const [command, ...args] = argv.length === 0 || argv[0].startsWith('-') ? ['start', ...argv] : argv;
const entry = Object.hasOwn(SERVICE_ENTRY_POINTS, command)
  ? SERVICE_ENTRY_POINTS[command].main
  : command === 'start'
    ? TOOL_ENTRY_POINTS.sandbox
    : command === 'demo' || command === 'bench' || command === 'soak' || command === 'fleet'
      ? TOOL_ENTRY_POINTS[command]
      : usage(command);

function usage(unknown) {
  const known = ['start', 'demo', 'bench', 'soak', 'fleet', ...Object.keys(SERVICE_ENTRY_POINTS)];
  console.error(`unknown command ${JSON.stringify(unknown)}: use one of ${known.join(', ')}`);
  process.exit(2);
}

const child = spawn(process.execPath, [...exitWithParentArgs(), path.join(root, entry), ...args], {
  cwd: root,
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  // npm runs scripts in the package root and says in INIT_CWD where the user is; without npm, it is here.
  env: { ...process.env, INIT_CWD: process.env.INIT_CWD ?? process.cwd() },
});

// Once: a Ctrl-C reaches the child from the terminal too, and a service stops at once on a second signal.
let passed = false;
const pass = (signal) => {
  if (passed || child.exitCode !== null || child.signalCode !== null) return;
  passed = true;
  child.kill(signal);
};
process.on('SIGINT', () => pass('SIGINT'));
process.on('SIGTERM', () => pass('SIGTERM'));
process.on('SIGHUP', () => pass('SIGTERM'));

const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) pass('SIGTERM');
}, 250).unref();

child.on('exit', (code, signal) => {
  process.exit(code ?? 128 + (os.constants.signals[signal] ?? 0));
});
