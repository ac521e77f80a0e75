import fs from 'node:fs';
import path from 'node:path';
import { SERVICE_ENTRY_POINTS, TOOL_ENTRY_POINTS } from '#entry-points';
import { repoRoot } from '#sandbox/sandbox';

const root = repoRoot();
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  main: string;
  imports: Record<string, string | { types: string; default: string }>;
  scripts: Record<string, string>;
};

/** The TypeScript source a `dist/` path is compiled from (tsconfig's rootDir is the repository). */
const sourceOf = (entry: string) => entry.replace(/^dist\//, '').replace(/\.js$/, '.ts');

describe('entry points', () => {
  const entries = [
    ...Object.values(SERVICE_ENTRY_POINTS).flatMap((service) => Object.values(service)),
    ...Object.values(TOOL_ENTRY_POINTS),
  ];

  it.each(entries)('%s is compiled from a source file that exists', (entry) => {
    expect(entry).toMatch(/^dist\/.+\.js$/);
    expect(fs.existsSync(path.join(root, sourceOf(entry)))).toBe(true);
  });

  it("package.json's main is the deleter's Cloud Function entry", () => {
    expect(pkg.main).toBe(SERVICE_ENTRY_POINTS['instance-deleter'].function);
  });

  it.each(Object.keys(SERVICE_ENTRY_POINTS))('npm run start:%s starts that service', (name) => {
    expect(pkg.scripts[`start:${name}`]).toBe(`node scripts/start.js ${name}`);
  });
});

describe("package.json's imports", () => {
  const conditional = Object.entries(pkg.imports).filter(
    (entry): entry is [string, { types: string; default: string }] => typeof entry[1] === 'object',
  );

  it.each(conditional)('%s maps its source to its compiled form', (_name, target) => {
    // `types` serves tsc and the type check, `default` the built code under plain node: the same module.
    expect(target.default).toBe(`./dist/${target.types.replace(/^\.\//, '').replace(/\.ts$/, '.js')}`);
    if (!target.types.includes('*')) expect(fs.existsSync(path.join(root, target.types))).toBe(true);
  });
});
