import fc from 'fast-check';
import { HttpError } from '#shared';
import { parseBody, scopeBody } from '../../services/token-proxy/src/request-body.js';

/** What parseBody gives for `text`: the value, or the 400 it throws. */
function outcome(text: string): { value: unknown } | { status: number } {
  try {
    return { value: parseBody(text, scopeBody) };
  } catch (error) {
    if (error instanceof HttpError) return { status: error.status };
    throw error;
  }
}

describe('parseBody with scopeBody', () => {
  // parseBody takes a plain {"scope": "..."} without zod's copy (every registration sends one): that shortcut
  // must accept exactly what the schema accepts, so a rule added to the schema cannot be skipped by it.
  it('accepts exactly the objects scopeBody accepts, with the same value', () => {
    // Short, long, and any Unicode: a length limit or a character rule added to the schema shows here.
    const scope = fc.oneof(
      fc.string(),
      fc.string({ minLength: 100, maxLength: 2000 }),
      fc.string({ unit: 'binary' }),
    );
    const body = fc.oneof(
      fc.record({ scope }),
      fc.record({ scope: fc.oneof(fc.string(), fc.integer(), fc.constant(null)) }, { requiredKeys: [] }),
      fc.dictionary(fc.oneof(fc.constant('scope'), fc.string()), fc.oneof(fc.string(), fc.integer())),
    );
    fc.assert(
      fc.property(body, (value) => {
        const schema = scopeBody.safeParse(value);
        const parsed = outcome(JSON.stringify(value));
        if (schema.success) expect(parsed).toEqual({ value: schema.data });
        else expect(parsed).toEqual({ status: 400 });
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a second scope key and an inherited-looking key', () => {
    expect(outcome('{"scope":"my-org","scope":"other"}')).toEqual({ status: 400 });
    expect(outcome('{"scope":"my-org","__proto__":{"x":1}}')).toEqual({ status: 400 });
    expect(outcome('{"scope":"my-org"}')).toEqual({ value: { scope: 'my-org' } });
  });
});
