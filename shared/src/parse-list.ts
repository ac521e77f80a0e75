/**
 * The one syntax of every list-valued variable of every service (`AUTH_AUDIENCE`, `ALLOWED_SCOPES`,
 * `DENIED_SCOPES`, and any a new service adds): entries separated by `;` or `,`, whitespace around each
 * trimmed, empty entries dropped.
 *
 * `;` is the separator the documentation uses: it is the upstream proxy's
 * (google-github-actions/github-runner-token-proxy splits `ALLOWED_SCOPES` on `;` because
 * `gcloud run deploy --set-env-vars` already splits on commas), so its configurations keep working.
 * Commas are accepted too, as `AUTH_AUDIENCE` has always taken them; a list written with commas therefore
 * means what it looks like instead of becoming one entry that matches nothing.
 *
 * A separator inside a regular expression's `(…)`, `[…]` or `{…}`, or escaped with a backslash, belongs to
 * the entry: `match:my-org/(app|web){1,2}` stays one entry.
 */
export function parseList(value: string | undefined): string[] {
  if (value === undefined) return [];
  const entries: string[] = [];
  let current = '';
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < value.length; i += 1) {
    const ch = value[i]!;
    if (ch === '\\') {
      current += value.slice(i, i + 2);
      i += 1;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
    } else if (ch === '[') {
      inClass = true;
    } else if (ch === '(' || ch === '{') {
      depth += 1;
    } else if ((ch === ')' || ch === '}') && depth > 0) {
      depth -= 1;
    } else if ((ch === ';' || ch === ',') && depth === 0) {
      entries.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  entries.push(current);
  return entries.map((entry) => entry.trim()).filter((entry) => entry !== '');
}
