/**
 * Backpressure end to end: a container writing 256 MiB to an attached client that reads at 20 MiB/s is slowed
 * down to the client's pace, and the daemon's memory stays flat (the issue asks for 1 GiB at 1 MiB/s; this is
 * the same property in ~13 s instead of ~17 min). Then a client that stops reading and goes away mid-stream
 * leaves the container running and the daemon healthy.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { loadBusybox } from '../../helpers/fixtures.js';
import { startDaemon } from '../../helpers/daemon.js';
import { createContainer, hijackRequest, inspectState, quiesce, startContainer, waitStatus } from './helpers.js';

const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;
const RATE = 20 * MiB; // bytes per second the client reads
/** RSS may grow by this much at most while the stream runs (buffers are a few hundred KiB by design). */
const RSS_GROWTH_LIMIT = 48 * MiB;

const d = await startDaemon(t);
t.teardown(() => quiesce(d));
await loadBusybox(d.socket);

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) * 1024;
}

t.test('a slow reader slows the container; daemon RSS stays flat', async (t) => {
  const pid = d.proc.pid!;
  // stdout only (dd's summary goes to stderr); the count includes the 8-byte frame headers.
  const id = await createContainer(d, { command: ['dd', 'if=/dev/zero', `bs=${64 * 1024}`, `count=${TOTAL / (64 * 1024)}`] });
  const client = hijackRequest(d, { path: `/v4.3.1/libpod/containers/${id}/attach?stdout=true`, upgrade: true });
  const head = await client.head;
  // From here on the client reads at RATE, by pausing its socket whenever it is ahead of schedule.
  const socket = client.socket;
  let received = 0;
  const t0 = Date.now();
  let maxRss = 0;
  const baseline = rssOf(pid);
  const sampler = setInterval(() => {
    maxRss = Math.max(maxRss, rssOf(pid));
  }, 100);
  const drained = new Promise<void>((resolve) => {
    socket.removeAllListeners('data');
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      const ahead = received / RATE - (Date.now() - t0) / 1000;
      if (ahead > 0.005 && !timer) {
        socket.pause();
        timer = setTimeout(() => {
          timer = undefined;
          socket.resume();
        }, ahead * 1000);
      }
    });
    socket.once('end', () => resolve());
  });
  t.ok(head.startsWith('HTTP/1.1 101'));
  await startContainer(d, id);

  await new Promise((r) => setTimeout(r, 3000));
  t.equal((await inspectState(d, id)).Status, 'running', 'after 3 s the writer is still held back by the reader');
  t.ok(received < 0.35 * TOTAL, `the client got ${(received / MiB).toFixed(0)} MiB so far`);

  await drained;
  clearInterval(sampler);
  const seconds = (Date.now() - t0) / 1000;
  t.ok(received >= TOTAL, `all ${TOTAL / MiB} MiB arrived (${(received / MiB).toFixed(1)} MiB with frame headers)`);
  t.ok(seconds >= (TOTAL / RATE) * 0.85, `paced by the reader: ${seconds.toFixed(1)} s`);
  t.ok(maxRss - baseline < RSS_GROWTH_LIMIT, `RSS ${(baseline / MiB).toFixed(0)} → max ${(maxRss / MiB).toFixed(0)} MiB`);
  t.comment(`256 MiB at ${(received / MiB / seconds).toFixed(1)} MiB/s, RSS baseline ${(baseline / MiB).toFixed(0)} MiB, max ${(maxRss / MiB).toFixed(0)} MiB`);
  await waitStatus(d, id, 'exited');
});

t.test('a client that stops reading, then vanishes, leaves the container running', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'while true; do echo 0123456789abcdef0123456789abcdef; done'] });
  await startContainer(d, id);
  const client = hijackRequest(d, { path: `/v4.3.1/libpod/containers/${id}/attach?stdout=true`, upgrade: true });
  await client.head;
  client.socket.pause();
  await new Promise((r) => setTimeout(r, 1000));
  client.destroy();
  await new Promise((r) => setTimeout(r, 500));
  t.equal((await inspectState(d, id)).Status, 'running');
  const again = hijackRequest(d, { path: `/v4.3.1/libpod/containers/${id}/attach?stdout=true`, upgrade: true });
  await again.head;
  await again.waitFor((rest) => rest.length > 64 * 1024);
  again.destroy();
  t.pass('a new client is served straight away');
  const stop = await d.request('POST', `/v4.3.1/libpod/containers/${id}/stop?timeout=0`);
  t.equal(stop.status, 204);
  t.equal((await d.request('GET', '/_ping')).status, 200);
});
