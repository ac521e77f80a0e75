/**
 * Property tests: no scope a caller can send reaches GitHub outside `/orgs/{org}/`, `/repos/{owner}/{repo}/`
 * or `/enterprises/{slug}/` with single safe segments; deny always wins; `match:` patterns are anchored;
 * the policy grants exactly what its rules say.
 */
import fc from 'fast-check';
import { compilePattern, PatternError } from '#shared';
import { formatScope, parseScope, parsePolicy, ScopeError, scopeCacheKey, scopePath } from '#token-proxy';
import { compileScopePattern } from '../../services/token-proxy/src/scope-pattern.js';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import { createSecretAudit, secretShapes } from '#test-support/secret-audit';
import { buildProxy, startProxyFakes, vm } from '#test-support/token-proxy-harness';
import type { Proxy, ProxyFakes } from '#test-support/token-proxy-harness';

/** One path segment GitHub names may occupy: no `/`, `%`, `?`, `#`, whitespace, non-ASCII; not `.` or `..`. */
const SEGMENT = '(?!\\.{1,2}(?:/|$))[A-Za-z0-9._-]+';
const SAFE_PREFIX = new RegExp(`^/(?:orgs/${SEGMENT}|repos/${SEGMENT}/${SEGMENT}|enterprises/${SEGMENT})$`);
const SAFE_GITHUB_CALL = new RegExp(
  `^/(?:orgs/${SEGMENT}|repos/${SEGMENT}/${SEGMENT}|enterprises/${SEGMENT})/actions/runners/(?:registration-token|remove-token)$`,
);

/** Pieces that have broken path handling elsewhere: separators, dots, encodings, whitespace, lookalikes. */
const HOSTILE_PIECES = [
  '/',
  '//',
  '.',
  '..',
  '../',
  '%',
  '%2e',
  '%2E',
  '%2f',
  '%2F',
  '%00',
  '?',
  '#',
  '&',
  '=',
  ' ',
  '\t',
  '\n',
  '\r',
  '\u0000',
  '\u00a0',
  '\u200b',
  '\u200d',
  '\u202e',
  '\ufeff',
  'ｍ',
  'у',
  'ı',
  'K',
  '\\',
  '{',
  '}',
  ':',
  '@',
  '+',
  ';',
  ',',
  '*',
  '~',
  '"',
  "'",
  '<',
  '>',
  'enterprise:',
  'Enterprise:',
  'orgs/',
  'repos/',
  'my-org',
  'app',
  'acme',
  'a',
  'Z',
  '9',
  '-',
  '_',
  '--',
  'x'.repeat(39),
  'y'.repeat(40),
];
const hostileScope = fc
  .array(fc.constantFrom(...HOSTILE_PIECES), { minLength: 0, maxLength: 8 })
  .map((parts) => parts.join(''));
const anyUnicode = fc.string({ unit: 'binary', maxLength: 60 });
const anyScope = fc.oneof(hostileScope, anyUnicode, fc.string({ maxLength: 80 }));

const login = fc
  .array(fc.stringMatching(/^[A-Za-z0-9]{1,6}$/), { minLength: 1, maxLength: 5 })
  .map((parts) => parts.join('-'))
  .filter((name) => name.length <= 39);
const repoName = fc.stringMatching(/^[A-Za-z0-9._-]{1,30}$/).filter((name) => name !== '.' && name !== '..');

