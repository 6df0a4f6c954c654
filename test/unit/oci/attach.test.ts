import t from 'tap';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import unixSocket from 'node-unix-socket';
import { connectAttachSocket, MAX_STDIN_MESSAGE } from '../../../src/oci/attach.js';
import type { AttachPacket } from '../../../src/oci/types.js';

type Server = InstanceType<typeof unixSocket.SeqpacketServer>;
type Socket = InstanceType<typeof unixSocket.SeqpacketSocket>;

const dir = mkdtempSync('/tmp/po-at-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let serial = 0;
/** A stand-in for conmon's attach socket; the path is deliberately longer than sun_path allows. */
function fakeConmon(): { path: string; server: Server; connection: Promise<Socket> } {
  serial += 1;
  const deep = join(dir, 'x'.repeat(60), 'y'.repeat(60), String(serial));
  mkdirSync(deep, { recursive: true });
  const path = join(deep, 'attach');
  const server = new unixSocket.SeqpacketServer();
  // Bind through the same /proc trick conmon uses for long paths.
  const fd = openSync(deep, 'r');
  server.listen(`/proc/self/fd/${fd}/attach`);
  closeSync(fd);
  const connection = new Promise<Socket>((resolve) => server.once('connection', (s: Socket) => resolve(s)));
  t.teardown(() => server.close());
  return { path, server, connection };
}

const packet = (pipe: number, text: string): Buffer => Buffer.concat([Buffer.from([pipe]), Buffer.from(text)]);

t.test('connects past the 108-byte sun_path limit; one data event per packet', async (t) => {
  const fake = fakeConmon();
  t.ok(fake.path.length > 108, 'path is long');
  const conn = await connectAttachSocket(fake.path);
  const server = await fake.connection;
  const sent: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const size = (i * 37) % 8192 + 1;
    sent.push(packet(i % 2 === 0 ? 2 : 3, String(i % 10).repeat(size)));
  }
  // The fake server must flush its own write queue before closing, as conmon's blocking writes do.
  await new Promise<void>((resolve) => sent.forEach((p, i) => server.write(p, 0, p.length, i === sent.length - 1 ? resolve : undefined)));
  server.close();
  const got: AttachPacket[] = [];
  for await (const p of conn.packets) got.push(p as AttachPacket);
  t.equal(got.length, sent.length, 'packet count preserved');
  t.ok(
    got.every((p, i) => p.pipe === sent[i]![0] && p.data.equals(sent[i]!.subarray(1))),
    'every packet kept its boundary, pipe id and bytes',
  );
  t.ok(conn.closed, 'closed after EOF');
});

t.test('stdin is split into messages conmon can read whole; closeWrite half-closes', async (t) => {
  const fake = fakeConmon();
  const conn = await connectAttachSocket(fake.path);
  const server = await fake.connection;
  const received: Buffer[] = [];
  const ended = new Promise<void>((resolve) => server.once('end', () => resolve()));
  server.on('data', (b: Buffer) => received.push(b));
  const payload = Buffer.alloc(3 * MAX_STDIN_MESSAGE + 123);
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
  await conn.write(payload);
  await conn.write(new Uint8Array([1, 2, 3]));
  await conn.closeWrite();
  await ended;
  t.ok(received.every((m) => m.length <= MAX_STDIN_MESSAGE), 'no message above 32767 bytes');
  t.ok(Buffer.concat(received).equals(Buffer.concat([payload, Buffer.from([1, 2, 3])])), 'bytes intact and in order');
  await t.rejects(conn.write(Buffer.from('late')), 'no writes after closeWrite');

  // Output still flows after the half-close (conmon keeps writing until the process exits).
  const output = (async () => {
    const got: string[] = [];
    for await (const p of conn.packets) got.push((p as AttachPacket).data.toString());
    return got.join('');
  })();
  server.write(packet(2, 'after half-close'));
  server.close();
  t.equal(await output, 'after half-close');
});

t.test('slow consumer: packets wait in order; a backlog over the cap fails the stream', async (t) => {
  const fake = fakeConmon();
  const conn = await connectAttachSocket(fake.path, { maxQueuedBytes: 64 * 1024 });
  const server = await fake.connection;
  for (let i = 0; i < 4; i++) server.write(packet(2, `p${i};`));
  const it = conn.packets[Symbol.asyncIterator]();
  const first: string[] = [];
  for (let i = 0; i < 4; i++) first.push(((await it.next()).value as AttachPacket).data.toString());
  t.same(first, ['p0;', 'p1;', 'p2;', 'p3;'], 'queued packets delivered in order');

  // Nobody reads any more: the backlog grows past the cap.
  const failed = new Promise<Error>((resolve) => conn.packets.once('error', resolve));
  const chunk = packet(2, 'z'.repeat(8192));
  for (let i = 0; i < 120; i++) server.write(chunk);
  t.match((await failed).message, /backlog exceeded/);
  t.ok(conn.closed, 'connection dropped');
  server.close();
});

t.test('an error with no consumer does not crash; close is idempotent', async (t) => {
  const fake = fakeConmon();
  const conn = await connectAttachSocket(fake.path);
  const server = await fake.connection;
  server.destroy();
  await new Promise((r) => setTimeout(r, 50));
  conn.close();
  conn.close();
  t.ok(conn.closed);
  await t.rejects(conn.write(Buffer.from('x')));
  await conn.closeWrite();
  t.pass('closeWrite after close resolves');
});

t.test('connecting to a missing socket is an InternalError naming the path', async (t) => {
  const err = await connectAttachSocket(join(dir, 'nope', 'attach')).then(() => null, (e: unknown) => e);
  t.match(err, { status: 500, message: /attach socket: .*nope\/attach/ });
  mkdirSync(join(dir, 'empty'));
  const err2 = await connectAttachSocket(join(dir, 'empty', 'attach')).then(() => null, (e: unknown) => e);
  t.match(err2, { status: 500, message: /failed to connect to container's attach socket/ });
});

t.test('writing and closing from inside a data handler is safe', async (t) => {
  const fake = fakeConmon();
  const conn = await connectAttachSocket(fake.path);
  const server = await fake.connection;
  const echoed: string[] = [];
  const serverGot = new Promise<void>((resolve) => {
    server.on('data', (b: Buffer) => {
      echoed.push(b.toString());
      if (echoed.length === 3) resolve();
    });
  });
  let seen = 0;
  const writes: Promise<void>[] = [];
  conn.packets.on('data', (p: AttachPacket) => {
    seen += 1;
    writes.push(conn.write(p.data));
    if (seen === 3) conn.close();
  });
  for (let i = 0; i < 10; i++) server.write(packet(2, `m${i}`));
  await serverGot;
  await Promise.allSettled(writes);
  t.same(echoed, ['m0', 'm1', 'm2'], 'writes issued inside the handler went out in order');
  t.equal(seen, 3, 'nothing delivered after close');
  await new Promise((r) => setTimeout(r, 50));
  t.ok(conn.closed);
  server.close();
});

t.test('a write issued before close() still goes out; later ones are refused', async (t) => {
  const fake = fakeConmon();
  const conn = await connectAttachSocket(fake.path);
  const server = await fake.connection;
  const got = new Promise<string>((resolve) => server.once('data', (b: Buffer) => resolve(b.toString())));
  const write = conn.write(Buffer.from('last words'));
  conn.close();
  await write;
  t.equal(await got, 'last words');
  await t.rejects(conn.write(Buffer.from('too late')), /closed/);
  server.close();
});
