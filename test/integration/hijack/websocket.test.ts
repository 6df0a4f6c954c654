/**
 * @fastify/websocket takes every 'upgrade' of the server, so without help an attach with
 * `Upgrade: tcp` is refused by `ws`. With installUpgradeDispatcher a websocket route and the
 * hijacked attach/exec routes work side by side on one server.
 */
import t, { type Test } from 'tap';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { closeHijacked, hijack, installUpgradeDispatcher } from '../../../src/stream/hijack.js';

const UPGRADED_TCP =
  'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n';
const PLAIN_OK = 'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n';

interface Server {
  app: FastifyInstance;
  path: string;
}

async function startServer(t: Test): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), 'phw-'));
  const path = join(dir, 's.sock');
  const sockets = new Set<net.Socket>();
  const app = Fastify({ logger: false });
  await app.register(fastifyWebsocket);
  app.get('/containers/:id/attach/ws', { websocket: true }, (socket) => {
    socket.on('message', (data: Buffer) => socket.send(`ws:${data.toString()}`));
  });
  app.post('/containers/:id/attach', (request, reply) => {
    reply.hijack();
    const { socket } = hijack(request.raw);
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
    socket.on('end', () => {
      socket.write('stdin-eof\n');
      void closeHijacked(socket);
    });
  });
  app.post('/exec/:id/start', (request, reply) => {
    reply.hijack();
    const { socket } = hijack(request.raw);
    sockets.add(socket);
    socket.write(`body:${JSON.stringify(request.body)}\n`);
    socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
    socket.on('end', () => void closeHijacked(socket));
  });
  await app.ready();
  await app.listen({ path });
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    try {
      await app.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  return { app, path };
}

/** Sends `request`, then (after the first response bytes) `stdin`, then half-closes; returns all bytes. */
function rawExchange(path: string, request: string, stdin: string | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path, allowHalfOpen: true });
    let received = '';
    let sent = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out; received ${JSON.stringify(received)}`));
    }, 5000);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (!sent && stdin !== null && received.includes('\r\n\r\n')) {
        sent = true;
        socket.write(stdin);
        setTimeout(() => socket.end(), 30);
      }
    });
    socket.on('end', () => {
      clearTimeout(timer);
      socket.end();
      resolve(received);
    });
    socket.on('error', reject);
    socket.write(request);
  });
}

function websocketRoundTrip(path: string, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws+unix:${path}:/containers/c1/attach/ws?stream=1`);
    const timer = setTimeout(() => reject(new Error('websocket timed out')), 5000);
    ws.on('open', () => ws.send(message));
    ws.on('message', (data: Buffer) => {
      clearTimeout(timer);
      ws.close();
      resolve(data.toString());
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const attachRequest = 'POST /containers/c1/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n';

t.test('without the dispatcher, @fastify/websocket refuses Upgrade: tcp (the hazard)', async (t) => {
  const { path } = await startServer(t);
  const response = await rawExchange(path, attachRequest, null);
  t.notOk(response.startsWith('HTTP/1.1 101 UPGRADED'), 'no hijack');
  t.match(response, /^HTTP\/1\.1 4\d\d /);
  t.equal(await websocketRoundTrip(path, 'ping'), 'ws:ping', 'websocket itself works');
});

t.test('with the dispatcher, websocket and hijack routes share the server', async (t) => {
  const { app, path } = await startServer(t);
  const uninstall = installUpgradeDispatcher(app.server);
  t.equal(app.server.listenerCount('upgrade'), 1, 'the dispatcher is the only upgrade listener');

  t.equal(await websocketRoundTrip(path, 'hello'), 'ws:hello');
  const attach = await rawExchange(path, attachRequest, 'typed');
  t.equal(attach, `${UPGRADED_TCP}echo:typedstdin-eof\n`, 'attach hijacked, stdin echoed, output after half-close');

  // exec start without upgrade headers, stdin pipelined behind the JSON body.
  const body = '{"Detach":false,"Tty":true}';
  const exec = await rawExchange(
    path,
    `POST /exec/e1/start HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}fast`,
    'later',
  );
  t.equal(exec, `${PLAIN_OK}body:${body}\necho:fastecho:later`);

  // Both kinds at the same time.
  const [ws, tcp] = await Promise.all([websocketRoundTrip(path, 'again'), rawExchange(path, attachRequest, 'x')]);
  t.equal(ws, 'ws:again');
  t.equal(tcp, `${UPGRADED_TCP}echo:xstdin-eof\n`);

  uninstall();
  t.equal(app.server.listenerCount('upgrade'), 1, 'the websocket listener is back');
  const refused = await rawExchange(path, attachRequest, null);
  t.notOk(refused.startsWith('HTTP/1.1 101 UPGRADED'), 'uninstall restored the previous behaviour');
});
