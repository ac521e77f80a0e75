import { badRequest } from './compute-error.js';
import type { FakeInstance } from './compute-state.js';

/** One comparison of a list filter: `field = value`, `field != value`, or `field:*` (defined). */
interface Comparison {
  field: string;
  operator: '=' | '!=' | ':*';
  value: string;
}

/** Field, operator, value; the value bare or double-quoted (AIP-160). */
const COMPARISON = /^\s*([a-zA-Z][\w.-]*)\s*(?:(!=|=)\s*(?:"([^"]*)"|([^\s()"]+))|(:\*))\s*$/;

/**
 * Parses the part of Compute's list `filter` syntax the fake supports: one comparison, or several in
 * parentheses joined by whitespace or `AND`, each `field = value`, `field != value` or `field:*`, on the
 * fields `name`, `status`, `zone` and `labels.<key>`. Anything else (`OR`, `eq` regular expressions, other
 * fields) is refused with Compute's 400, so a client relying on more would notice.
 * https://cloud.google.com/compute/docs/reference/rest/v1/instances/aggregatedList
 */
export function parseInstanceFilter(filter: string): Comparison[] {
  const text = filter.trim();
  if (text === '') return [];
  const invalid = () =>
    badRequest(`Invalid value for field 'filter': '${filter}'. Invalid list filter expression.`);
  let parts = [text];
  if (text.startsWith('(')) {
    // `(a = 1) (b = 2)` or `(a = 1) AND (b = 2)`: nothing but whitespace or AND between the groups.
    if (!/^\([^()]*\)(?:\s*(?:AND\s+)?\([^()]*\))*$/.test(text)) throw invalid();
    parts = [...text.matchAll(/\(([^()]*)\)/g)].map((group) => group[1] ?? '');
  }
  return parts.map((part) => {
    const match = COMPARISON.exec(part);
    const field = match?.[1] ?? '';
    if (!match || !(/^(name|status|zone)$/.test(field) || /^labels\.[a-z][\w-]{0,62}$/.test(field))) {
      throw invalid();
    }
    if (match[5] !== undefined) return { field, operator: ':*', value: '' };
    return { field, operator: match[2] === '!=' ? '!=' : '=', value: match[3] ?? match[4] ?? '' };
  });
}

function fieldOf(instance: FakeInstance, field: string): string | undefined {
  if (field === 'name') return instance.name;
  if (field === 'status') return instance.status;
  if (field === 'zone') return instance.zone;
  return instance.labels[field.slice('labels.'.length)];
}

/** True when `instance` satisfies every comparison. */
export function matchesFilter(instance: FakeInstance, comparisons: readonly Comparison[]): boolean {
  return comparisons.every(({ field, operator, value }) => {
    const actual = fieldOf(instance, field);
    if (operator === ':*') return actual !== undefined;
    return operator === '=' ? actual === value : actual !== value;
  });
}
