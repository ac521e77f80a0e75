import fc from 'fast-check';
import { parseStrictJson, StrictJsonError } from '#shared';

const refusal = (text: string) => {
  try {
    parseStrictJson(text);
  } catch (error) {
    expect(error).toBeInstanceOf(StrictJsonError);
    return { reason: (error as StrictJsonError).reason, message: (error as Error).message };
  }
  return undefined;
};

// Issue 14 §6(b): a JSON body with the same key twice is ambiguous.
describe('parseStrictJson', () => {
  it.each([
    ['a key twice', '{"scope": "a", "scope": "b"}', 'scope'],
    ['a key twice, one escaped', '{"scope": "a", "\\u0073cope": "b"}', 'scope'],
    ['a key twice in a nested object', '{"a": {"x": 1, "y": [1, {"z": 2, "z": 3}]}}', 'z'],
    ['__proto__ twice', '{"__proto__": 1, "__proto__": 2}', '__proto__'],
  ])('refuses %s, naming the key', (_, text, key) => {
    expect(refusal(text)).toEqual({
      reason: 'duplicate-key',
      message: `key ${JSON.stringify(key)} appears more than once in one object`,
    });
  });

  it.each([
    ['the same key in sibling objects', '[{"a": 1}, {"a": 2}]', [{ a: 1 }, { a: 2 }]],
    ['the same key at two levels', '{"a": {"a": 1}}', { a: { a: 1 } }],
    ['a key-like string value', '{"a": "b", "c": "a"}', { a: 'b', c: 'a' }],
    ['quotes and backslashes in strings', '{"a\\"": "x\\\\", "a": "\\"a\\""}', { 'a"': 'x\\', a: '"a"' }],
    ['scalars', '"x"', 'x'],
  ])('accepts %s', (_, text, value) => {
    expect(parseStrictJson(text)).toEqual(value);
  });

  it('refuses text that is not JSON, with a fixed message', () => {
    expect(refusal('{"scope": ')).toEqual({ reason: 'syntax', message: 'not valid JSON' });
  });

  it('parses whatever JSON.stringify writes exactly as JSON.parse does', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(parseStrictJson(text)).toEqual(JSON.parse(text));
      }),
    );
  });

  it('takes deeply nested input without recursion', () => {
    const depth = 20_000;
    expect(() => parseStrictJson(`${'['.repeat(depth)}${']'.repeat(depth)}`)).not.toThrow();
  });
});
