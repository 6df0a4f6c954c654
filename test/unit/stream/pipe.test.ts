import t from 'tap';
import { PassThrough, Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDetachKeys } from '../../../src/stream/detach.js';
import { Frame, FrameDecoder } from '../../../src/stream/frames.js';
import {
  AttachOutputTransform,
  AttachOutputWriter,
  AttachPacketMapper,
  CONMON_STDIN_MAX_MESSAGE,
  ConmonPipe,
  copyInput,
  copyStream,
  splitChunk,
} from '../../../src/stream/pipe.js';

const packet = (pipe: number, text: string): Buffer => Buffer.concat([Buffer.from([pipe]), Buffer.from(text)]);

function decodeFrames(bytes: Buffer): string[] {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  decoder.push(bytes, (f) => frames.push(f));
  decoder.end();
  return frames.map((f) => `${f.stream}:${f.payload.toString()}`);
}

t.test('non-TTY packets become frames on stream 1 and 2', async (t) => {
  const mapper = new AttachPacketMapper({ tty: false, stdout: true, stderr: true });
  const out = mapper.map(packet(ConmonPipe.Stdout, 'hello'));
  t.ok(out);
  t.equal(out!.length, 2);
  t.same([...out![0]], [1, 0, 0, 0, 0, 0, 0, 5]);
  t.equal(out![1].toString(), 'hello');
  const err = mapper.map(packet(ConmonPipe.Stderr, 'bad'));
  t.same([...err![0]], [2, 0, 0, 0, 0, 0, 0, 3]);
  t.equal(err![1].toString(), 'bad');
});

t.test('payloads are views of the packet, not copies', async (t) => {
  const mapper = new AttachPacketMapper({ tty: false, stdout: true, stderr: true });
  const pkt = packet(ConmonPipe.Stdout, 'data');
  const [, payload] = mapper.map(pkt)!;
  t.equal(payload.buffer, pkt.buffer);
  t.equal(payload.byteOffset, pkt.byteOffset + 1);
  const tty = new AttachPacketMapper({ tty: true, stdout: true, stderr: true });
  const [raw] = tty.map(pkt)!;
  t.equal(raw.buffer, pkt.buffer);
  t.equal(raw.byteOffset, pkt.byteOffset + 1);
});

t.test('streams not requested, stdin echo, unknown pipes and empty packets are dropped', async (t) => {
  const onlyStdout = new AttachPacketMapper({ tty: false, stdout: true, stderr: false });
  t.equal(onlyStdout.map(packet(ConmonPipe.Stderr, 'x')), null);
  t.ok(onlyStdout.map(packet(ConmonPipe.Stdout, 'x')));
  const onlyStderr = new AttachPacketMapper({ tty: false, stdout: false, stderr: true });
  t.equal(onlyStderr.map(packet(ConmonPipe.Stdout, 'x')), null);
  t.ok(onlyStderr.map(packet(ConmonPipe.Stderr, 'x')));
  const all = new AttachPacketMapper({ tty: false, stdout: true, stderr: true });
  t.equal(all.map(packet(ConmonPipe.Stdin, 'echo')), null, 'no stream-0 frames');
  t.equal(all.map(packet(0, 'x')), null);
  t.equal(all.map(packet(9, 'x')), null);
  t.equal(all.map(Buffer.from([ConmonPipe.Stdout])), null, 'id byte only');
  t.equal(all.map(Buffer.alloc(0)), null, 'empty packet');
});

t.test('TTY: stdout packets raw, no stderr, stdout=false means silence', async (t) => {
  const tty = new AttachPacketMapper({ tty: true, stdout: true, stderr: true });
  t.same(tty.map(packet(ConmonPipe.Stdout, 'raw'))!.map(String), ['raw']);
  t.equal(tty.map(packet(ConmonPipe.Stderr, 'raw')), null);
  const silent = new AttachPacketMapper({ tty: true, stdout: false, stderr: true });
  t.equal(silent.map(packet(ConmonPipe.Stdout, 'raw')), null);
});