describe('parseScope and scopePath', () => {
  it('turn any string into a safe path prefix or a ScopeError, nothing else', () => {
    fc.assert(
      fc.property(anyScope, (input) => {
        let scope;
        try {
          scope = parseScope(input);
        } catch (error) {
          expect(error).toBeInstanceOf(ScopeError);
          return;
        }
        const prefix = scopePath(scope);
        expect(prefix).toMatch(SAFE_PREFIX);
        // A URL built on it keeps exactly that path: nothing to normalise, no query, no fragment.
        const url = new URL(`https://api.github.com${prefix}/actions/runners/registration-token`);
        expect(url.pathname).toBe(`${prefix}/actions/runners/registration-token`);
        expect(url.search).toBe('');
        expect(url.hash).toBe('');
      }),
      { numRuns: 3000 },
    );
  });

  it('parse every valid org, owner/repo and enterprise:slug, and format them back', () => {
    const valid = fc.oneof(
      login,
      fc.tuple(login, repoName).map(([owner, repo]) => `${owner}/${repo}`),
      login.map((slug) => `enterprise:${slug}`),
    );
    fc.assert(
      fc.property(valid, fc.constantFrom('', '/', '//'), (scope, slashes) => {
        const parsed = parseScope(scope.startsWith('enterprise:') ? scope : `${slashes}${scope}${slashes}`);
        expect(formatScope(parsed)).toBe(scope);
        expect(scopeCacheKey(parseScope(scope.toUpperCase().replace('ENTERPRISE:', 'enterprise:')))).toBe(
          scope.toLowerCase(),
        );
      }),
      { numRuns: 1000 },
    );
  });
});

