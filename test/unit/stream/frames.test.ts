import t from 'tap';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  encodeFrame,
  encodeFrameConcat,
  Frame,
  FrameDecoder,
  FrameDecodeStream,
  FrameError,
  frameHeader,
  MAX_FRAME_LENGTH,
  StreamId,
  writeFrame,
} from '../../../src/stream/frames.js';

function decodeAll(chunks: Buffer[], maxPayload?: number): Frame[] {
  const decoder = new FrameDecoder({ maxPayload });
  const frames: Frame[] = [];
  for (const chunk of chunks) decoder.push(chunk, (f) => frames.push({ stream: f.stream, payload: Buffer.from(f.payload) }));
  decoder.end();
  return frames;
}

function summary(frames: Frame[]): string[] {
  return frames.map((f) => `${f.stream}:${f.payload.toString('latin1')}`);
}

t.test('frameHeader encodes stream id, zero padding and big-endian length', async (t) => {
  t.same([...frameHeader(StreamId.Stdout, 5)], [1, 0, 0, 0, 0, 0, 0, 5]);
  t.same([...frameHeader(StreamId.Stderr, 0x01020304)], [2, 0, 0, 0, 1, 2, 3, 4]);
  t.same([...frameHeader(StreamId.Stdin, 0)], [0, 0, 0, 0, 0, 0, 0, 0]);
  t.same([...frameHeader(StreamId.Error, MAX_FRAME_LENGTH)], [3, 0, 0, 0, 255, 255, 255, 255]);
  // The example from podman's apiv2 tests: a 24-byte stdout frame starts with \001 ... \030.
  t.equal(frameHeader(StreamId.Stdout, 24).toString('latin1'), '\x01\x00\x00\x00\x00\x00\x00\x18');
});

t.test('frameHeader rejects what cannot be encoded', async (t) => {
  t.throws(() => frameHeader(4 as StreamId, 1), RangeError);
  t.throws(() => frameHeader(-1 as StreamId, 1), RangeError);
  t.throws(() => frameHeader(StreamId.Stdout, -1), RangeError);
  t.throws(() => frameHeader(StreamId.Stdout, 1.5), RangeError);
  t.throws(() => frameHeader(StreamId.Stdout, MAX_FRAME_LENGTH + 1), RangeError);
  t.throws(() => frameHeader(StreamId.Stdout, Number.NaN), RangeError);
});

