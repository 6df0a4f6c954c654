/**
 * Container logs on both trees, raw and through podman/docker: framing (always for libpod, not for Docker's
 * terminal containers), tail/since/until/timestamps, follow ending with the container, Podman 4.3.1's errors,
 * the 200 going out before the first record, throughput, and no fd left behind by clients that hang up.
 */
import t from 'tap';
import { connect } from 'node:net';
import { startDaemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';
import { COMPAT, LIBPOD, demux, docker, eventually, fdCount, openStream, podman, runContainer, waitExit } from './helpers.js';

const d = await startDaemon(t);
await loadBusybox(d.socket);

// Pauses between the streams: conmon reads stdout and stderr from two pipes, so only time orders them.
await runContainer(d, 'done', ['sh', '-c', 'echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three']);
await runContainer(d, 'partial', ['sh', '-c', 'printf "no newline"']);
await waitExit(d, 'done');
await waitExit(d, 'partial');
await runContainer(d, 'tty', ['sh', '-c', 'echo on-a-tty'], { terminal: true });
await waitExit(d, 'tty');

t.test('libpod logs are framed: stream byte, zeros, big-endian length', async (t) => {
  const res = await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&stderr=true`);
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'application/octet-stream');
  t.equal(res.headers['transfer-encoding'], 'chunked');
  const expected = Buffer.concat([
    Buffer.from([1, 0, 0, 0, 0, 0, 0, 4]), Buffer.from('one\n'),
    Buffer.from([2, 0, 0, 0, 0, 0, 0, 4]), Buffer.from('two\n'),
    Buffer.from([1, 0, 0, 0, 0, 0, 0, 6]), Buffer.from('three\n'),
  ]);
  t.same(res.body, expected);
  // A last line without its newline stays without one.
  t.same((await d.request('GET', `${LIBPOD}/containers/partial/logs?stdout=true`)).body, Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 10]), Buffer.from('no newline')]));
  const onlyErr = await d.request('GET', `${LIBPOD}/containers/done/logs?stderr=1`);
  t.same(demux(onlyErr.body), [[2, 'two\n']]);
});

t.test('compat logs: framed without a terminal, raw with one', async (t) => {
  const framed = await d.request('GET', `${COMPAT}/containers/done/logs?stdout=1&stderr=1&tail=2`);
  t.same(demux(framed.body), [[2, 'two\n'], [1, 'three\n']]);
  const raw = await d.request('GET', `${COMPAT}/containers/tty/logs?stdout=1&stderr=1`);
  t.equal(raw.status, 200);
  t.equal(raw.headers['content-type'], 'text/plain; charset=utf-8');
  t.equal(raw.text, 'on-a-tty\r\n');
  // The libpod tree frames even terminal output.
  t.same(demux((await d.request('GET', `${LIBPOD}/containers/tty/logs?stdout=true`)).body), [[1, 'on-a-tty\r\n']]);
});

t.test('tail, since, until and timestamps', async (t) => {
  const tail1 = await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&stderr=true&tail=1`);
  t.same(demux(tail1.body), [[1, 'three\n']]);
  const tail0 = await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&tail=0`);
  t.equal(tail0.body.length, 0);
  // Go's ParseInt with base 0: hex is a number of lines too.
  t.same(demux((await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&stderr=true&tail=0x2`)).body), [[2, 'two\n'], [1, 'three\n']]);
  t.equal(demux((await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&tail=all`)).body).length, 2);
  // podman-remote always sends Go's zero time for unset since/until.
  const zero = '0001-01-01T00:00:00Z';
  t.equal(demux((await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&stderr=true&since=${zero}&until=${zero}`)).body).length, 3);
  const future = Math.floor(Date.now() / 1000) + 3600;
  t.equal((await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&since=${future}`)).body.length, 0);
  t.equal((await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&until=1`)).body.length, 0);
  t.equal(demux((await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&until=0`)).body).length, 2, 'until=0 means unset');

  const stamped = demux((await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&timestamps=true&tail=1`)).body);
  t.match(stamped[0]?.[1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) three\n$/, 'RFC 3339 seconds, as Podman 4.3.1');
});

