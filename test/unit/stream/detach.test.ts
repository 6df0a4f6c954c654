import t from 'tap';
import { PassThrough, Readable } from 'node:stream';
import { BadRequestError } from '../../../src/errors.js';
import { DEFAULT_DETACH_KEYS, DetachScanner, DetachTransform, parseDetachKeys } from '../../../src/stream/detach.js';

t.test('parseDetachKeys: the default and every control name', async (t) => {
  t.same([...parseDetachKeys(DEFAULT_DETACH_KEYS)], [16, 17]);
  t.same([...parseDetachKeys('ctrl-@')], [0]);
  for (let i = 0; i < 26; i++) {
    t.same([...parseDetachKeys(`ctrl-${String.fromCharCode(0x61 + i)}`)], [i + 1]);
  }
  t.same([...parseDetachKeys('ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_')], [27, 28, 29, 30, 31]);
  // moby/term's own test vectors.
  t.same([...parseDetachKeys('ctrl-a,a')], [1, 97]);
  t.same([...parseDetachKeys('ctrl-@,ctrl-[,~,ctrl-o')], [0, 27, 126, 15]);
  t.same([...parseDetachKeys('DEL,+')], [127, 43]);
});

t.test('parseDetachKeys: single characters are taken as their byte', async (t) => {
  t.same([...parseDetachKeys('a')], [0x61]);
  t.same([...parseDetachKeys('Z,1, ,-')], [0x5a, 0x31, 0x20, 0x2d]);
  t.same([...parseDetachKeys('x,ctrl-x,x')], [0x78, 24, 0x78]);
});

t.test('parseDetachKeys: empty spec disables detaching', async (t) => {
  const keys = parseDetachKeys('');
  t.equal(keys.length, 0);
});

t.test('parseDetachKeys: anything else is a 400 naming the bad key', async (t) => {
  const bad: Array<[string, string]> = [
    ['shift-z', 'shift-z'],
    ['ctrl-P', 'ctrl-P'],
    ['Ctrl-p', 'Ctrl-p'],
    ['ctrl-p,', ''],
    [',ctrl-p', ''],
    ['ctrl-p,,ctrl-q', ''],
    ['ctrl-', 'ctrl-'],
    ['ctrl-1', 'ctrl-1'],
    ['ab', 'ab'],
    ['é', 'é'],
    ['ctrl-p, ctrl-q', ' ctrl-q'],
    ['del', 'del'],
  ];
  for (const [spec, key] of bad) {
    try {
      parseDetachKeys(spec);
      t.fail(`${JSON.stringify(spec)} should be rejected`);
    } catch (err) {
      t.type(err, BadRequestError, `${JSON.stringify(spec)} → BadRequestError`);
      const e = err as BadRequestError;
      t.equal(e.status, 400);
      t.equal(e.message, `invalid detach keys: unknown character: '${key}'`);
    }
  }
});

/** What the scanner must produce: the whole input up to the first occurrence, and whether there is one. */
function reference(input: Buffer, keys: Buffer): { forward: Buffer; detached: boolean } {
  if (keys.length === 0) return { forward: input, detached: false };
  const at = input.indexOf(keys);
  return at < 0 ? { forward: input, detached: false } : { forward: input.subarray(0, at), detached: true };
}

function runScanner(chunks: Buffer[], keys: Buffer): { forward: Buffer; detached: boolean; detachedAtChunk: number } {
  const scanner = new DetachScanner(keys);
  const out: Buffer[] = [];
  let detachedAtChunk = -1;
  chunks.forEach((chunk, i) => {
    const result = scanner.scan(chunk);
    out.push(result.forward);
    if (result.detached && detachedAtChunk < 0) detachedAtChunk = i;
  });
  if (!scanner.detached) out.push(scanner.flush());
  return { forward: Buffer.concat(out), detached: scanner.detached, detachedAtChunk };
}

const ctrlPQ = Buffer.from([16, 17]);

t.test('empty keys pass chunks through untouched', async (t) => {
  const scanner = new DetachScanner(Buffer.alloc(0));
  t.notOk(scanner.enabled);
  const chunk = Buffer.from([16, 17, 16, 17]);
  const result = scanner.scan(chunk);
  t.equal(result.forward, chunk, 'same buffer');
  t.notOk(result.detached);
  t.equal(scanner.flush().length, 0);
});

t.test('a chunk without any key byte is forwarded as the same buffer', async (t) => {
  const scanner = new DetachScanner(ctrlPQ);
  t.ok(scanner.enabled);
  const chunk = Buffer.from('plain text');
  const result = scanner.scan(chunk);
  t.equal(result.forward, chunk);
  t.equal(scanner.pending, 0);
});

