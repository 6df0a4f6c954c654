/**
 * Attach and resize over the raw HTTP API, byte for byte: the hijack head (101 vs 200), framing, stdin and its
 * half-close, attach-before-start, logs replay, detach keys, query validation, disconnects, the compat twins.
 */
import t from 'tap';
import { PassThrough } from 'node:stream';
import { SingleReadDetachGate } from '../../../src/engine/attach.js';
import { loadBusybox } from '../../helpers/fixtures.js';
import { startDaemon } from '../../helpers/daemon.js';
import {
  OK_HEAD,
  UPGRADED_HEAD,
  createContainer,
  decodeFrames,
  hijackRequest,
  inspectState,
  journalEvents,
  quiesce,
  runCli,
  startContainer,
  streamText,
  waitStatus,
} from './helpers.js';

const d = await startDaemon(t);
t.teardown(() => quiesce(d));
await loadBusybox(d.socket);

const attachPath = (id: string, query = 'stream=true&stdin=true&stdout=true&stderr=true'): string => `/v4.3.1/libpod/containers/${id}/attach?${query}`;

t.test('attach before start (Upgrade: tcp): exact 101 head, nothing lost, stdout and stderr apart, EOF at exit', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'echo out1; echo err1 >&2; echo out2; exit 4'] });
  const client = hijackRequest(d, { path: attachPath(id, 'stream=true&stdout=true&stderr=true'), upgrade: true });
  t.equal(await client.head, UPGRADED_HEAD, 'literal head, no Content-Length, no chunking');
  t.equal((await inspectState(d, id)).Status, 'created', 'attach initialised the configured container');
  await startContainer(d, id);
  const frames = decodeFrames(await client.done());
  t.equal(streamText(frames, 1), 'out1\nout2\n');
  t.equal(streamText(frames, 2), 'err1\n');
  t.notOk(frames.some((f) => f.stream === 0), 'no stdin echo frames');
  await waitStatus(d, id, 'exited');
  t.equal((await inspectState(d, id)).ExitCode, 4);
});

t.test('200 without upgrade headers; stdin half-close closes the container stdin and output goes on', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'cat; echo after-eof'], stdin: true });
  await startContainer(d, id);
  const client = hijackRequest(d, { path: attachPath(id) });
  t.equal(await client.head, OK_HEAD);
  client.write('hello\n');
  await client.waitFor((rest) => streamText(decodeFramesLenient(rest), 1).includes('hello\n'));
  client.end();
  const frames = decodeFrames(await client.done());
  t.equal(streamText(frames, 1), 'hello\nafter-eof\n', 'output after the half-close still arrives');
  await waitStatus(d, id, 'exited');
});

t.test('stdin pipelined in the same packet as the request is not lost', async (t) => {
  const id = await createContainer(d, { command: ['cat'], stdin: true });
  await startContainer(d, id);
  const client = hijackRequest(d, { path: attachPath(id), upgrade: true, pipelined: 'early bytes\n' });
  t.equal(await client.head, UPGRADED_HEAD);
  await client.waitFor((rest) => streamText(decodeFramesLenient(rest), 1) === 'early bytes\n');
  client.end();
  t.equal(streamText(decodeFrames(await client.done()), 1), 'early bytes\n');
});

t.test('TTY: raw output, resize while created reaches the terminal (stty size)', async (t) => {
  // conmon applies a resize asynchronously, so a process that asks at once may race it (in Podman too): this one
  // waits for a line first.
  const id = await createContainer(d, { command: ['sh', '-c', 'read x; stty size; echo done'], terminal: true, stdin: true });
  const client = hijackRequest(d, { path: attachPath(id), upgrade: true });
  t.equal(await client.head, UPGRADED_HEAD);
  const resize = await d.request('POST', `/v4.3.1/libpod/containers/${id}/resize?h=33&w=111&running=true`);
  t.equal(resize.status, 200, 'resize of a created container');
  t.equal(resize.body.length, 0);
  await startContainer(d, id);
  client.write('go\r');
  const out = (await client.done()).toString();
  t.equal(out, 'go\r\n33 111\r\ndone\r\n', 'raw bytes (the terminal echo, then the output), no frame headers');
});

