#!/usr/bin/env node
// `npm start`: builds when the sources are newer than the build, then starts the local sandbox — or,
// when GitHub credentials are configured in the environment, the token proxy itself (and the instance
// deleter when ALLOWED_MIG_PATTERN is set), as they run in production.
// `npm run demo`, `npm run bench`, `npm run soak` and `npm run start:<service>` come through here too
// (`start.js demo|bench|soak|token-proxy|instance-deleter [flags]`), so they also build first when needed.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
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

const env = process.env;
const [command = 'start', ...args] = process.argv.slice(2);
// After the build: the one list of entry paths (services/entry-points.ts), as compiled.
const { SERVICE_ENTRY_POINTS, TOOL_ENTRY_POINTS } = await import('#entry-points');
const production = command === 'start' && Boolean(env.GITHUB_TOKEN || env.GITHUB_APP_ID);
const entries = Object.hasOwn(SERVICE_ENTRY_POINTS, command)
  ? [SERVICE_ENTRY_POINTS[command].main]
  : command === 'demo' || command === 'bench' || command === 'soak'
    ? [TOOL_ENTRY_POINTS[command]]
    : command !== 'start'
      ? usage(command)
      : production
        ? [
            SERVICE_ENTRY_POINTS['token-proxy'].main,
            ...(env.ALLOWED_MIG_PATTERN ? [SERVICE_ENTRY_POINTS['instance-deleter'].main] : []),
          ]
        : [TOOL_ENTRY_POINTS.sandbox];

function usage(unknown) {
  const known = ['start', 'demo', 'bench', 'soak', ...Object.keys(SERVICE_ENTRY_POINTS)];
  console.error(`unknown command ${JSON.stringify(unknown)}: use one of ${known.join(', ')}`);
  process.exit(64);
}

const children = entries.map((entry, index) =>
  spawn(process.execPath, [path.join(root, entry), ...args], {
    cwd: root,
    stdio: 'inherit',
    // The second service gets the next port, so both fit on one machine.
    env: index === 0 ? env : { ...env, PORT: String(Number(env.DELETER_PORT ?? 8081)) },
  }),
);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => children.forEach((child) => child.kill(signal)));
}
let remaining = children.length;
let failed = 0;
for (const child of children) {
  child.on('exit', (code) => {
    if (code) failed = code;
    if (--remaining === 0) process.exit(failed);
  });
}
