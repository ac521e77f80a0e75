/**
 * The benchmark's ceiling: a bare `node:http` server that reads each request (body included) and answers
 * a constant JSON of the size a registration token reply has. Run as its own process, like the services,
 * so it competes for the same CPU as they do: `PORT=... node dist/bench/bare-server.js`.
 */
import http from 'node:http';

const BODY = JSON.stringify({ token: 'A'.repeat(29), expires_at: '2030-01-01T00:00:00.000Z' });

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(BODY),
    });
    res.end(BODY);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