t.test('logs=true replays the log before the live stream; stream=false closes after it', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'echo first; echo second >&2; read x; echo live-$x'], stdin: true });
  await startContainer(d, id);
  const early = hijackRequest(d, { path: attachPath(id, 'stream=false&logs=true') });
  t.equal(await early.head, OK_HEAD);
  // The log may still be empty right after start: poll until both lines are there.
  let replay = decodeFrames(await early.done());
  for (let i = 0; i < 50 && streamText(replay, 2) !== 'second\n'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    replay = decodeFrames(await hijackRequest(d, { path: attachPath(id, 'stream=false&logs=true') }).done());
  }
  t.equal(streamText(replay, 1), 'first\n');
  t.equal(streamText(replay, 2), 'second\n', 'stderr lines as stream 2, correct frame lengths');
  t.equal((await inspectState(d, id)).Status, 'running', 'logs-only attach left it running');

  const live = hijackRequest(d, { path: attachPath(id, 'logs=true&stream=true&stdin=true&stdout=true&stderr=true'), upgrade: true });
  await live.waitFor((rest) => streamText(decodeFramesLenient(rest), 2) === 'second\n');
  live.write('x\n');
  const frames = decodeFrames(await live.done());
  t.equal(streamText(frames, 1), 'first\nlive-x\n', 'replay, then the live output');
});

t.test('query and state validation happen before the hijack, as JSON errors', async (t) => {
  const id = await createContainer(d, { command: ['sleep', '30'] });
  const none = await d.request('POST', `/v4.3.1/libpod/containers/${id}/attach?stdin=false&stdout=false&stderr=false`);
  t.equal(none.status, 400);
  t.match(none.json(), { message: 'at least one of stdin, stdout, stderr must be true', response: 400 });
  const neither = await d.request('POST', `/v4.3.1/libpod/containers/${id}/attach?stream=false&logs=false`);
  t.equal(neither.status, 400);
  t.match(neither.json().message, /at least one of Logs or Stream must be set/);
  const badKeys = await d.request('POST', `/v4.3.1/libpod/containers/${id}/attach?detachKeys=ctrl-zz`);
  t.equal(badKeys.status, 400);
  t.match(badKeys.json().message, /invalid detach keys/);
  const missing = await d.request('POST', '/v4.3.1/libpod/containers/nonesuch/attach');
  t.equal(missing.status, 404);
  t.match(missing.json(), { cause: 'no such container' });
  t.equal((await d.request('GET', `/v4.3.1/libpod/containers/${id}/json`)).json().State.ConmonPid, 0, 'a refused attach did not initialise the container');

  await startContainer(d, id);
  t.equal((await d.request('POST', `/v4.3.1/libpod/containers/${id}/pause`)).status, 204);
  const paused = await d.request('POST', `/v4.3.1/libpod/containers/${id}/attach`);
  t.equal(paused.status, 500, 'libpod: state improper is a 500');
  t.match(paused.json().message, /can only attach to created or running containers - currently in state paused/);
  const pausedCompat = await d.request('POST', `/v1.41/containers/${id}/attach?stream=1&stdout=1`);
  t.equal(pausedCompat.status, 409, 'compat: a 409');
  await d.request('POST', `/v4.3.1/libpod/containers/${id}/unpause`);
  await d.request('POST', `/v4.3.1/libpod/containers/${id}/stop?timeout=0`);
  const resize = await d.request('POST', `/v4.3.1/libpod/containers/${id}/resize?h=10&w=10`);
  t.equal(resize.status, 409);
  t.match(resize.json().message, /can only resize created or running containers/);
});

