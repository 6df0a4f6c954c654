/**
 * The idle exit must not fire while a client waits in the accept queue: on a busy machine (or a socket-activated
 * start slower than --time) the idle timer can expire before the event loop gets to accept that client.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { IdleTracker } from '../../../src/http/idle.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('a connection queued while the loop was busy holds off the idle exit', async (t) => {
  const dir = mkdtempSync('/tmp/psi-');
  const path = join(dir, 's.sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let fired = 0;
  const idle = new IdleTracker(0.2, () => fired++);
  idle.attach(server);

  // The kernel queues the connection at once; the loop is then blocked past the idle time, as a slow start is.
  const client = connect(path);
  const until = Date.now() + 400;
  while (Date.now() < until) {
    /* busy: timers expire, nothing is accepted */
  }
  await sleep(50);
  t.equal(fired, 0, 'the queued connection was accepted first and counted as activity');

  client.destroy();
  await sleep(500);
  t.equal(fired, 1, 'idle exit once that client is gone for the idle time');
  idle.stop();
});