t.test('a full match inside a chunk: bytes before forwarded, after dropped', async (t) => {
  const scanner = new DetachScanner(ctrlPQ);
  const chunk = Buffer.from([0x61, 0x62, 16, 17, 0x63, 0x64]);
  const result = scanner.scan(chunk);
  t.ok(result.detached);
  t.same([...result.forward], [0x61, 0x62]);
  t.equal(result.forward.buffer, chunk.buffer, 'a view, not a copy');
  t.ok(scanner.detached);
  t.same(scanner.scan(Buffer.from('more')), { forward: Buffer.alloc(0), detached: true }, 'nothing after detaching');
  t.equal(scanner.flush().length, 0);
});

t.test('a match at the very start of a chunk forwards nothing', async (t) => {
  const result = new DetachScanner(ctrlPQ).scan(Buffer.from([16, 17]));
  t.ok(result.detached);
  t.equal(result.forward.length, 0);
});

t.test('a partial match is held back across chunks and completed', async (t) => {
  const scanner = new DetachScanner(ctrlPQ);
  const first = scanner.scan(Buffer.from([0x61, 16]));
  t.same([...first.forward], [0x61]);
  t.notOk(first.detached);
  t.equal(scanner.pending, 1);
  const second = scanner.scan(Buffer.from([17, 0x62]));
  t.ok(second.detached);
  t.equal(second.forward.length, 0, 'held byte was part of the sequence');
});

t.test('held bytes are released when the next byte breaks the match', async (t) => {
  const scanner = new DetachScanner(ctrlPQ);
  t.equal(scanner.scan(Buffer.from([16])).forward.length, 0);
  const result = scanner.scan(Buffer.from([0x78, 0x79]));
  t.same([...result.forward], [16, 0x78, 0x79]);
  t.notOk(result.detached);
  t.equal(scanner.pending, 0);
});

t.test('the breaking byte is checked as the start of a new match', async (t) => {
  const scanner = new DetachScanner(ctrlPQ);
  t.equal(scanner.scan(Buffer.from([16])).forward.length, 0);
  const second = scanner.scan(Buffer.from([16]));
  t.same([...second.forward], [16], 'first ctrl-p released, second held');
  t.equal(scanner.pending, 1);
  const third = scanner.scan(Buffer.from([17]));
  t.ok(third.detached);
  t.equal(third.forward.length, 0);
});

t.test('overlapping sequences are found (KMP fallback)', async (t) => {
  const keys = parseDetachKeys('p,p,q');
  const scanner = new DetachScanner(keys);
  const result = scanner.scan(Buffer.from('xpppqz'));
  t.ok(result.detached);
  t.equal(result.forward.toString(), 'xp');
  const split = runScanner([Buffer.from('xpp'), Buffer.from('p'), Buffer.from('qz')], keys);
  t.ok(split.detached);
  t.equal(split.forward.toString(), 'xp');
  const abab = parseDetachKeys('a,b,a,c');
  t.equal(runScanner([Buffer.from('ab'), Buffer.from('abab'), Buffer.from('ac!')], abab).forward.toString(), 'abab');
});

t.test('a one-key sequence detaches on its first occurrence', async (t) => {
  const keys = parseDetachKeys('ctrl-c');
  const result = new DetachScanner(keys).scan(Buffer.from([0x61, 3, 0x62, 3]));
  t.ok(result.detached);
  t.same([...result.forward], [0x61]);
});

t.test('flush releases a trailing partial match at end of input', async (t) => {
  const scanner = new DetachScanner(parseDetachKeys('ctrl-a,ctrl-b,ctrl-c'));
  t.same([...scanner.scan(Buffer.from([0x41, 1, 2])).forward], [0x41]);
  t.equal(scanner.pending, 2);
  t.same([...scanner.flush()], [1, 2]);
  t.equal(scanner.pending, 0);
  t.equal(scanner.flush().length, 0);
});

t.test('a partial match from earlier chunks is released together with the next chunk', async (t) => {
  const keys = parseDetachKeys('ctrl-a,ctrl-b,ctrl-c');
  const scanner = new DetachScanner(keys);
  scanner.scan(Buffer.from([1]));
  scanner.scan(Buffer.from([2]));
  const result = scanner.scan(Buffer.from([1, 9]));
  t.same([...result.forward], [1, 2, 1, 9]);
  t.notOk(result.detached);
});

