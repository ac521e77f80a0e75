import { parseList } from '#shared';

// Issue 16: one list syntax for every list-valued variable.
describe('parseList', () => {
  it.each([
    ['semicolons (the documented separator, as upstream)', 'my-org;my-org/app', ['my-org', 'my-org/app']],
    ['commas (as AUTH_AUDIENCE has always taken)', 'my-org,my-other-org', ['my-org', 'my-other-org']],
    ['both, with spaces and empty entries', ' a ;, b,; c ;', ['a', 'b', 'c']],
    ['nothing but separators', ' ; , ', []],
    ['a comma inside a regex quantifier', 'match:my-org/(a|b){1,3};x', ['match:my-org/(a|b){1,3}', 'x']],
    ['separators inside a character class', 'match:[,;a-z]+,y', ['match:[,;a-z]+', 'y']],
    ['a bracket inside a class', 'match:[(]x,y', ['match:[(]x', 'y']],
    ['an escaped separator', 'match:a\\,b,c', ['match:a\\,b', 'c']],
    ['one URL', 'https://proxy.example.run.app', ['https://proxy.example.run.app']],
  ])('splits %s', (_, value, expected) => {
    expect(parseList(value)).toEqual(expected);
  });

  it('reads an unset variable as an empty list', () => {
    expect(parseList(undefined)).toEqual([]);
  });
});