/** Escapes the syntax characters (the `u` flag refuses needless escapes such as `\-`). */
const escapeRegex = (value: string) => value.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
const literalText = fc.string({
  unit: fc.constantFrom(...'abcXYZ019-_./*+?()[]{}|^$\\'.split('')),
  minLength: 1,
  maxLength: 12,
});
const affix = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_./*'.split('')), minLength: 1, maxLength: 5 });

describe('compilePattern', () => {
  it('matches a literal, or an escaped literal regex, only as the whole value, in any case', () => {
    fc.assert(
      fc.property(literalText, affix, affix, fc.boolean(), (value, prefix, suffix, asRegex) => {
        const pattern = compilePattern(asRegex ? `match:${escapeRegex(value)}` : value, {
          caseInsensitive: true,
        });
        expect(pattern.test(value)).toBe(true);
        expect(pattern.test(value.toUpperCase())).toBe(true);
        expect(pattern.test(`${prefix}${value}`)).toBe(false);
        expect(pattern.test(`${value}${suffix}`)).toBe(false);
        expect(pattern.test(`${prefix}${value}${suffix}`)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('never lets match:ORG/.* match another org that merely ends or starts with ORG (upstream’s bug)', () => {
    fc.assert(
      fc.property(login, login, repoName, (org, other, repo) => {
        const pattern = compilePattern(`match:${org}/.*`, { caseInsensitive: true });
        expect(pattern.test(`${org}/${repo}`)).toBe(true);
        expect(pattern.test(`${other}${org}/${repo}`)).toBe(false);
        expect(pattern.test(`${other}-${org}/${repo}`)).toBe(false);
        expect(pattern.test(org)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('matches exactly what the anchored regex matches, and keeps alternations inside the anchors', () => {
    const fragment = fc.constantFrom('a', 'b+', '[a-c]', '.', '.*', 'x?', '(?:ab)', '[bc]', '\\d', '-', '/');
    const alternatives = fc.array(
      fc.array(fragment, { minLength: 1, maxLength: 4 }).map((f) => f.join('')),
      { minLength: 1, maxLength: 3 },
    );
    fc.assert(
      fc.property(
        alternatives,
        fc.string({ unit: fc.constantFrom(...'abcx1-/'.split('')), maxLength: 8 }),
        (alts, value) => {
          const pattern = compilePattern(`match:${alts.join('|')}`);
          // An independent full-match check: some alternative must span the whole value on its own.
          const whole = alts.some((alt) => new RegExp(`^(?:${alt})$`, 'u').test(value));
          expect(pattern.test(value)).toBe(whole);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses an invalid regex with a PatternError, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (text) => {
        try {
          compilePattern(`match:${text}`);
        } catch (error) {
          expect(error).toBeInstanceOf(PatternError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

// Issue 11 §3: an allow-list entry either can match some scope a caller may ask for, or stops the start.
describe('scope entries of ALLOWED_SCOPES, DENIED_SCOPES and policies', () => {
  it('accept a literal only when a caller can ask for it, and then match that request', () => {
    const text = fc.string({ unit: fc.constantFrom(...'ab-/ *:.Ee'.split('')), maxLength: 12 });
    fc.assert(
      fc.property(
        fc.oneof(
          text,
          text.map((t) => `enterprise:${t}`),
        ),
        (entry) => {
          let pattern;
          try {
            pattern = compileScopePattern(entry);
          } catch (error) {
            expect(error).toBeInstanceOf(PatternError);
            expect((error as Error).message).toContain(JSON.stringify(entry));
            return;
          }
          // Accepted: the scope a caller would send for it parses, and the entry matches its canonical name.
          const requested = formatScope(parseScope(entry.replace(/^enterprise:/i, 'enterprise:')));
          expect(pattern.test(requested)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuse every regex written in the upstream glob style, naming the regex that was meant', () => {
    const name = fc.string({ unit: fc.constantFrom(...'abc1'.split('')), minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(name, fc.constantFrom('/*', '-*'), (prefix, glob) => {
        expect(() => compileScopePattern(`match:${prefix}${glob}`)).toThrow(
          `Write ${JSON.stringify(`match:${prefix}${glob[0]}.*`)}`,
        );
      }),
    );
  });
});

describe('the policy', () => {
  it('parses any document into rules or a PolicyError, never anything else', () => {
    const value = fc.oneof(
      fc.string(),
      fc.constant('__proto__'),
      fc.constant('match:('),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
    );
    const doc = fc.oneof(
      fc.json(),
      fc
        .record({
          rules: fc.array(
            fc.dictionary(
              fc.constantFrom('name', 'callers', 'scopes', '__proto__', 'constructor', 'jitOnly', 'labels'),
              fc.oneof(value, fc.array(value)),
            ),
            { maxLength: 3 },
          ),
        })
        .map((d) => JSON.stringify(d)),
    );
    fc.assert(
      fc.property(doc, (text) => {
        try {
          const policy = parsePolicy(text);
          expect(policy.rules.length).toBeGreaterThan(0);
        } catch (error) {
          expect((error as Error).name).toBe('PolicyError');
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  });
});

describe('end to end through the proxy', () => {
  let fakes: ProxyFakes;
  const audit = createSecretAudit();
  const served: ServedApp[] = [];
  const proxies: Proxy[] = [];

  beforeAll(async () => {
    fakes = await startProxyFakes();
  });
  afterAll(async () => {
    await Promise.all(served.map((s) => s.close()));
    await fakes.close();
  });

  async function serve(options: Parameters<typeof buildProxy>[1]): Promise<{ proxy: Proxy; url: string }> {
    const proxy = buildProxy(fakes, options);
    const server = await serveApp(proxy.app);
    served.push(server);
    proxies.push(proxy);
    return { proxy, url: server.url };
  }

  const register = async (url: string, token: string, scope: string) => {
    audit.add(token);
    const res = await fetch(`${url}/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scope }),
    });
    const body = (await res.json()) as { token?: string; error?: string };
    audit.add(body.token);
    return { status: res.status, body };
  };

  it('sends GitHub only requests under a safe scope prefix, whatever scope callers send', async () => {
    // Everything is allowed: only the scope's validation stands between the caller and the URL.
    const { proxy, url } = await serve({ allowed: ['match:.*'] });
    const token = proxy.token();
    const mark = fakes.github.controls.calls.length;
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(anyScope, async (scope) => {
        const res = await register(url, token, scope);
        statuses.add(res.status);
        // 400 invalid, 403 not allowed, 200 or a 502 from GitHub (an org the fake does not know).
        expect([200, 400, 403, 502]).toContain(res.status);
        expect(typeof (res.body.error ?? res.body.token)).toBe('string');
      }),
      { numRuns: 400 },
    );
    const paths = fakes.github.controls.calls.slice(mark).map((call) => call.path);
    expect(paths.filter((path) => !SAFE_GITHUB_CALL.test(path))).toEqual([]);
    // Some scopes did get through to GitHub, so the check above checked something.
    expect(paths.length).toBeGreaterThan(0);
    expect(statuses.has(400)).toBe(true);
  });

  it('lets deny win: a scope on the deny list is refused whatever the allow list says', async () => {
    const scopeEntry = (scope: string) =>
      fc.constantFrom(
        scope,
        scope.toUpperCase(),
        `match:${escapeRegex(scope)}`,
        `match:${escapeRegex(scope.split('/')[0]!)}(/.*)?`,
        'match:.*',
      );
    const others = fc.array(fc.constantFrom('other-org', 'my-org/secret', 'match:x.*', 'enterprise:acme'), {
      maxLength: 3,
    });
    const scope = fc.constantFrom('my-org', 'my-org/app', 'My-Org/App', 'enterprise:acme');
    const cases = fc
      .tuple(scope, others, others, fc.boolean())
      .chain(([s, allowedOthers, deniedOthers, allowIt]) =>
        fc.tuple(
          fc.constant(s),
          scopeEntry(s),
          scopeEntry(s),
          fc.constant(allowedOthers),
          fc.constant(deniedOthers),
          fc.constant(allowIt),
        ),
      );
    await fc.assert(
      fc.asyncProperty(cases, async ([s, allowEntry, denyEntry, allowedOthers, deniedOthers, allowIt]) => {
        const mark = fakes.github.controls.calls.length;
        const { proxy, url } = await serve({
          allowed: allowIt ? [...allowedOthers, allowEntry] : ['match:.*', ...allowedOthers],
          denied: [...deniedOthers, denyEntry],
        });
        const res = await register(url, proxy.token(), s);
        expect(res.status).toBe(403);
        expect(res.body.error).toMatch(/is not allowed/);
        expect(fakes.github.controls.calls.length).toBe(mark);
      }),
      { numRuns: 60 },
    );
  });

  it('grants a caller a scope exactly when a rule names the caller and the scope', async () => {
    const emails = [
      'a@p.iam.gserviceaccount.com',
      'b@p.iam.gserviceaccount.com',
      'c@p.iam.gserviceaccount.com',
    ];
    const scopes = ['my-org', 'my-org/app', 'my-org/secret'];
    const rule = fc.record({
      serviceAccounts: fc.option(fc.subarray(emails, { minLength: 1 }), { nil: undefined }),
      scopes: fc.subarray(scopes, { minLength: 1 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(rule, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(...emails),
        fc.constantFrom(...scopes),
        async (rules, email, scope) => {
          const policy = {
            rules: rules.map((r, i) => ({
              name: `rule-${i}`,
              // A rule must name service accounts or projects (issue 15 §2): without service accounts it
              // names the callers' project, which every caller here is in.
              callers: r.serviceAccounts
                ? { serviceAccounts: r.serviceAccounts.map((e) => e.toUpperCase()) }
                : { projects: ['runners-prod'] },
              scopes: r.scopes,
            })),
          };
          const expected = rules.some(
            (r) => (!r.serviceAccounts || r.serviceAccounts.includes(email)) && r.scopes.includes(scope),
          );
          const { proxy, url } = await serve({ policy });
          const res = await register(url, proxy.token({ email, compute: vm('gh-runner-1') }), scope);
          expect(res.status).toBe(expected ? 200 : 403);
          if (!expected)
            expect(res.body.error).toBe(`this caller may not get tokens for scope ${JSON.stringify(scope)}`);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('leaves no token in any log', () => {
    audit.add(...fakes.github.issuedTokens.runner.map((t) => t.token));
    expect(audit.size).toBeGreaterThan(10);
    expect(audit.leaks(...proxies.map((p) => p.logs.text()))).toEqual([]);
    expect(secretShapes(...proxies.map((p) => p.logs.text()))).toEqual([]);
  });
});
