/**
 * Preloaded (`node --import`) into every process that `spawnNode` (sandbox/node-process.ts) and
 * `scripts/start.js` start, before its own code, which it leaves alone: when the parent goes away without
 * stopping it — crashes, or is killed with SIGKILL — the IPC channel to it closes and this process ends at
 * once, rather than living on as an orphan that holds its port. A normal stop still goes through the
 * parent's SIGTERM and the process's own graceful shutdown.
 *
 * At once, not with SIGTERM: the parent took the other end of the process's stdout and stderr pipes with
 * it, and a graceful shutdown logs a line there. pino's destination (sonic-boom 4.2) then retries the
 * failed write (EPIPE) every 100 ms for ever, blocking the event loop, so the process never exits.
 * Nobody is left to answer anyway: the sandbox's fakes lived in the parent.
 *
 * The channel is unref'd so it never keeps the process alive by itself. Without an IPC channel (started
 * some other way) this does nothing.
 */
if (process.channel) {
  process.once('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  process.channel.unref();
}

export {};
