import { abbreviate } from './abbreviate.js';

/** Why a JSON text was refused. */
export type JsonRefusal = 'syntax' | 'duplicate-key';

/** A JSON text that is not valid, or that names one key twice in an object; the message says which. */
export class StrictJsonError extends Error {
  override readonly name = 'StrictJsonError';

  constructor(
    readonly reason: JsonRefusal,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The first key that appears twice in one object of `text`, which must be valid JSON, or undefined. Keys
 * are compared decoded (`"a"` and `"\u0061"` are the same key). One pass, no recursion.
 */
function findDuplicateKey(text: string): string | undefined {
  // One entry per open object (its keys so far) or array (null).
  const open: Array<Set<string> | null> = [];
  let expectingKey = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const keys = open.at(-1);
      if (keys && expectingKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectingKey = false;
      }
      i = end;
    } else if (ch === '{') {
      open.push(new Set());
      expectingKey = true;
    } else if (ch === '[') {
      open.push(null);
      expectingKey = false;
    } else if (ch === '}' || ch === ']') {
      open.pop();
    } else if (ch === ',') {
      expectingKey = open.at(-1) instanceof Set;
    }
  }
  return undefined;
}

/**
 * `JSON.parse`, refusing what it would accept ambiguously: an object naming one key twice. RFC 8259 §4
 * leaves the meaning of duplicate names to each parser ("many implementations report the last name/value
 * pair only", others the first), so a body one reader takes as `{"scope": "a"}` another may take as
 * `{"scope": "b"}`; refusing it removes the ambiguity. https://www.rfc-editor.org/rfc/rfc8259#section-4
 *
 * Hand-written because no maintained parser with this check is a dependency: the JSON text is first
 * validated by `JSON.parse`, then scanned once for keys.
 *
 * @throws StrictJsonError `syntax` for text that is not JSON, `duplicate-key` naming the repeated key.
 */
export function parseStrictJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StrictJsonError('syntax', 'not valid JSON');
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    throw new StrictJsonError(
      'duplicate-key',
      `key ${JSON.stringify(abbreviate(duplicate, 64))} appears more than once in one object`,
    );
  }
  return value;
}