t.test('detach keys (TTY): default ctrl-p,ctrl-q, split or in one packet; the container keeps running', async (t) => {
  const id = await createContainer(d, { command: ['sh'], terminal: true, stdin: true });
  await startContainer(d, id);

  const first = hijackRequest(d, { path: attachPath(id), upgrade: true });
  await first.head;
  first.write('echo one-$((40+2))\n');
  await first.waitForText('one-42');
  first.write('\x10');
  await new Promise((r) => setTimeout(r, 50));
  first.write('\x11');
  const out = (await first.done()).toString('latin1');
  t.ok(out.endsWith('Error: detached from container\n'), 'raw error line, then the server closed');
  t.equal((await inspectState(d, id)).Status, 'running');

  const second = hijackRequest(d, { path: attachPath(id), upgrade: true });
  await second.head;
  second.write('echo two-$((40+3))\n\x10\x11');
  t.ok((await second.done()).toString('latin1').endsWith('Error: detached from container\n'), 'the sequence in one packet detaches too');

  // Custom and disabled keys, against `cat -v` (XON/XOFF off so the terminal passes ctrl-q on).
  const catId = await createContainer(d, { command: ['sh', '-c', 'stty -ixon; echo ready; exec cat -v'], terminal: true, stdin: true });
  const custom = hijackRequest(d, { path: attachPath(catId, 'detachKeys=q,z'), upgrade: true });
  await custom.head;
  await startContainer(d, catId);
  await custom.waitForText('ready');
  // ctrl-p ctrl-q mean nothing now; a partial match (q) broken by another byte passes through.
  custom.write('\x10\x11qa\n');
  await custom.waitForText('^P^Qqa');
  custom.write('q');
  await new Promise((r) => setTimeout(r, 50));
  custom.write('z');
  t.ok((await custom.done()).toString('latin1').endsWith('Error: detached from container\n'), 'custom keys, split across packets');

  const disabled = hijackRequest(d, { path: attachPath(catId, 'detachKeys='), upgrade: true });
  await disabled.head;
  disabled.write('\x10\x11disabled\n');
  await disabled.waitForText('^P^Qdisabled');
  disabled.destroy();
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await inspectState(d, catId)).Status, 'running', 'a client that vanished did not stop it either');
  t.equal((await d.request('GET', '/_ping')).status, 200, 'the daemon is fine');
});

t.test('detach keys (non-TTY): keys count only as reads of their own (Podman); the error is a stderr frame', async (t) => {
  const id = await createContainer(d, { command: ['cat'], stdin: true });
  await startContainer(d, id);
  const client = hijackRequest(d, { path: attachPath(id) });
  await client.head;
  // Binary stdin may contain the sequence: inside a larger read it is data.
  client.write('a\x10\x11b\n');
  await client.waitFor((rest) => rest.includes(Buffer.from('a\x10\x11b\n')));
  client.write('\x10');
  await new Promise((r) => setTimeout(r, 50));
  client.write('\x11');
  const frames = decodeFrames(await client.done());
  t.same(
    frames.map((f) => [f.stream, f.payload.toString('latin1')]),
    [
      [1, 'a\x10\x11b\n'],
      [2, 'Error: detached from container\n'],
    ],
  );
});

t.test('stream selection: stdout=false drops stdout frames', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'echo o; echo e >&2'] });
  const client = hijackRequest(d, { path: attachPath(id, 'stdout=false&stderr=true'), upgrade: true });
  await client.head;
  await startContainer(d, id);
  const frames = decodeFrames(await client.done());
  t.same(frames.map((f) => [f.stream, f.payload.toString()]), [[2, 'e\n']]);
});

t.test('compat twins: docker-style query, 101, resize 200 and 409', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'echo compat'] });
  const client = hijackRequest(d, { path: `/v1.41/containers/${id}/attach?stderr=1&stdin=1&stdout=1&stream=1`, upgrade: true });
  t.equal(await client.head, UPGRADED_HEAD);
  t.equal((await d.request('POST', `/v1.41/containers/${id}/resize?h=20&w=70`)).status, 200);
  await startContainer(d, id);
  t.equal(streamText(decodeFrames(await client.done()), 1), 'compat\n');
  await waitStatus(d, id, 'exited');
  t.equal((await d.request('POST', `/v1.41/containers/${id}/resize?h=20&w=70`)).status, 409);
});