t.test('encodeFrame returns the header and the very same payload buffer', async (t) => {
  const payload = Buffer.from('hello');
  const [header, body] = encodeFrame(StreamId.Stderr, payload);
  t.equal(body, payload, 'no copy');
  t.same([...header], [2, 0, 0, 0, 0, 0, 0, 5]);
  const view = new Uint8Array([1, 2, 3, 4]).subarray(1, 3);
  const [, viewBody] = encodeFrame(StreamId.Stdout, view);
  t.equal(viewBody.buffer, view.buffer, 'Uint8Array payload wrapped, not copied');
  t.equal(viewBody.byteOffset, 1);
  t.equal(viewBody.length, 2);
  t.same(encodeFrameConcat(StreamId.Stdout, 'ab'), Buffer.from([1, 0, 0, 0, 0, 0, 0, 2, 0x61, 0x62]));
  t.same(encodeFrameConcat(StreamId.Stdout, Buffer.alloc(0)), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
});

t.test('writeFrame sends header and payload in one corked writev without copying', async (t) => {
  const payload = Buffer.from('payload-bytes');
  const batches: Buffer[][] = [];
  const sink = new Writable({
    writev(chunks, cb) {
      batches.push(chunks.map((c) => c.chunk as Buffer));
      cb();
    },
    write(chunk: Buffer, _enc, cb) {
      batches.push([chunk]);
      cb();
    },
  });
  t.equal(writeFrame(sink, StreamId.Stdout, payload), true);
  t.equal(batches.length, 1, 'one batch');
  t.equal(batches[0].length, 2, 'header + payload');
  t.same([...batches[0][0]], [1, 0, 0, 0, 0, 0, 0, 13]);
  t.equal(batches[0][1], payload, 'payload buffer passed through');
});

t.test('writeFrame reports backpressure', async (t) => {
  const sink = new Writable({ highWaterMark: 4, write: (_c, _e, cb) => setImmediate(cb) });
  t.equal(writeFrame(sink, StreamId.Stdout, Buffer.alloc(16)), false);
});

const sample = Buffer.concat([
  encodeFrameConcat(StreamId.Stdout, 'hello'),
  encodeFrameConcat(StreamId.Stderr, ''),
  encodeFrameConcat(StreamId.Stderr, 'oops\n'),
  encodeFrameConcat(StreamId.Stdin, 'x'),
  encodeFrameConcat(StreamId.Error, 'err'),
  encodeFrameConcat(StreamId.Stdout, ''),
]);
const sampleSummary = ['1:hello', '2:', '2:oops\n', '0:x', '3:err', '1:'];

t.test('decodes several frames from one chunk, including zero-length frames', async (t) => {
  t.same(summary(decodeAll([sample])), sampleSummary);
});

t.test('decodes the same stream split at every byte position', async (t) => {
  for (let cut = 0; cut <= sample.length; cut++) {
    t.same(summary(decodeAll([sample.subarray(0, cut), sample.subarray(cut)])), sampleSummary, `cut at ${cut}`);
  }
});

t.test('decodes the stream split at every pair of positions', async (t) => {
  let checked = 0;
  for (let a = 0; a <= sample.length; a++) {
    for (let b = a; b <= sample.length; b++) {
      const frames = decodeAll([sample.subarray(0, a), sample.subarray(a, b), sample.subarray(b)]);
      if (summary(frames).join('|') !== sampleSummary.join('|')) t.fail(`split at ${a},${b}`);
      checked++;
    }
  }
  t.ok(checked > 1000, `${checked} splits checked`);
});

t.test('decodes one byte at a time and with empty chunks', async (t) => {
  const bytes = [...sample].map((b) => Buffer.from([b]));
  t.same(summary(decodeAll(bytes)), sampleSummary);
  const withEmpties = bytes.flatMap((b) => [Buffer.alloc(0), b]);
  t.same(summary(decodeAll(withEmpties)), sampleSummary);
});

t.test('random chunkings of a large random stream round-trip', async (t) => {
  let seed = 42;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const expected: string[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const stream = rand(4) as StreamId;
    const payload = Buffer.alloc(rand(3) === 0 ? 0 : rand(5000));
    for (let j = 0; j < payload.length; j++) payload[j] = rand(256);
    expected.push(`${stream}:${payload.toString('latin1')}`);
    parts.push(...encodeFrame(stream, payload));
  }
  const all = Buffer.concat(parts);
  for (let round = 0; round < 20; round++) {
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < all.length; ) {
      const size = 1 + rand(round % 2 === 0 ? 16 : 20000);
      chunks.push(all.subarray(offset, offset + size));
      offset += size;
    }
    t.same(summary(decodeAll(chunks)), expected, `round ${round}`);
  }
});

t.test('payloads inside one chunk are views; split payloads are assembled', async (t) => {
  const chunk = Buffer.concat([encodeFrameConcat(StreamId.Stdout, 'abc'), encodeFrameConcat(StreamId.Stdout, 'defgh')]);
  const decoder = new FrameDecoder();
  const seen: Frame[] = [];
  decoder.push(chunk, (f) => seen.push(f));
  t.equal(seen.length, 2);
  t.equal(seen[0].payload.buffer, chunk.buffer, 'view into the input chunk');
  t.equal(seen[0].payload.byteOffset, chunk.byteOffset + 8);

  const split = encodeFrameConcat(StreamId.Stderr, 'split-payload');
  const decoder2 = new FrameDecoder();
  const got: Frame[] = [];
  decoder2.push(split.subarray(0, 12), (f) => got.push(f));
  t.equal(got.length, 0);
  t.equal(decoder2.bufferedBytes, 12);
  t.notOk(decoder2.atBoundary);
  decoder2.push(split.subarray(12), (f) => got.push(f));
  t.equal(got[0].payload.toString(), 'split-payload');
  t.ok(decoder2.atBoundary);
  t.equal(decoder2.bufferedBytes, 0);
});