t.test('a match completed partly from held bytes forwards only what preceded it', async (t) => {
  const keys = parseDetachKeys('a,a,b');
  const scanner = new DetachScanner(keys);
  t.equal(scanner.scan(Buffer.from('aa')).forward.length, 0);
  const result = scanner.scan(Buffer.from('ab'));
  t.ok(result.detached);
  t.equal(result.forward.toString(), 'a', 'one held a released, match = a + ab');
});

t.test('every split of inputs around the default keys matches the reference', async (t) => {
  const inputs = [
    Buffer.from([0x61, 16, 17, 0x62]),
    Buffer.from([16, 16, 17]),
    Buffer.from([16, 0x61, 17, 16, 17]),
    Buffer.from([17, 16, 0x61, 16]),
    Buffer.from([16]),
    Buffer.from('no keys at all'),
    Buffer.from([16, 16, 16, 16]),
  ];
  for (const input of inputs) {
    const expected = reference(input, ctrlPQ);
    for (let a = 0; a <= input.length; a++) {
      for (let b = a; b <= input.length; b++) {
        const got = runScanner([input.subarray(0, a), input.subarray(a, b), input.subarray(b)], ctrlPQ);
        t.same(
          { forward: [...got.forward], detached: got.detached },
          { forward: [...expected.forward], detached: expected.detached },
          `${[...input].join(',')} split ${a}/${b}`,
        );
      }
    }
  }
});

t.test('random streams and chunkings agree with the reference', async (t) => {
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const keySets = [ctrlPQ, parseDetachKeys('a,a,b'), parseDetachKeys('a,b,a,b,c'), parseDetachKeys('a'), parseDetachKeys('a,a,a')];
  let mismatches = 0;
  let detachedCases = 0;
  for (let round = 0; round < 3000; round++) {
    const keys = keySets[round % keySets.length];
    const alphabet = [...new Set([...keys, 0x61, 0x62, 0x63, 0x7a])];
    const input = Buffer.from(Array.from({ length: rand(40) }, () => alphabet[rand(alphabet.length)]));
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < input.length; ) {
      const size = rand(6);
      chunks.push(input.subarray(offset, offset + size));
      offset += size;
    }
    const expected = reference(input, keys);
    const got = runScanner(chunks, keys);
    if (!got.forward.equals(expected.forward) || got.detached !== expected.detached) {
      mismatches++;
      if (mismatches < 5) t.fail(`mismatch for ${[...input]} keys ${[...keys]}`);
    }
    if (expected.detached) detachedCases++;
  }
  t.equal(mismatches, 0);
  t.ok(detachedCases > 300, `${detachedCases} detaching cases exercised`);
});

t.test('the scanner holds back at most keys.length - 1 bytes', async (t) => {
  const keys = parseDetachKeys('a,b,c');
  const scanner = new DetachScanner(keys);
  scanner.scan(Buffer.from('ab'));
  t.equal(scanner.pending, 2);
  const result = scanner.scan(Buffer.from('x'));
  t.equal(result.forward.toString(), 'abx');
});

t.test('large chunks without key bytes are scanned natively (fast)', async (t) => {
  const scanner = new DetachScanner(ctrlPQ);
  const big = Buffer.alloc(16 * 1024 * 1024, 0x61);
  const started = process.hrtime.bigint();
  for (let i = 0; i < 8; i++) t.equal(scanner.scan(big).forward, big);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.ok(ms < 2000, `128 MiB scanned in ${ms.toFixed(1)} ms`);
});

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

t.test('DetachTransform forwards, emits detach and ends', async (t) => {
  const transform = new DetachTransform(ctrlPQ);
  let detachEvents = 0;
  transform.on('detach', () => detachEvents++);
  const output = collect(transform);
  transform.write(Buffer.from([0x61, 16]));
  transform.write(Buffer.from([17, 0x62]));
  transform.write(Buffer.from('ignored'));
  const result = await output;
  t.same([...result], [0x61]);
  t.equal(detachEvents, 1);
  t.ok(transform.detached);
  transform.end();
});

t.test('DetachTransform releases held bytes at end of input', async (t) => {
  const transform = new DetachTransform(ctrlPQ);
  transform.on('detach', () => t.fail('no detach'));
  const output = collect(transform);
  transform.write(Buffer.from('hi'));
  transform.end(Buffer.from([16]));
  t.same([...(await output)], [0x68, 0x69, 16]);
  t.notOk(transform.detached);
});

t.test('DetachTransform with empty keys is a pass-through', async (t) => {
  const source = Readable.from([Buffer.from([16, 17]), Buffer.from('x')]);
  const transform = new DetachTransform(Buffer.alloc(0));
  const through = new PassThrough();
  source.pipe(transform).pipe(through);
  t.same([...(await collect(through))], [16, 17, 0x78]);
});
