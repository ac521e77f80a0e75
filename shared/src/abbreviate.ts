/** How much of a caller-chosen text (a path, a User-Agent) is logged or echoed. */
export const MAX_ECHOED_LENGTH = 200;

/**
 * `text` cut to `max` characters with an ellipsis: what a caller sends (a 15 KB User-Agent, a long path) is
 * logged and echoed only this far, so one request cannot make one log line or error body huge.
 */
export function abbreviate(text: string, max = MAX_ECHOED_LENGTH): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