t.test('end() reports truncation inside a header or a payload', async (t) => {
  const frame = encodeFrameConcat(StreamId.Stdout, 'hello');
  const inHeader = new FrameDecoder();
  inHeader.push(frame.subarray(0, 3), () => t.fail('no frame'));
  t.equal(inHeader.bufferedBytes, 3);
  t.throws(() => inHeader.end(), { name: 'FrameError', code: 'TRUNCATED', message: /3 of 8 header bytes/ });

  const inPayload = new FrameDecoder();
  inPayload.push(frame.subarray(0, 10), () => t.fail('no frame'));
  t.throws(() => inPayload.end(), { code: 'TRUNCATED', message: /2 of 5 payload bytes/ });

  const afterHeader = new FrameDecoder();
  afterHeader.push(frame.subarray(0, 8), () => t.fail('no frame'));
  t.throws(() => afterHeader.end(), { code: 'TRUNCATED', message: /0 of 5 payload bytes/ });

  const clean = new FrameDecoder();
  clean.end();
  t.pass('empty input is a clean end');
});

t.test('rejects bad stream ids and oversized frames, and stays failed', async (t) => {
  const bad = Buffer.from([7, 0, 0, 0, 0, 0, 0, 1, 0x41]);
  const decoder = new FrameDecoder();
  t.throws(() => decoder.push(bad, () => t.fail('no frame')), { code: 'BAD_STREAM', message: /invalid stream id 7/ });
  t.throws(() => decoder.push(encodeFrameConcat(StreamId.Stdout, 'ok'), () => t.fail('no frame')), FrameError, 'sticky');
  t.throws(() => decoder.end(), { code: 'BAD_STREAM' });

  const big = new FrameDecoder({ maxPayload: 10 });
  t.throws(() => big.push(frameHeader(StreamId.Stdout, 11), () => t.fail('no frame')), { code: 'TOO_LARGE' });
  const exact = new FrameDecoder({ maxPayload: 10 });
  const frames: Frame[] = [];
  exact.push(encodeFrameConcat(StreamId.Stdout, '0123456789'), (f) => frames.push(f));
  t.equal(frames.length, 1, 'a payload of exactly the limit is accepted');

  const splitHeader = new FrameDecoder();
  splitHeader.push(Buffer.from([9, 0, 0]), () => t.fail('no frame'));
  t.throws(() => splitHeader.push(Buffer.from([0, 0, 0, 0, 0]), () => t.fail('no frame')), { code: 'BAD_STREAM' }, 'detected in a split header too');
});

t.test('frames emitted before an error in the same chunk are delivered', async (t) => {
  const chunk = Buffer.concat([encodeFrameConcat(StreamId.Stdout, 'good'), Buffer.from([5, 0, 0, 0, 0, 0, 0, 0])]);
  const frames: Frame[] = [];
  t.throws(() => new FrameDecoder().push(chunk, (f) => frames.push(f)), { code: 'BAD_STREAM' });
  t.same(summary(frames), ['1:good']);
});

t.test('FrameDecodeStream yields frame objects through a pipeline', async (t) => {
  const frames: Frame[] = [];
  const chunks = [sample.subarray(0, 5), sample.subarray(5, 17), sample.subarray(17)];
  await pipeline(
    Readable.from(chunks),
    new FrameDecodeStream(),
    new Writable({
      objectMode: true,
      write(frame: Frame, _enc, cb) {
        frames.push(frame);
        cb();
      },
    }),
  );
  t.same(summary(frames), sampleSummary);
});

t.test('FrameDecodeStream errors on truncated input', async (t) => {
  const input = new PassThrough();
  const decoder = new FrameDecodeStream();
  input.end(encodeFrameConcat(StreamId.Stdout, 'hello').subarray(0, 9));
  await t.rejects(pipeline(input, decoder, new Writable({ objectMode: true, write: (_f, _e, cb) => cb() })), {
    code: 'TRUNCATED',
  });
});

t.test('FrameDecodeStream errors on a bad header', async (t) => {
  await t.rejects(
    pipeline(Readable.from([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0])]), new FrameDecodeStream(), new Writable({ objectMode: true, write: (_f, _e, cb) => cb() })),
    { code: 'BAD_STREAM' },
  );
});
