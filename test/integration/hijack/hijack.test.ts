/**
 * Hijacked attach/exec connections on a real Fastify server over a unix socket, driven by a raw
 * `net` client (exact header bytes, stdin after the header, half-close) and by curl. Every scenario
 * runs without the dispatcher (hijack() detaches Node's parser itself), with the dispatcher for
 * upgrade requests only, and with the dispatcher selecting attach/exec start (the default).
 */
import t, { type Test } from 'tap';
import Fastify, { type FastifyInstance } from 'fastify';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  closeHijacked,
  hijack,
  installUpgradeDispatcher,
  type UpgradeDispatcherOptions,
  writeHijackError,
} from '../../../src/stream/hijack.js';
import { copyStream } from '../../../src/stream/pipe.js';
import { FrameDecoder } from '../../../src/stream/frames.js';

const execFileAsync = promisify(execFile);

const UPGRADED_TCP =
  'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n';
const PLAIN_OK = 'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n';
const WAIT_MS = 5000;

/** A raw client that records every byte it receives. */
class RawClient {
  readonly socket: net.Socket;
  private received = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  ended = false;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => {});
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path, allowHalfOpen: true });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  get text(): string {
    return this.received.toString('latin1');
  }

  get bytes(): Buffer {
    return this.received;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  halfClose(): void {
    this.socket.end();
  }

  private notify(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Resolves once `done()` holds; rejects after a timeout with what was received. */
  async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  waitForText(text: string): Promise<void> {
    return this.until(() => this.text.includes(text), JSON.stringify(text));
  }

  waitForEnd(): Promise<void> {
    return this.until(() => this.ended, 'end of stream');
  }

  waitForClose(): Promise<void> {
    return this.until(() => this.closed, 'close');
  }
}

type Mode = 'no dispatcher' | 'dispatcher, upgrades only' | 'dispatcher';

interface Harness {
  app: FastifyInstance;
  path: string;
  client(): Promise<RawClient>;
}

async function startServer(t: Test, mode: Mode, dispatcherOptions: UpgradeDispatcherOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'phj-'));
  const path = join(dir, 's.sock');
  const sessions = new Set<net.Socket>();
  const clients = new Set<RawClient>();
  const app = Fastify({ logger: false });

  // An interactive session: echo stdin, and on stdin EOF keep talking before closing.
  const echoSession = (socket: net.Socket): void => {
    sessions.add(socket);
    socket.on('close', () => sessions.delete(socket));
    socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString('latin1')}`));
    socket.on('end', () => {
      socket.write('stdin-eof\n');
      setTimeout(() => {
        socket.write('late-output\n');
        void closeHijacked(socket);
      }, 30);
    });
  };

  app.post<{ Params: { id: string }; Querystring: { fail?: string } }>('/containers/:id/attach', (request, reply) => {
    reply.hijack();
    const { socket } = hijack(request.raw);
    if (request.query.fail) {
      void writeHijackError(socket, 'detached from container', true);
      return;
    }
    echoSession(socket);
  });
  app.post<{ Params: { id: string } }>('/v4.3.1/libpod/containers/:id/attach', (request, reply) => {
    reply.hijack();
    const { socket } = hijack(request.raw);
    socket.write(`attached:${request.params.id}\n`);
    echoSession(socket);
  });
  const execStart = (request: { body: unknown; raw: import('node:http').IncomingMessage }, reply: import('fastify').FastifyReply): unknown => {
    const body = request.body as { Detach?: boolean; Big?: number };
    if (body.Detach) return reply.type('text/plain').send('\n');
    reply.hijack();
    const { socket } = hijack(request.raw);
    sessions.add(socket);
    socket.write(`body:${JSON.stringify(body)}\n`);
    if (body.Big) {
      // Bulk output through the backpressured copy, then close: the client reads to EOF.
      const chunk = Buffer.alloc(64 * 1024, 0x78);
      const count = Math.ceil(body.Big / chunk.length);
      void copyStream(Readable.from(Array.from({ length: count }, () => chunk)), socket, { end: false }).then(() => closeHijacked(socket));
      return undefined;
    }
    echoSession(socket);
    return undefined;
  };
  app.post('/exec/:id/start', execStart);
  app.post('/v4.3.1/libpod/exec/:id/start', execStart);
  app.get('/_ping', async () => 'OK');

  await app.ready();
  let uninstall: (() => void) | undefined;
  if (mode === 'dispatcher') uninstall = installUpgradeDispatcher(app.server, dispatcherOptions);
  if (mode === 'dispatcher, upgrades only') uninstall = installUpgradeDispatcher(app.server, { ...dispatcherOptions, isHijackRequest: null });
  await app.listen({ path });

  t.teardown(async () => {
    for (const client of clients) client.socket.destroy();
    for (const socket of sessions) socket.destroy();
    uninstall?.();
    try {
      await app.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  return {
    app,
    path,
    client: async () => {
      const client = await RawClient.connect(path);
      clients.add(client);
      return client;
    },
  };
}

function post(url: string, headers: Record<string, string>, body = ''): string {
  const lines = [`POST ${url} HTTP/1.1`, 'Host: d'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body.length > 0 || headers['Content-Type']) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

function decodeFramesForTest(bytes: Buffer): string[] {
  const frames: string[] = [];
  const decoder = new FrameDecoder();
  decoder.push(bytes, (f) => frames.push(`${f.stream}:${f.payload.toString()}`));
  decoder.end();
  return frames;
}

const UPGRADE = { Connection: 'Upgrade', Upgrade: 'tcp' };
const JSON_TYPE = { 'Content-Type': 'application/json' };

/** stdin after the header, then a half-close: output must keep flowing until the server closes. */
async function interactive(t: Test, client: RawClient, header: string, preamble = ''): Promise<void> {
  await client.waitForText(header + preamble);
  t.equal(client.text.slice(0, header.length), header, 'exact hijack header');
  client.write('hello');
  await client.waitForText('echo:hello');
  client.write('\x10\x11typed after');
  await client.waitForText('echo:\x10\x11typed after');
  client.halfClose();
  await client.waitForEnd();
  t.equal(client.text, `${header}${preamble}echo:hello` + 'echo:\x10\x11typed after' + 'stdin-eof\nlate-output\n', 'whole conversation');
  await client.waitForClose();
}

const modes: Mode[] = ['no dispatcher', 'dispatcher, upgrades only', 'dispatcher'];

for (const mode of modes) {
  t.test(`${mode}: attach with Connection: Upgrade → 101, stdin, half-close`, async (t) => {
    const server = await startServer(t, mode);
    const client = await server.client();
    client.write(post('/v4.3.1/libpod/containers/c1/attach?stream=true&stdin=true', UPGRADE));
    await interactive(t, client, UPGRADED_TCP, 'attached:c1\n');
  });

  t.test(`${mode}: attach without upgrade headers → 200, stdin, half-close`, async (t) => {
    const server = await startServer(t, mode);
    const client = await server.client();
    client.write(post('/v4.3.1/libpod/containers/c2/attach?stream=true&stdin=true', {}));
    await interactive(t, client, PLAIN_OK, 'attached:c2\n');
  });

  t.test(`${mode}: exec start with a JSON body, stdin after the header`, async (t) => {
    const server = await startServer(t, mode);
    const body = '{"Detach":false,"Tty":true}';
    for (const headers of [JSON_TYPE, { ...JSON_TYPE, ...UPGRADE }]) {
      const client = await server.client();
      client.write(post('/exec/e1/start', headers, body));
      const header = 'Upgrade' in headers ? UPGRADED_TCP : PLAIN_OK;
      await interactive(t, client, header, `body:${body}\n`);
    }
  });

  t.test(`${mode}: hijacked connections survive closeIdleConnections`, async (t) => {
    const server = await startServer(t, mode);
    const client = await server.client();
    client.write(post('/exec/e2/start', JSON_TYPE, '{"Detach":false}'));
    await client.waitForText('body:{"Detach":false}\n');
    server.app.server.closeIdleConnections();
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.write('still here');
    await client.waitForText('echo:still here');
    t.notOk(client.closed);
  });

  t.test(`${mode}: a normal request then a hijack on the same keep-alive connection`, async (t) => {
    const server = await startServer(t, mode);
    const client = await server.client();
    client.write('GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n');
    await client.waitForText('\r\n\r\nOK');
    const before = client.text.length;
    client.write(post('/exec/e3/start', JSON_TYPE, '{"Detach":false}'));
    await client.waitForText(PLAIN_OK);
    t.equal(client.text.slice(before, before + PLAIN_OK.length), PLAIN_OK);
    client.write('x');
    await client.waitForText('echo:x');
    client.halfClose();
    await client.waitForText('late-output\n');
  });

  t.test(`${mode}: an error after the hijack is a stream-2 frame, then close`, async (t) => {
    const server = await startServer(t, mode);
    const client = await server.client();
    client.write(post('/containers/c3/attach?fail=1', UPGRADE));
    await client.waitForEnd();
    t.equal(client.text.slice(0, UPGRADED_TCP.length), UPGRADED_TCP);
    const frames = decodeFramesForTest(client.bytes.subarray(UPGRADED_TCP.length));
    t.same(frames, ['2:Error: detached from container\n']);
  });

  t.test(`${mode}: bulk output with backpressure reaches the client intact`, async (t) => {
    const server = await startServer(t, mode);
    const client = await server.client();
    const size = 4 * 1024 * 1024;
    client.write(post('/exec/big/start', JSON_TYPE, `{"Big":${size}}`));
    await client.waitForEnd();
    const prefix = `${PLAIN_OK}body:{"Big":${size}}\n`;
    t.equal(client.text.slice(0, prefix.length), prefix);
    const rest = client.bytes.subarray(prefix.length);
    t.equal(rest.length, size);
    t.equal(rest.indexOf(0x78 ^ 0xff), -1, 'only payload bytes');
  });

  t.test(`${mode}: curl reads the hijacked stream`, async (t) => {
    const server = await startServer(t, mode);
    // The session ends when the client half-closes; curl never does, so use the bulk route.
    const common = ['--unix-socket', server.path, '-s', '-N', '-i', '--output', '-', '-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', '{"Big":10}'];
    const plain = await execFileAsync('curl', [...common, 'http://d/exec/c/start'], { encoding: 'latin1' });
    t.equal(plain.stdout, `${PLAIN_OK}body:{"Big":10}\n${'x'.repeat(64 * 1024)}`);
    const upgraded = await execFileAsync('curl', [...common, '-H', 'Connection: Upgrade', '-H', 'Upgrade: tcp', 'http://d/v4.3.1/libpod/exec/c/start'], {
      encoding: 'latin1',
    });
    t.equal(upgraded.stdout, `${UPGRADED_TCP}body:{"Big":10}\n${'x'.repeat(64 * 1024)}`);
  });
}

t.test('dispatcher: stdin sent in the same write as the request body arrives as stdin', async (t) => {
  const server = await startServer(t, 'dispatcher');
  const body = '{"Detach":false,"Tty":true}';
  for (const headers of [JSON_TYPE, { ...JSON_TYPE, ...UPGRADE }]) {
    const client = await server.client();
    client.write(post('/exec/e4/start', headers, body) + 'typed-fast');
    const header = 'Upgrade' in headers ? UPGRADED_TCP : PLAIN_OK;
    await client.waitForText('echo:typed-fast');
    t.equal(client.text, `${header}body:${body}\necho:typed-fast`, 'body parsed, the rest is stdin');
    client.halfClose();
    await client.waitForText('late-output\n');
  }
});

t.test('no dispatcher: stdin pipelined behind a bodyless request is lost, but the session survives', async (t) => {
  const server = await startServer(t, 'no dispatcher');
  const strays = ['hello\x10', 'GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n', post('/containers/x/attach', UPGRADE)];
  for (const stray of strays) {
    const client = await server.client();
    client.write(post('/v4.3.1/libpod/containers/c6/attach', {}) + stray);
    await client.waitForText('attached:c6\n');
    client.write('later');
    await client.waitForText('echo:later');
    t.equal(client.text, `${PLAIN_OK}attached:c6\necho:later`, `after ${JSON.stringify(stray.slice(0, 12))}: no 400, no stray response`);
  }
});

t.test('dispatcher: the same pipelined stdin is delivered', async (t) => {
  const server = await startServer(t, 'dispatcher');
  const client = await server.client();
  client.write(post('/v4.3.1/libpod/containers/c7/attach', {}) + 'hello\x10');
  await client.waitForText('echo:hello\x10');
  t.equal(client.text, `${PLAIN_OK}attached:c7\necho:hello\x10`);
});

t.test('dispatcher (upgrades only): pipelined stdin works for upgrade requests', async (t) => {
  const server = await startServer(t, 'dispatcher, upgrades only');
  const client = await server.client();
  client.write(post('/exec/e5/start', { ...JSON_TYPE, ...UPGRADE }, '{"Detach":false}') + 'fast');
  await client.waitForText('echo:fast');
  t.equal(client.text, `${UPGRADED_TCP}body:{"Detach":false}\necho:fast`);
});

t.test('dispatcher: a hijack pipelined behind another request waits for that response', async (t) => {
  const server = await startServer(t, 'dispatcher');
  for (const headers of [UPGRADE, {}]) {
    const client = await server.client();
    client.write('GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n' + post('/v4.3.1/libpod/containers/c5/attach', headers));
    await client.waitForText('attached:c5\n');
    const header = 'Upgrade' in headers ? UPGRADED_TCP : PLAIN_OK;
    t.match(client.text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nOK/);
    t.ok(client.text.endsWith(`OK${header}attached:c5\n`), 'ping response, then the hijack header');
    client.write('y');
    await client.waitForText('echo:y');
  }
});

t.test('dispatcher: body split over several writes, stdin right behind it', async (t) => {
  const server = await startServer(t, 'dispatcher');
  const client = await server.client();
  const body = '{"Detach":false,"Tty":false,"h":24,"w":80}';
  const request = post('/v4.3.1/libpod/exec/e6/start', JSON_TYPE, body);
  const headerEnd = request.indexOf('\r\n\r\n') + 4;
  client.write(request.slice(0, headerEnd));
  await new Promise((resolve) => setTimeout(resolve, 30));
  client.write(request.slice(headerEnd, headerEnd + 10));
  await new Promise((resolve) => setTimeout(resolve, 30));
  client.write(request.slice(headerEnd + 10) + 'stdin!');
  await client.waitForText('echo:stdin!');
  t.equal(client.text, `${PLAIN_OK}body:${body}\necho:stdin!`);
});

t.test('dispatcher: a detached exec start is an ordinary response, then the connection closes', async (t) => {
  const server = await startServer(t, 'dispatcher');
  const client = await server.client();
  client.write(post('/exec/e7/start', JSON_TYPE, '{"Detach":true}'));
  await client.waitForEnd();
  t.match(client.text, /^HTTP\/1\.1 200 OK\r\n/);
  t.match(client.text, /\r\nconnection: close\r\n/i);
  t.match(client.text, /\r\n\r\n\n$/);
});

t.test('dispatcher: a non-hijack route reached with upgrade headers answers normally', async (t) => {
  const server = await startServer(t, 'dispatcher');
  const client = await server.client();
  client.write('GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  await client.waitForEnd();
  t.match(client.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nOK$/);
  const missing = await server.client();
  missing.write(post('/nowhere', UPGRADE));
  await missing.waitForEnd();
  t.match(missing.text, /^HTTP\/1\.1 404 Not Found\r\n/);
});

t.test('dispatcher: an empty chunked body (dockerode hijack) is not taken for stdin', async (t) => {
  const server = await startServer(t, 'dispatcher');
  const client = await server.client();
  client.write('POST /containers/c4/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\ntyped');
  await client.waitForText('echo:typed');
  t.equal(client.text, `${UPGRADED_TCP}echo:typed`);
});

t.test('dispatcher: request bodies over the limit are refused', async (t) => {
  const server = await startServer(t, 'dispatcher', { bodyLimit: 16 });
  const client = await server.client();
  client.write(post('/exec/e8/start', JSON_TYPE, '{"Detach":false,"Tty":true}'));
  await client.waitForEnd();
  t.match(client.text, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
  t.match(client.text, /"response":413/);
});

t.test('dispatcher: a client that leaves before sending the whole body is dropped quietly', async (t) => {
  const server = await startServer(t, 'dispatcher');
  const client = await server.client();
  client.write(post('/exec/e9/start', JSON_TYPE, '{"Detach":false}').slice(0, -5));
  await new Promise((resolve) => setTimeout(resolve, 20));
  client.halfClose();
  await client.waitForClose();
  t.equal(client.text, '');
  // The server is still fine.
  const next = await server.client();
  next.write('GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n');
  await next.waitForText('OK');
});
