import t, { type Test } from 'tap';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import unixSocket from 'node-unix-socket';
import { connectAttachSocket, MAX_STDIN_MESSAGE, type AttachTransport } from '../../../src/oci/attach.js';
import type { AttachConnection, AttachPacket } from '../../../src/oci/types.js';

type Server = InstanceType<typeof unixSocket.SeqpacketServer>;
type Socket = InstanceType<typeof unixSocket.SeqpacketSocket>;

const dir = mkdtempSync('/tmp/po-at-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let serial = 0;
/** A stand-in for conmon's attach socket; the path is deliberately longer than sun_path allows. */
function fakeConmon(t: Test): { path: string; server: Server; connection: Promise<Socket> } {
  serial += 1;
  const deep = join(dir, 'x'.repeat(60), 'y'.repeat(60), String(serial));
  mkdirSync(deep, { recursive: true });
  const path = join(deep, 'attach');
  const server = new unixSocket.SeqpacketServer();
  // Bind through the same /proc trick conmon uses for long paths.
  const fd = openSync(deep, 'r');
  server.listen(`/proc/self/fd/${fd}/attach`);
  closeSync(fd);
  const connection = new Promise<Socket>((resolve) =>
    server.once('connection', (s: Socket) => {
      // The fake's own socket errors (the client went away) are not what these tests check.
      s.on('error', () => undefined);
      resolve(s);
    }),
  );
  t.teardown(() => server.close());
  return { path, server, connection };
}

const packet = (pipe: number, text: string): Buffer => Buffer.concat([Buffer.from([pipe]), Buffer.from(text)]);

/** Write packets from the fake server and resolve once the kernel took the last one. */
function serverWrite(server: Socket, packets: Buffer[]): Promise<void> {
  return new Promise<void>((resolve) =>
    packets.forEach((p, i) => server.write(p, 0, p.length, i === packets.length - 1 ? () => resolve() : undefined)),
  );
}

/** Consecutive packets of one pipe joined: what the native transport may deliver as one. */
function joinRuns(packets: AttachPacket[]): AttachPacket[] {
  const runs: AttachPacket[] = [];
  for (const p of packets) {
    const last = runs[runs.length - 1];
    if (last && last.pipe === p.pipe) last.data = Buffer.concat([last.data, p.data]);
    else runs.push({ pipe: p.pipe, data: Buffer.from(p.data) });
  }
  return runs;
}

async function readAll(conn: AttachConnection): Promise<AttachPacket[]> {
  const got: AttachPacket[] = [];
  for await (const p of conn.packets) got.push(p as AttachPacket);
  return got;
}

for (const transport of ['native', 'node-unix-socket'] as AttachTransport[]) {
  t.test(`transport ${transport}`, async (t) => {
    const connect = (path: string): Promise<AttachConnection> => connectAttachSocket(path, { transport });

    t.test('connects past the 108-byte sun_path limit; pipe ids and bytes kept in order', async (t) => {
      const fake = fakeConmon(t);
      t.ok(fake.path.length > 108, 'path is long');
      const conn = await connect(fake.path);
      const server = await fake.connection;
      const sent: Buffer[] = [];
      for (let i = 0; i < 300; i++) sent.push(packet(i % 2 === 0 ? 2 : 3, String(i % 10).repeat(((i * 37) % 8192) + 1)));
      // Read while writing: with backpressure the writer waits for the reader.
      const reading = readAll(conn);
      await serverWrite(server, sent);
      server.close();
      const got = await reading;
      const expected = joinRuns(sent.map((b) => ({ pipe: b[0]!, data: b.subarray(1) })));
      const delivered = joinRuns(got);
      t.equal(delivered.length, expected.length, 'as many runs of one pipe as were sent');
      t.ok(
        delivered.every((p, i) => p.pipe === expected[i]!.pipe && p.data.equals(expected[i]!.data)),
        'every run kept its pipe id and bytes',
      );
      t.ok(got.length <= sent.length, 'packets are joined, never split');
      t.ok(conn.closed, 'closed after EOF');
    });

    t.test('packets still queued when the peer hangs up are all delivered', async (t) => {
      const fake = fakeConmon(t);
      const conn = await connect(fake.path);
      const server = await fake.connection;
      const sent = Array.from({ length: 50 }, (_, i) => packet(2, `tail${i};`));
      await serverWrite(server, sent);
      server.close();
      // Start consuming only after the hang-up: everything is queued in the kernel by now.
      await new Promise((r) => setTimeout(r, 100));
      const got = await readAll(conn);
      t.equal(got.map((p) => p.data.toString()).join(''), sent.map((p) => p.subarray(1).toString()).join(''));
      t.ok(got.every((p) => p.pipe === 2), 'all on stdout');
    });

    t.test('stdin is split into messages conmon can read whole; closeWrite half-closes', async (t) => {
      const fake = fakeConmon(t);
      const conn = await connect(fake.path);
      const server = await fake.connection;
      const received: Buffer[] = [];
      const ended = new Promise<void>((resolve) => server.once('end', () => resolve()));
      server.on('data', (b: Buffer) => received.push(b));
      const payload = Buffer.alloc(3 * MAX_STDIN_MESSAGE + 123);
      for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
      // Several writes in flight at once must not be merged into one oversized message.
      await Promise.all([conn.write(payload), conn.write(new Uint8Array([1, 2, 3])), conn.write(payload)]);
      await conn.closeWrite();
      await ended;
      t.ok(received.every((m) => m.length <= MAX_STDIN_MESSAGE), 'no message above 32767 bytes');
      t.ok(Buffer.concat(received).equals(Buffer.concat([payload, Buffer.from([1, 2, 3]), payload])), 'bytes intact and in order');
      await t.rejects(conn.write(Buffer.from('late')), 'no writes after closeWrite');

      // Output still flows after the half-close (conmon keeps writing until the process exits).
      const output = readAll(conn);
      await serverWrite(server, [packet(2, 'after half-close')]);
      server.close();
      t.equal((await output).map((p) => p.data.toString()).join(''), 'after half-close');
    });

    t.test('writing and closing from inside a data handler is safe', async (t) => {
      const fake = fakeConmon(t);
      const conn = await connect(fake.path);
      const server = await fake.connection;
      const echoed: string[] = [];
      server.on('data', (b: Buffer) => echoed.push(b.toString()));
      // Each handler call echoes what it got; the third closes the connection from inside the handler.
      const handled: string[] = [];
      const writes: Promise<void>[] = [];
      conn.packets.on('data', (p: AttachPacket) => {
        if (handled.length >= 3) return;
        handled.push(p.data.toString());
        writes.push(conn.write(p.data));
        if (handled.length === 3) conn.close();
      });
      // One packet at a time, each once the previous one was handled, so that no two are joined.
      for (let i = 0; i < 3; i++) {
        await serverWrite(server, [packet(2, `m${i}`)]);
        while (handled.length <= i) await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.allSettled(writes);
      for (let waited = 0; echoed.join('').length < 'm0m1'.length && waited < 500; waited += 5) {
        await new Promise((r) => setTimeout(r, 5));
      }
      t.same(handled, ['m0', 'm1', 'm2'], 'the handler saw each packet');
      t.ok(echoed.join('').startsWith('m0m1'), 'writes issued inside the handler went out in order');
      await new Promise((r) => setTimeout(r, 50));
      t.ok(conn.closed);
      await t.rejects(conn.write(Buffer.from('too late')), /closed/);
      server.close();
    });

    t.test('an error with no consumer does not crash; close is idempotent', async (t) => {
      const fake = fakeConmon(t);
      const conn = await connect(fake.path);
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
      const err = await connect(join(dir, 'nope', 'attach')).then(() => null, (e: unknown) => e);
      t.match(err, { status: 500, message: /attach socket: .*nope\/attach/ });
      mkdirSync(join(dir, `empty-${transport}`));
      const err2 = await connect(join(dir, `empty-${transport}`, 'attach')).then(() => null, (e: unknown) => e);
      t.match(err2, { status: 500, message: /failed to connect to container's attach socket/ });
    });
  });
}

t.test('native: a consumer that stops reading makes the writer block (backpressure)', async (t) => {
  const fake = fakeConmon(t);
  const conn = await connectAttachSocket(fake.path, { transport: 'native' });
  const server = await fake.connection;
  const it = conn.packets[Symbol.asyncIterator]();
  let taken = 0;
  const total = 2000; // 16 MiB: far more than the socket buffers and the stream's high-water marks hold
  // Every packet different, so that a reordering between the socket's own buffer and the batch reads shows.
  const sent = Array.from({ length: total }, (_, i) => packet(2, String(i).padStart(8192, '.')));
  for (const chunk of sent) server.write(chunk, 0, chunk.length, () => (taken += 1));
  const got: Buffer[] = [((await it.next()).value as AttachPacket).data];
  await new Promise((r) => setTimeout(r, 300));
  t.ok(taken < total / 2, `the kernel took only ${taken} of ${total} packets while nobody read`);
  let read = got[0]!.length;
  while (read < total * 8192) {
    const r = await it.next();
    if (r.done) break;
    got.push((r.value as AttachPacket).data);
    read += (r.value as AttachPacket).data.length;
    // A consumer that keeps stopping: the socket is paused and resumed over and over.
    if (got.length % 7 === 0) await new Promise((r) => setImmediate(r));
  }
  t.equal(read, total * 8192, 'every byte arrives once the consumer reads again');
  t.ok(Buffer.concat(got).equals(Buffer.concat(sent.map((p) => p.subarray(1)))), 'in the order sent');
  t.equal(taken, total);
  conn.close();
  server.close();
});

t.test('node-unix-socket: a backlog over the cap fails the stream', async (t) => {
  const fake = fakeConmon(t);
  const conn = await connectAttachSocket(fake.path, { transport: 'node-unix-socket', maxQueuedBytes: 64 * 1024 });
  const server = await fake.connection;
  await serverWrite(server, [0, 1, 2, 3].map((i) => packet(2, `p${i};`)));
  const it = conn.packets[Symbol.asyncIterator]();
  const first: string[] = [];
  for (let i = 0; i < 4; i++) first.push(((await it.next()).value as AttachPacket).data.toString());
  t.same(first, ['p0;', 'p1;', 'p2;', 'p3;'], 'queued packets delivered in order');
  const failed = new Promise<Error>((resolve) => conn.packets.once('error', resolve));
  const chunk = packet(2, 'z'.repeat(8192));
  for (let i = 0; i < 120; i++) server.write(chunk);
  t.match((await failed).message, /backlog exceeded/);
  t.ok(conn.closed, 'connection dropped');
  server.close();
});
