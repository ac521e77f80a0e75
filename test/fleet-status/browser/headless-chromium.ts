import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it when missing). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Flags for a sandboxed machine with no network beyond loopback and no display. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Fresh browser profiles for one test file, each closed and removed by `closeAll`. */
export interface HeadlessChromium {
  /** A fresh profile, JavaScript off, sending `headers` with every request (as IAP adds its header). */
  browse(headers?: Record<string, string>): Promise<BrowserContext>;
  /** The profile folders made so far, first first (a place for a screenshot). */
  readonly userDataDirs: readonly string[];
  closeAll(): Promise<void>;
}

export function headlessChromium(prefix: string): HeadlessChromium {
  const userDataDirs: string[] = [];
  const contexts: BrowserContext[] = [];
  return {
    userDataDirs,
    async browse(headers = {}) {
      const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-chromium-`));
      userDataDirs.push(userDataDir);
      const context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: FLAGS,
        extraHTTPHeaders: headers,
        viewport: { width: 1440, height: 900 },
        javaScriptEnabled: false,
      });
      contexts.push(context);
      return context;
    },
    async closeAll() {
      await Promise.all(contexts.map((c) => c.close()));
      for (const dir of userDataDirs) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