t.test('an exited container is re-initialised by attach, as Docker expects', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'echo again'] });
  await startContainer(d, id);
  await waitStatus(d, id, 'exited');
  const client = hijackRequest(d, { path: attachPath(id, 'stdout=true'), upgrade: true });
  await client.head;
  t.equal((await inspectState(d, id)).Status, 'created');
  await startContainer(d, id);
  t.equal(streamText(decodeFrames(await client.done()), 1), 'again\n');
});

t.test('curl, with and without the upgrade headers', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'echo curl-out; echo curl-err >&2'] });
  const first = hijackRequest(d, { path: attachPath(id, 'stdout=true'), upgrade: true });
  await first.head;
  await startContainer(d, id);
  await first.done();
  const url = `http://d/v1.41/containers/${id}/attach?logs=1&stream=0&stdout=1&stderr=1`;
  const plain = await runCli('curl', ['-s', '--unix-socket', d.socket, '-X', 'POST', url]);
  t.equal(plain.code, 0, plain.stderr);
  t.same(decodeFrames(plain.stdout).map((f) => [f.stream, f.payload.toString()]), [[1, 'curl-out\n'], [2, 'curl-err\n']]);
  const upgraded = await runCli('curl', ['-si', '--unix-socket', d.socket, '-X', 'POST', '-H', 'Connection: Upgrade', '-H', 'Upgrade: tcp', url]);
  t.equal(upgraded.code, 0, upgraded.stderr);
  const text = upgraded.stdout.toString('latin1');
  t.ok(text.startsWith(UPGRADED_HEAD), 'curl shows the 101 head');
  t.same(decodeFrames(upgraded.stdout.subarray(UPGRADED_HEAD.length)).map((f) => f.payload.toString()), ['curl-out\n', 'curl-err\n']);
});

t.test('SingleReadDetachGate: keys count only as one-byte reads; held keys are released on a mismatch', async (t) => {
  const run = async (chunks: string[]): Promise<{ out: string; detached: boolean }> => {
    const src = new PassThrough();
    const gate = new SingleReadDetachGate(Buffer.from([0x10, 0x11]));
    let out = '';
    gate.on('data', (c: Buffer) => (out += c.toString('latin1')));
    const ended = new Promise((r) => gate.once('end', r));
    src.pipe(gate);
    for (const c of chunks) {
      src.write(Buffer.from(c, 'latin1'));
      await new Promise((r) => setImmediate(r));
    }
    src.end();
    await ended;
    return { out, detached: gate.detached };
  };
  t.same(await run(['ab', '\x10', '\x11', 'after']), { out: 'ab', detached: true });
  t.same(await run(['ab\x10\x11cd']), { out: 'ab\x10\x11cd', detached: false }, 'inside a larger read it is data');
  t.same(await run(['\x10', 'xy', '\x11']), { out: '\x10xy\x11', detached: false }, 'a broken match passes through');
  t.same(await run(['\x10']), { out: '\x10', detached: false }, 'held key released at the end');
});

t.test('attach emits an attach event', async (t) => {
  const attaches = journalEvents(d).filter((e) => e.Status === 'attach');
  t.ok(attaches.length >= 10, `one per attach (${attaches.length})`);
});

/** Decodes the complete frames of a partial stream (waiting helpers look at streams still in progress). */
function decodeFramesLenient(data: Buffer): ReturnType<typeof decodeFrames> {
  const frames: ReturnType<typeof decodeFrames> = [];
  let offset = 0;
  while (offset + 8 <= data.length) {
    const length = data.readUInt32BE(offset + 4);
    if (offset + 8 + length > data.length) break;
    frames.push({ stream: data[offset] as 0 | 1 | 2 | 3, payload: data.subarray(offset + 8, offset + 8 + length) });
    offset += 8 + length;
  }
  return frames;
}