t.test('the mapper copies its options', async (t) => {
  const options = { tty: false, stdout: true, stderr: true };
  const mapper = new AttachPacketMapper(options);
  options.stdout = false;
  t.ok(mapper.map(packet(ConmonPipe.Stdout, 'x')));
});

t.test('AttachOutputWriter writes frames in one corked batch and reports backpressure', async (t) => {
  const batches: Buffer[][] = [];
  const sink = new Writable({
    highWaterMark: 8,
    writev(chunks, cb) {
      batches.push(chunks.map((c) => c.chunk as Buffer));
      setImmediate(cb);
    },
    write(chunk: Buffer, _e, cb) {
      batches.push([chunk]);
      setImmediate(cb);
    },
  });
  const writer = new AttachOutputWriter(sink, { tty: false, stdout: true, stderr: true });
  t.equal(writer.write(packet(ConmonPipe.Stdout, 'abcdef')), false, 'over the high-water mark');
  t.equal(batches.length, 1);
  t.equal(batches[0].length, 2, 'header and payload together');
  t.equal(writer.write(packet(ConmonPipe.Stdin, 'x')), false, 'dropped packet still reports need to drain');
  await new Promise((resolve) => sink.once('drain', resolve));
  t.equal(writer.write(packet(ConmonPipe.Stdin, 'x')), true);
  t.equal(decodeFrames(Buffer.concat(batches.flat())).join(), '1:abcdef');
});

t.test('AttachOutputWriter in TTY mode writes raw bytes', async (t) => {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      parts.push(chunk);
      cb();
    },
  });
  const writer = new AttachOutputWriter(sink, { tty: true, stdout: true, stderr: false });
  t.equal(writer.write(packet(ConmonPipe.Stdout, 'one ')), true);
  writer.write(packet(ConmonPipe.Stderr, 'never'));
  writer.write(packet(ConmonPipe.Stdout, 'two'));
  t.equal(Buffer.concat(parts).toString(), 'one two');
});

t.test('AttachOutputTransform turns packets into a multiplexed byte stream', async (t) => {
  const transform = new AttachOutputTransform({ tty: false, stdout: true, stderr: true });
  const parts: Buffer[] = [];
  transform.on('data', (chunk: Buffer) => parts.push(chunk));
  const ended = new Promise((resolve) => transform.on('end', resolve));
  transform.write(packet(ConmonPipe.Stdout, 'out'));
  transform.write(packet(ConmonPipe.Stderr, 'err'));
  transform.write(packet(ConmonPipe.Stdin, 'in'));
  transform.end(packet(ConmonPipe.Stdout, 'last'));
  await ended;
  t.same(decodeFrames(Buffer.concat(parts)), ['1:out', '2:err', '1:last']);
});

t.test('splitChunk slices without copying', async (t) => {
  const buf = Buffer.from('abcdefghij');
  t.same(splitChunk(buf, 4).map(String), ['abcd', 'efgh', 'ij']);
  t.equal(splitChunk(buf, 10)[0], buf);
  t.equal(splitChunk(buf, 100)[0], buf);
  t.equal(splitChunk(buf, 3)[1].buffer, buf.buffer);
  t.same(splitChunk(Buffer.alloc(0), 4).map((b) => b.length), [0]);
  t.throws(() => splitChunk(buf, 0), RangeError);
  t.throws(() => splitChunk(buf, 1.5), RangeError);
});

function slowSink(delayMs: number, highWaterMark = 16): { sink: Writable; received: Buffer[]; maxBuffered: () => number } {
  const received: Buffer[] = [];
  let max = 0;
  const sink = new Writable({
    highWaterMark,
    write(chunk: Buffer, _e, cb) {
      received.push(chunk);
      max = Math.max(max, sink.writableLength);
      setTimeout(cb, delayMs);
    },
  });
  return { sink, received, maxBuffered: () => max };
}

