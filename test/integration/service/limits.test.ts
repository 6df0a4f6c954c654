/**
 * HTTP limits on the real app (buildApp) with short timeouts: slow or silent request heads, oversized heads,
 * garbage, bad JSON and oversized bodies get Podman-shaped 4xx answers; quiet long-lived responses (streams,
 * waits, hijacked sessions) are not cut; long-lived requests are capped.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { parseCommandLine } from '../../../src/args.js';
import { Engine } from '../../../src/engine/engine.js';
import { isLongLived, type HttpLimits } from '../../../src/http/limits.js';
import { buildApp } from '../../../src/server.js';
import { hijack, RAW_STREAM_CONTENT_TYPE } from '../../../src/stream/hijack.js';
import { request } from '../../helpers/daemon.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const LIMITS: Partial<HttpLimits> = {
  headersTimeoutMs: 1000,
  timeoutCheckIntervalMs: 100,
  keepAliveTimeoutMs: 500,
  maxHeaderBytes: 8192,
  bodyLimit: 1024,
  maxStreams: 2,
};

async function startApp(t: { teardown: (fn: () => unknown) => void }): Promise<{ app: FastifyInstance; socket: string }> {
  const dir = mkdtempSync('/tmp/psl-');
  const logger = pino({ level: 'silent' });
  const cmd = parseCommandLine(['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), 'service']);
  if (cmd.kind !== 'service') throw new Error('expected service');
  const engine = await Engine.open(cmd.config, logger);
  const app = await buildApp({ engine, logger, limits: LIMITS });

  // Stand-ins for the long-lived routes: a stream quiet for longer than every timeout, an answer that takes as
  // long, and a route that declares itself long-lived.
  app.get('/_test/quiet-stream', async (_request, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'Content-Type': 'text/plain' });
    reply.raw.write('start\n');
    setTimeout(() => reply.raw.end('end\n'), 2500);
  });
  app.get('/_test/slow-answer', async () => {
    await sleep(2500);
    return { done: true };
  });
  // An attach-like session through the project's hijack helper: stdin echoed back for as long as the client
  // types, slowly, then a last chunk and the end.
  app.post('/_test/hijack', async (request, reply) => {
    reply.hijack();
    const { socket } = hijack(request.raw, { contentType: RAW_STREAM_CONTENT_TYPE });
    socket.on('data', (chunk: Buffer) => socket.write(`echo ${chunk.toString()}`));
    socket.on('end', () => {
      socket.end('bye\n');
    });
  });
  app.post(
    '/_test/json',
    { schema: { body: { type: 'object', required: ['Name'], properties: { Name: { type: 'string' } } } } },
    async (request) => request.body,
  );
  app.get('/_test/slot', { config: { longLived: true } }, async () => {
    await sleep(800);
    return 'done';
  });

  await app.ready();
  const socket = join(dir, 'a.sock');
  await new Promise<void>((resolve) => app.server.listen(socket, resolve));
  t.teardown(async () => {
    await app.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { app, socket };
}

/** Writes `chunks` (with pauses between them) on a raw connection and collects everything until it closes. */
function raw(path: string, chunks: (string | Buffer)[], pauseMs = 0): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect(path);
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => resolve({ text, ms: Date.now() - started }));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err)));
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        if (pauseMs) await sleep(pauseMs);
      }
    });
  });
}

/** A client of /_test/hijack: a line of stdin every 700 ms, four times, then half-close; returns all it read. */
function attachLike(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.on('connect', async () => {
      socket.write('POST /_test/hijack HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n');
      for (let i = 1; i <= 4; i++) {
        await sleep(700);
        socket.write(`in ${i}\n`);
      }
      await sleep(300);
      socket.end();
    });
  });
}

function errorBody(text: string): { status: number; body: { cause: string; message: string; response: number } } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { cause: string; message: string; response: number };
  return { status, body };
}

t.test('requests the parser refuses get Podman-shaped 4xx answers', async (t) => {
  const { socket } = await startApp(t);

  const silent = await raw(socket, []);
  t.equal(errorBody(silent.text).status, 408, 'a connection that sends nothing: 408');
  t.ok(silent.ms >= 900 && silent.ms < 5000, `closed after the head timeout (${silent.ms} ms)`);

  // Slowloris: a header line every 200 ms never completes the head within 1 s.
  const slow = await raw(socket, ['GET /_ping HTTP/1.1\r\n', ...Array.from({ length: 30 }, (_, i) => `X-Slow-${i}: y\r\n`)], 200);
  // A client still writing when the server closes may get a reset instead of the answer (the kernel drops what
  // it had not read): the cut itself, on time, is what must hold; the answer, when it arrives, must be a 408.
  if (slow.text.includes('\r\n\r\n')) {
    const slowAnswer = errorBody(slow.text);
    t.equal(slowAnswer.status, 408, 'slow head: 408');
    t.same(Object.keys(slowAnswer.body), ['cause', 'message', 'response']);
    t.equal(slowAnswer.body.response, 408);
  }
  t.ok(slow.ms < 5000, `slowloris cut after ${slow.ms} ms`);

  const huge = await raw(socket, [`GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`]);
  const hugeAnswer = errorBody(huge.text);
  t.equal(hugeAnswer.status, 431, 'oversized head: 431');
  t.match(hugeAnswer.body.message, /8192 bytes/);

  const garbage = await raw(socket, [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a])]);
  t.equal(errorBody(garbage.text).status, 400, 'garbage: 400');
  const badVersion = await raw(socket, ['GET /_ping HTTP/7.5\r\nHost: d\r\n\r\n']);
  t.equal(errorBody(badVersion.text).status, 400, 'a bad protocol version: 400');
});