t.test("Podman's errors", async (t) => {
  const noStream = await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=false&stderr=0&x=1`);
  t.equal(noStream.status, 400);
  t.same(noStream.json(), {
    cause: 'Bad Request: you must choose at least one stream for /v4.3.1/libpod/containers/done/logs?stdout=false&stderr=0&x=1',
    message: 'Bad Request: you must choose at least one stream for /v4.3.1/libpod/containers/done/logs?stdout=false&stderr=0&x=1',
    response: 400,
  });
  // Checked before the container is looked up, as in Podman.
  t.equal((await d.request('GET', `${COMPAT}/containers/nope/logs`)).status, 400);
  const missing = await d.request('GET', `${COMPAT}/containers/nope/logs?stdout=1`);
  t.equal(missing.status, 404);
  t.equal(missing.json().message, 'no container with name or ID "nope" found: no such container');
  const badTail = await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&tail=abc`);
  t.equal(badTail.status, 400);
  t.same(badTail.json(), {
    cause: 'invalid syntax',
    message: `failed to parse query parameter 'tail': "abc": strconv.ParseInt: parsing "abc": invalid syntax`,
    response: 400,
  });
  const badSince = await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&since=abc`);
  t.equal(badSince.status, 400);
  t.same(badSince.json(), {
    cause: 'unable to interpret time value',
    message: `failed to parse query parameter 'since': "abc": unable to interpret time value`,
    response: 400,
  });
  t.equal((await d.request('GET', `${LIBPOD}/containers/done/logs?stdout=true&until=soon`)).status, 400);
});

t.test('follow: 200 before the first record, records as they come, end when the container exits', async (t) => {
  await runContainer(d, 'slow', ['sh', '-c', 'sleep 1; echo first; sleep 1; echo second']);
  const s = await openStream(d.socket, `${LIBPOD}/containers/slow/logs?follow=true&stdout=true`);
  const headerAt = Date.now();
  t.equal(s.status, 200);
  const first = await s.next(5000);
  t.same(demux(first!), [[1, 'first\n']], 'the first line came on its own, before the second was written');
  t.ok(Date.now() - headerAt > 200, 'the header did not wait for the first record');
  const rest = await s.rest(5000);
  t.same(demux(rest), [[1, 'second\n']]);
  t.equal(await waitExit(d, 'slow'), 0);
  // Following a container that is not running returns what there is at once.
  const again = await d.request('GET', `${LIBPOD}/containers/slow/logs?follow=1&stdout=1`);
  t.equal(demux(again.body).length, 2);
});

t.test('podman and docker CLIs', async (t) => {
  const tail = await podman(d, ['logs', '--tail', '2', 'done']);
  t.equal(tail.code, 0, tail.stderr);
  t.equal(tail.stdout, 'three\n');
  t.equal(tail.stderr, 'two\n');
  const stamps = await podman(d, ['logs', '--timestamps', 'done']);
  t.match(stamps.stdout, /^\S+ one\n\S+ three\n$/);
  t.match(stamps.stderr, /^\S+ two\n$/);
  const since = await podman(d, ['logs', '--since', '1h', 'done']);
  t.equal(since.stdout, 'one\nthree\n');
  const none = await podman(d, ['logs', '--since', '2099-01-01T00:00:00Z', 'done']);
  t.equal(none.stdout, '');

  await runContainer(d, 'follow', ['sh', '-c', 'echo a; sleep 1; echo b']);
  const followed = await podman(d, ['logs', '-f', 'follow'], 20_000);
  t.equal(followed.code, 0, followed.stderr);
  t.equal(followed.stdout, 'a\nb\n', 'podman logs -f returned when the container exited');

  const dl = await docker(d, ['logs', 'done']);
  t.equal(dl.stdout, 'one\nthree\n');
  t.equal(dl.stderr, 'two\n');
  t.equal((await docker(d, ['logs', 'tty'])).stdout, 'on-a-tty\r\n');
  t.equal((await docker(d, ['logs', '--tail', '1', 'done'])).stdout, 'three\n');
  t.equal((await docker(d, ['logs', 'partial'])).stdout, 'no newline');
});

t.test('500 abandoned follow requests leave no fd behind', async (t) => {
  await runContainer(d, 'chatty', ['sh', '-c', 'while true; do echo tick; sleep 0.2; done']);
  const pid = d.proc.pid!;
  // Warm up (lazy compilation of the route schema, first watcher) before counting.
  (await openStream(d.socket, `${LIBPOD}/containers/chatty/logs?follow=1&stdout=1&tail=1`)).destroy();
  const before = await eventually(() => fdCount(pid), () => true);
  const abandon = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const sock = connect(d.socket, () => {
        sock.write(`GET ${LIBPOD}/containers/chatty/logs?follow=1&stdout=1&stderr=1&tail=5 HTTP/1.1\r\nHost: d\r\n\r\n`);
      });
      let seen = '';
      sock.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1');
        if (seen.includes('\r\n\r\n')) sock.destroy();
      });
      sock.on('close', () => (seen.startsWith('HTTP/1.1 200') ? resolve() : reject(new Error(`unexpected answer: ${seen.slice(0, 80)}`))));
      sock.on('error', reject);
    });
  for (let round = 0; round < 10; round++) await Promise.all(Array.from({ length: 50 }, abandon));
  const after = await eventually(() => fdCount(pid), (n) => n <= before, 10_000);
  t.ok(after <= before, `fds before ${before}, after ${after}`);
  await d.request('DELETE', `${LIBPOD}/containers/chatty?force=true&timeout=0`);
});

t.test('throughput: a large log streams with backpressure', async (t) => {
  // ~16 MiB of 100-byte lines (99 characters + newline).
  const lines = 160_000;
  await runContainer(d, 'big', ['sh', '-c', `yes ${'x'.repeat(99)} | head -n ${lines}`]);
  await waitExit(d, 'big');
  const started = process.hrtime.bigint();
  let bytes = 0;
  let frames = 0;
  // Frame boundaries tracked across chunks without copying: bytes left in the current header or payload.
  let headerLeft = 8;
  let header = Buffer.alloc(8);
  let payloadLeft = 0;
  const s = await openStream(d.socket, `${LIBPOD}/containers/big/logs?stdout=true&stderr=true`);
  for (let chunk = await s.next(); chunk !== undefined; chunk = await s.next()) {
    bytes += chunk.length;
    let pos = 0;
    while (pos < chunk.length) {
      if (payloadLeft > 0) {
        const take = Math.min(payloadLeft, chunk.length - pos);
        payloadLeft -= take;
        pos += take;
        continue;
      }
      const take = Math.min(headerLeft, chunk.length - pos);
      chunk.copy(header, 8 - headerLeft, pos, pos + take);
      headerLeft -= take;
      pos += take;
      if (headerLeft === 0) {
        frames++;
        payloadLeft = header.readUInt32BE(4);
        headerLeft = 8;
        header = Buffer.alloc(8);
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const mibPerSecond = bytes / 1024 / 1024 / seconds;
  t.equal(frames, lines);
  t.equal(bytes, lines * 108);
  t.comment(`read ${(bytes / 1024 / 1024).toFixed(1)} MiB of framed log in ${seconds.toFixed(2)} s: ${mibPerSecond.toFixed(0)} MiB/s`);
  t.ok(mibPerSecond > 10, 'faster than Podman 4.3.1 (about 10 MiB/s here)');
});