t.test('copyStream copies everything with backpressure and ends the destination', async (t) => {
  const chunks = Array.from({ length: 50 }, (_, i) => Buffer.from(`chunk-${i};`));
  let reads = 0;
  const src = new Readable({
    highWaterMark: 8,
    read() {
      if (reads < chunks.length) this.push(chunks[reads++]);
      else this.push(null);
    },
  });
  const { sink, received, maxBuffered } = slowSink(1, 16);
  const bytes = await copyStream(src, sink);
  t.equal(bytes, Buffer.concat(chunks).length);
  t.equal(Buffer.concat(received).toString(), Buffer.concat(chunks).toString());
  t.ok(sink.writableFinished, 'destination ended');
  t.ok(maxBuffered() < 64, `source was paused (max ${maxBuffered()} bytes queued)`);
});

t.test('copyStream with end:false leaves the destination open', async (t) => {
  const sink = new PassThrough();
  const bytes = await copyStream(Readable.from([Buffer.from('abc')]), sink, { end: false });
  t.equal(bytes, 3);
  t.notOk(sink.writableEnded);
  sink.end('!');
  t.equal(Buffer.concat(await sink.toArray()).toString(), 'abc!');
});

t.test('copyStream rejects on a source error without destroying the destination', async (t) => {
  const src = new PassThrough();
  const dst = new PassThrough();
  const copy = copyStream(src, dst);
  src.write('x');
  src.destroy(new Error('source broke'));
  await t.rejects(copy, { message: 'source broke' });
  t.notOk(dst.destroyed, 'destination untouched');
  t.notOk(dst.writableEnded);
});

t.test('copyStream rejects on a destination error without destroying the source', async (t) => {
  const src = new PassThrough();
  const dst = new Writable({ write: (_c, _e, cb) => cb(new Error('sink broke')) });
  dst.on('error', () => {});
  const copy = copyStream(src, dst);
  src.write('x');
  await t.rejects(copy, { message: 'sink broke' });
  t.notOk(src.destroyed, 'source untouched');
});