t.test('bad bodies: 400 naming the problem, 413 when too large', async (t) => {
  const { socket } = await startApp(t);
  const notJson = await request(socket, 'POST', '/_test/json', '{"Name": ');
  t.equal(notJson.status, 400);
  t.same(Object.keys(notJson.json()), ['cause', 'message', 'response']);
  t.match(notJson.json().message, /JSON/);
  const wrongShape = await request(socket, 'POST', '/_test/json', { Name: 5, Other: true });
  t.equal(wrongShape.status, 400);
  t.match(wrongShape.json().message, /Name/, 'names the bad field');
  const tooBig = await request(socket, 'POST', '/_test/json', { Name: 'x'.repeat(2000) });
  t.equal(tooBig.status, 413);
  t.equal(tooBig.json().response, 413);
  const fine = await request(socket, 'POST', '/_test/json', { Name: 'ok' });
  t.equal(fine.status, 200);
});

t.test('quiet long-lived responses outlast every timeout', async (t) => {
  const { socket } = await startApp(t);
  const [stream, answer, hijacked] = await Promise.all([
    raw(socket, ['GET /_test/quiet-stream HTTP/1.1\r\nHost: d\r\n\r\n']),
    request(socket, 'GET', '/_test/slow-answer', undefined, { Connection: 'close' }),
    attachLike(socket),
  ]);
  t.match(stream.text, /start\n[\s\S]*end\n/, 'a stream silent for 2.5 s (head timeout 1 s, keep-alive 0.5 s) ends normally');
  t.equal(answer.status, 200, 'an answer that takes 2.5 s arrives');
  t.match(hijacked, /^HTTP\/1\.1 200 OK\r\n[\s\S]*echo in 1\n[\s\S]*echo in 4\nbye\n$/, 'a hijacked session typing every 0.7 s for 3 s is not cut');
});

t.test('long-lived requests are capped, and slots come back', async (t) => {
  const { socket } = await startApp(t);
  const first = request(socket, 'GET', '/_test/slot', undefined, { Connection: 'close' });
  const second = request(socket, 'GET', '/_test/slot', undefined, { Connection: 'close' });
  await sleep(200);
  const third = await request(socket, 'GET', '/_test/slot', undefined, { Connection: 'close' });
  t.equal(third.status, 429, 'the third concurrent stream is refused');
  t.match(third.json().message, /limit is 2/);
  t.equal((await request(socket, 'GET', '/_ping')).status, 200, 'ordinary requests are not capped');
  t.equal((await first).status, 200);
  t.equal((await second).status, 200);
  await sleep(50);
  t.equal((await request(socket, 'GET', '/_test/slot', undefined, { Connection: 'close' })).status, 200, 'a freed slot is reused');
});

t.test('which requests count as long-lived', async (t) => {
  const fake = (url: string, query: Record<string, unknown> = {}, config: Record<string, unknown> = {}): FastifyRequest =>
    ({ routeOptions: { url, config }, query }) as unknown as FastifyRequest;
  const yes: [string, Record<string, unknown>?][] = [
    ['/containers/:id/attach'],
    ['/libpod/containers/:name/attach'],
    ['/containers/:id/attach/ws'],
    ['/exec/:id/start'],
    ['/libpod/exec/:id/start'],
    ['/events'],
    ['/libpod/events'],
    ['/containers/:id/wait'],
    ['/containers/:id/logs', { follow: '1' }],
    ['/libpod/containers/:id/logs', { follow: 'true' }],
    ['/containers/:id/stats'],
    ['/libpod/containers/stats', { stream: 'true' }],
    ['/libpod/containers/:id/top', { stream: 'True' }],
  ];
  for (const [url, query] of yes) t.ok(isLongLived(fake(url, query)), `${url} ${JSON.stringify(query ?? {})}`);
  const no: [string, Record<string, unknown>?][] = [
    ['/_ping'],
    ['/containers/:id/logs'],
    ['/containers/:id/logs', { follow: 'false' }],
    ['/containers/:id/stats', { stream: '0' }],
    ['/libpod/containers/:id/top'],
    ['/containers/json'],
    ['/exec/:id/json'],
  ];
  for (const [url, query] of no) t.notOk(isLongLived(fake(url, query)), `not ${url} ${JSON.stringify(query ?? {})}`);
  t.ok(isLongLived(fake('/anything', {}, { longLived: true })), 'a route can declare itself long-lived');
});
