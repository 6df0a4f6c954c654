/**
 * Docker's WebSocket attach (GET /containers/{name}/attach/ws) next to the hijacked attach on the same server:
 * binary output messages, text or binary input, raw (never multiplexed) output, detach keys, errors before the
 * upgrade as HTTP statuses.
 */
import t from 'tap';
import WebSocket from 'ws';
import { loadBusybox } from '../../helpers/fixtures.js';
import { startDaemon } from '../../helpers/daemon.js';
import { UPGRADED_HEAD, createContainer, decodeFrames, hijackRequest, inspectState, quiesce, startContainer, streamText } from './helpers.js';

const d = await startDaemon(t);
t.teardown(() => quiesce(d));
await loadBusybox(d.socket);

interface WsSession {
  ws: WebSocket;
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  received: () => Buffer;
  binaryOnly: () => boolean;
  waitFor: (text: string, timeoutMs?: number) => Promise<void>;
}

function wsAttach(path: string): WsSession {
  const ws = new WebSocket(`ws+unix:${d.socket}:${path}`);
  const chunks: Buffer[] = [];
  let binary = true;
  const waiters: { text: string; resolve: () => void }[] = [];
  const text = (): string => Buffer.concat(chunks).toString('latin1');
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    chunks.push(Buffer.from(data));
    binary &&= isBinary;
    for (const w of [...waiters]) {
      if (text().includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  opened.catch(() => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return {
    ws,
    opened,
    closed,
    received: () => Buffer.concat(chunks),
    binaryOnly: () => binary,
    waitFor: (want, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        if (text().includes(want)) return resolve();
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${JSON.stringify(want)}; got ${JSON.stringify(text().slice(-300))}`)), timeoutMs);
        waiters.push({ text: want, resolve: () => (clearTimeout(timer), resolve()) });
      }),
  };
}

t.test('TTY: text input, binary output, and an Upgrade: tcp attach to the same container at the same time', async (t) => {
  const id = await createContainer(d, { command: ['sh'], terminal: true, stdin: true });
  await startContainer(d, id);
  const session = wsAttach(`/containers/${id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1`);
  await session.opened;
  const tcp = hijackRequest(d, { path: `/v1.41/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`, upgrade: true });
  t.equal(await tcp.head, UPGRADED_HEAD, 'the dispatcher sends Upgrade: tcp to the hijack route');
  session.ws.send('echo ws-$((1+2))\n');
  await session.waitFor('ws-3');
  await tcp.waitForText('ws-3');
  tcp.write('echo tcp-$((2+2))\n');
  await session.waitFor('tcp-4');
  t.ok(session.binaryOnly(), 'output arrives as binary messages');

  session.ws.send(Buffer.from([0x10]));
  await new Promise((r) => setTimeout(r, 50));
  session.ws.send(Buffer.from([0x11]));
  await session.waitFor('Error: detached from container\n');
  const close = await session.closed;
  t.equal(close.code, 1000, 'a normal close after the detach');
  t.equal((await inspectState(d, id)).Status, 'running');
  tcp.destroy();
});

t.test('without a terminal the output is raw, not multiplexed; the socket closes when the container exits', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'echo to-stdout; sleep 0.1; echo to-stderr >&2'] });
  const session = wsAttach(`/containers/${id}/attach/ws?stream=1&stdout=1&stderr=1`);
  await session.opened;
  await startContainer(d, id);
  await session.closed;
  t.equal(session.received().toString(), 'to-stdout\nto-stderr\n');
});

t.test('logs=1 replays the log as raw bytes', async (t) => {
  const id = await createContainer(d, { command: ['sh', '-c', 'echo logged-line'] });
  const first = hijackRequest(d, { path: `/v4.3.1/libpod/containers/${id}/attach?stdout=true`, upgrade: true });
  await first.head;
  await startContainer(d, id);
  t.equal(streamText(decodeFrames(await first.done()), 1), 'logged-line\n');
  const session = wsAttach(`/containers/${id}/attach/ws?logs=1&stream=0&stdout=1`);
  await session.opened;
  await session.closed;
  t.equal(session.received().toString(), 'logged-line\n');
});

t.test('refusals before the upgrade are HTTP statuses', async (t) => {
  await t.rejects(wsAttach('/containers/no-such-container/attach/ws?stream=1').opened, /HTTP 404/);
  const id = await createContainer(d, { command: ['true'] });
  await t.rejects(wsAttach(`/containers/${id}/attach/ws?detachKeys=ctrl-nope`).opened, /HTTP 400/);
  const plain = await d.request('GET', `/containers/${id}/attach/ws`);
  t.equal(plain.status, 404, 'a GET without upgrade is not a websocket');
});