t.test('copyStream rejects when the source closes before its end', async (t) => {
  const src = new PassThrough();
  const dst = new PassThrough();
  const copy = copyStream(src, dst);
  src.destroy();
  await t.rejects(copy, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
});

function recordingSink(delayMs = 0): { sink: (chunk: Buffer) => Promise<void>; messages: Buffer[]; maxInFlight: () => number } {
  const messages: Buffer[] = [];
  let inFlight = 0;
  let max = 0;
  return {
    messages,
    maxInFlight: () => max,
    sink: async (chunk: Buffer) => {
      inFlight++;
      max = Math.max(max, inFlight);
      if (delayMs > 0) await sleep(delayMs);
      messages.push(Buffer.from(chunk));
      inFlight--;
    },
  };
}

t.test('copyInput delivers everything at end of input, one write at a time', async (t) => {
  const src = new PassThrough();
  const { sink, messages, maxInFlight } = recordingSink(2);
  const copy = copyInput(src, sink);
  for (let i = 0; i < 20; i++) src.write(`line ${i}\n`);
  src.end();
  const result = await copy;
  t.equal(result.reason, 'eof');
  const text = Buffer.concat(messages).toString();
  t.equal(text, Array.from({ length: 20 }, (_, i) => `line ${i}\n`).join(''));
  t.equal(result.bytes, Buffer.byteLength(text));
  t.equal(maxInFlight(), 1);
});

t.test('copyInput stops at the detach sequence and drops what follows', async (t) => {
  const src = new PassThrough();
  const { sink, messages } = recordingSink();
  const copy = copyInput(src, sink, { detachKeys: parseDetachKeys('ctrl-p,ctrl-q') });
  src.write(Buffer.from('before'));
  src.write(Buffer.from([16]));
  src.write(Buffer.from([17, 0x61, 0x62]));
  src.write('after');
  const result = await copy;
  t.equal(result.reason, 'detached');
  t.equal(Buffer.concat(messages).toString(), 'before');
  t.equal(result.bytes, 6);
  t.notOk(src.destroyed, 'source left alone');
  t.equal(src.readableFlowing, false, 'source paused');
});

t.test('copyInput releases a partial detach sequence at end of input', async (t) => {
  const src = new PassThrough();
  const { sink, messages } = recordingSink();
  const copy = copyInput(src, sink, { detachKeys: parseDetachKeys('ctrl-p,ctrl-q') });
  src.end(Buffer.from([0x61, 16]));
  const result = await copy;
  t.equal(result.reason, 'eof');
  t.same([...Buffer.concat(messages)], [0x61, 16]);
});

t.test('copyInput splits chunks to the sink message size', async (t) => {
  const src = new PassThrough();
  const { sink, messages } = recordingSink();
  const copy = copyInput(src, sink);
  const big = Buffer.alloc(CONMON_STDIN_MAX_MESSAGE * 2 + 10, 0x61);
  src.end(big);
  const result = await copy;
  t.equal(result.bytes, big.length);
  t.ok(messages.every((m) => m.length <= CONMON_STDIN_MAX_MESSAGE), 'no message above 32767 bytes');
  t.equal(Buffer.concat(messages).length, big.length);
  const small = recordingSink();
  const src2 = new PassThrough();
  const copy2 = copyInput(src2, small.sink, { maxMessage: 3 });
  src2.end('abcdefg');
  await copy2;
  t.same(small.messages.map(String), ['abc', 'def', 'g']);
});

t.test('copyInput does not read ahead while the sink is busy', async (t) => {
  const src = new PassThrough({ highWaterMark: 4 });
  let release: (() => void) | undefined;
  const delivered: string[] = [];
  const copy = copyInput(src, (chunk) => {
    delivered.push(chunk.toString());
    return new Promise<void>((resolve) => {
      release = resolve;
    });
  });
  src.write('one');
  await sleep(10);
  t.same(delivered, ['one']);
  t.equal(src.write('two-two-two'), false, 'source buffer fills while the sink is busy');
  await sleep(10);
  t.same(delivered, ['one'], 'nothing else taken');
  release!();
  await sleep(10);
  t.same(delivered, ['one', 'two-two-two']);
  src.end();
  release!();
  t.equal((await copy).reason, 'eof');
});

t.test('copyInput resolves "closed" when the source is destroyed without an end', async (t) => {
  const src = new PassThrough();
  const { sink, messages } = recordingSink();
  const copy = copyInput(src, sink);
  src.write('x');
  await sleep(5);
  src.destroy();
  const result = await copy;
  t.equal(result.reason, 'closed');
  t.equal(Buffer.concat(messages).toString(), 'x');
});

t.test('copyInput resolves "aborted" on the signal', async (t) => {
  const src = new PassThrough();
  const controller = new AbortController();
  const { sink } = recordingSink();
  const copy = copyInput(src, sink, { signal: controller.signal });
  src.write('x');
  await sleep(5);
  controller.abort();
  const result = await copy;
  t.equal(result.reason, 'aborted');
  t.equal(result.bytes, 1);
  const already = AbortSignal.abort();
  t.equal((await copyInput(new PassThrough(), sink, { signal: already })).reason, 'aborted');
});

t.test('copyInput rejects on source and sink errors', async (t) => {
  const src = new PassThrough();
  const copy = copyInput(src, async () => {});
  src.destroy(new Error('reset'));
  await t.rejects(copy, { message: 'reset' });

  const src2 = new PassThrough();
  const copy2 = copyInput(src2, async () => {
    throw new Error('attach socket gone');
  });
  src2.write('x');
  await t.rejects(copy2, { message: 'attach socket gone' });
  t.notOk(src2.destroyed);
});

t.test('copyInput accepts a synchronous sink and an already ended source', async (t) => {
  const got: string[] = [];
  const src = Readable.from([Buffer.from('a'), Buffer.from('b')]);
  const result = await copyInput(src, (chunk) => {
    got.push(chunk.toString());
  });
  t.equal(result.reason, 'eof');
  t.same(got.join(''), 'ab');
  const ended = new PassThrough();
  ended.end();
  await ended.toArray();
  t.equal((await copyInput(ended, () => {})).reason, 'eof');
});
