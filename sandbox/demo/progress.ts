/** Where progress goes: a TTY gets one line rewritten in place, anything else a plain line now and then. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

/** A running progress display; `stop` clears the updating line (or prints a last plain one); once. */
export interface Progress {
  stop(): void;
}

/**
 * Shows `render()` every `ttyIntervalMs` on a TTY, rewriting one line, or every `plainIntervalMs` as a
 * plain line elsewhere (a CI log would fill with carriage returns).
 */
export function startProgress(
  stream: ProgressStream,
  render: () => string,
  { ttyIntervalMs = 100, plainIntervalMs = 2000 } = {},
): Progress {
  const tty = stream.isTTY === true;
  const draw = () => {
    if (tty) stream.write(`\r\x1b[2K${render().slice(0, (stream.columns ?? 120) - 1)}`);
    else stream.write(`${render()}\n`);
  };
  const timer = setInterval(draw, tty ? ttyIntervalMs : plainIntervalMs);
  if (tty) draw();
  let stopped = false;
  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (tty) stream.write('\r\x1b[2K');
      else draw();
    },
  };
}
