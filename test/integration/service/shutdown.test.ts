/**
 * SIGTERM: no new connection is accepted, an ordinary request in flight is answered, a long-lived stream is cut
 * (it would never end by itself), and the daemon exits 0 promptly.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, waitForPing } from '../../helpers/daemon.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/limited-daemon.js', import.meta.url));

t.test('SIGTERM finishes ordinary requests, cuts streams, exits 0', async (t) => {
  const dir = mkdtempSync('/tmp/psd-');
  const sock = join(dir, 'p.sock');
  const daemon = spawn(process.execPath, [FIXTURE, '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--log-level', 'debug', 'service', '--time', '0', `unix://${sock}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  daemon.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitForPing(sock);

  // A stream that stays open, and an ordinary request that takes a second; both under way before the signal.
  let streamOpen: () => void = () => undefined;
  const streaming = new Promise<void>((resolve) => (streamOpen = resolve));
  const streamClosed = new Promise<{ status: number; ended: boolean }>((resolve, reject) => {
    const req = httpRequest({ socketPath: sock, path: '/_test/stream' }, (res) => {
      streamOpen();
      res.resume();
      res.on('close', () => resolve({ status: res.statusCode ?? 0, ended: res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
  await streaming;
  const slow = request(sock, 'GET', '/_test/slow', undefined, { Connection: 'close' });
  const deadline = Date.now() + 10_000;
  while (!/"url":"\/_test\/slow","msg":"request"/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));

  const signalled = Date.now();
  daemon.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  await t.rejects(request(sock, 'GET', '/_ping'), 'no new connection once stopping');

  const answer = await slow;
  t.equal(answer.status, 200, 'the request in flight is answered');
  t.same(answer.json(), { slow: 'done' });
  const stream = await streamClosed;
  t.equal(stream.status, 200);
  t.equal(await exited, 0, 'exit 0');
  const took = Date.now() - signalled;
  // The grace period for requests in flight is 20 s: well under it means the stream did not hold the exit.
  t.ok(took < 8000, `exits once the ordinary request is done, not waiting for the stream (${took} ms)`);
  t.notOk(existsSync(sock), 'socket removed');
  t.notMatch(stderr, /"level":(50|60)/, 'no error logged');
});
