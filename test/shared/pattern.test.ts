import { compilePattern, matchesAny, PatternError } from '#shared';

describe('compilePattern', () => {
  it.each([
    ['my-org', 'my-org', true],
    ['my-org', 'MY-ORG', false],
    ['my-org', 'my-org2', false],
    ['match:my-org/.*', 'my-org/repo', true],
    ['match:my-org/.*', 'evil-my-org/repo', false],
    ['match:my-org/.*', 'my-org/repo\nx', false],
    ['match:a|b', 'a', true],
    ['match:a|b', 'xb', false],
    ['match:a|b', 'ab', false],
  ])('%s against %j (case-sensitive) is %s', (entry, value, expected) => {
    expect(compilePattern(entry).test(value)).toBe(expected);
  });

  it('folds case when asked, for literals and regexes', () => {
    expect(compilePattern('My-Org', { caseInsensitive: true }).test('my-org')).toBe(true);
    expect(compilePattern('match:my-org/.*', { caseInsensitive: true }).test('MY-ORG/Repo')).toBe(true);
  });

  it('names an invalid regex', () => {
    expect(() => compilePattern('match:([a-z')).toThrow(PatternError);
    expect(() => compilePattern('match:([a-z')).toThrow(/"\(\[a-z"/);
  });

  it('matchesAny is false for an empty list (nothing allowed by default)', () => {
    expect(matchesAny([], 'anything')).toBe(false);
  });
});
