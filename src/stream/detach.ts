/**
 * Detach keys: the key sequence (default ctrl-p,ctrl-q) that, typed into an attached session's
 * stdin, detaches the client instead of reaching the container.
 *
 * `parseDetachKeys` follows moby/term `ToBytes` as Podman uses it (`processDetachKeys`): keys are
 * comma-separated, each either one character (its byte) or a `ctrl-` name; an empty spec means
 * "detaching disabled". `DetachScanner` finds the sequence in a byte stream split into arbitrary
 * chunks. Unlike Podman's `CopyDetachable` (which only recognises keys arriving one byte per read)
 * it matches anywhere, including across chunk boundaries, holding back a partial match until the
 * next byte confirms or breaks it.
 */
import { Transform, type TransformCallback, type TransformOptions } from 'node:stream';
import { BadRequestError } from '../errors.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** Names moby/term accepts, in code order: `ctrl-@` is 0, `ctrl-a` 1, … `ctrl-_` 31. */
const CONTROL_NAMES: readonly string[] = [
  'ctrl-@',
  ...Array.from({ length: 26 }, (_, i) => `ctrl-${String.fromCharCode(0x61 + i)}`),
  'ctrl-[',
  'ctrl-\\',
  'ctrl-]',
  'ctrl-^',
  'ctrl-_',
];
const CONTROL_CODES: ReadonlyMap<string, number> = new Map(CONTROL_NAMES.map((name, code) => [name, code]));
/** Newer moby/term also accepts DEL; harmless to accept here. */
const DEL_NAME = 'DEL';
const DEL_CODE = 0x7f;

const EMPTY = Buffer.alloc(0);

/**
 * Turns a detach-keys spec into the byte sequence to watch for. Empty spec → empty buffer
 * (detaching disabled). Names are case-sensitive like moby/term (`ctrl-P` is rejected); a single
 * character must be one byte (ASCII). Throws BadRequestError naming the offending key.
 */
export function parseDetachKeys(spec: string): Buffer {
  if (spec.length === 0) return EMPTY;
  const codes: number[] = [];
  for (const key of spec.split(',')) {
    if (key.length === 1 && key.charCodeAt(0) < 0x80) {
      codes.push(key.charCodeAt(0));
      continue;
    }
    const control = CONTROL_CODES.get(key);
    if (control !== undefined) {
      codes.push(control);
    } else if (key === DEL_NAME) {
      codes.push(DEL_CODE);
    } else {
      throw new BadRequestError(`invalid detach keys: unknown character: '${key}'`);
    }
  }
  return Buffer.from(codes);
}

export interface DetachScanResult {
  /** Bytes to pass on now (possibly the input chunk itself, or a view of it). */
  forward: Buffer;
  /** The full sequence was seen: stop copying; bytes after the match were dropped. */
  detached: boolean;
}

/**
 * Finds the detach sequence in a chunked byte stream. Bytes that might start the sequence are held
 * back (at most `keys.length - 1` of them) and released as soon as a following byte rules the match
 * out; the byte that broke it is itself checked as the start of a new match (KMP fallback, so
 * overlapping sequences such as `p,p,q` in `pppq` are found too). With empty keys every chunk is
 * passed through untouched. Call `flush()` at end of input to release held bytes.
 */
export class DetachScanner {
  private readonly keys: Buffer;
  /** fallback[k]: length of the longest proper prefix of keys[0..k] that is also its suffix. */
  private readonly fallback: Uint8Array;
  private matched = 0;
  private done = false;

  constructor(keys: Buffer) {
    this.keys = Buffer.from(keys);
    this.fallback = prefixFunction(this.keys);
  }

  /** Whether a sequence is configured at all. */
  get enabled(): boolean {
    return this.keys.length > 0;
  }

  get detached(): boolean {
    return this.done;
  }

  /** Number of bytes currently held back as a possible start of the sequence. */
  get pending(): number {
    return this.matched;
  }

  scan(chunk: Buffer): DetachScanResult {
    if (this.done) return { forward: EMPTY, detached: true };
    const keys = this.keys;
    const n = keys.length;
    if (n === 0) return { forward: chunk, detached: false };

    // Positions are counted in the virtual stream `held ++ chunk`, where `held` (the bytes kept
    // back from earlier chunks) always equals keys[0..held).
    const held = this.matched;
    const first = keys[0];
    const length = chunk.length;
    let m = held;
    let i = 0;
    while (i < length) {
      if (m === 0) {
        // Nothing pending: let the native search skip to the next candidate.
        const next = chunk.indexOf(first, i);
        if (next < 0) break;
        m = 1;
        i = next + 1;
      } else {
        const byte = chunk[i];
        while (m > 0 && byte !== keys[m]) m = this.fallback[m - 1];
        if (byte === keys[m]) m++;
        i++;
      }
      if (m === n) {
        this.done = true;
        this.matched = 0;
        return { forward: this.prefixOfVirtual(chunk, held, held + i - n), detached: true };
      }
    }
    this.matched = m;
    return { forward: this.prefixOfVirtual(chunk, held, held + length - m), detached: false };
  }

  /** Releases the bytes held back (end of input: they were not a detach sequence). */
  flush(): Buffer {
    const pending = this.matched;
    this.matched = 0;
    return pending === 0 || this.done ? EMPTY : Buffer.from(this.keys.subarray(0, pending));
  }

  /** Bytes [0, end) of `keys[0..held) ++ chunk`, without copying when they lie within the chunk. */
  private prefixOfVirtual(chunk: Buffer, held: number, end: number): Buffer {
    if (end <= held) return end === 0 ? EMPTY : Buffer.from(this.keys.subarray(0, end));
    if (held === 0) return end === chunk.length ? chunk : chunk.subarray(0, end);
    return Buffer.concat([this.keys.subarray(0, held), chunk.subarray(0, end - held)]);
  }
}

function prefixFunction(keys: Buffer): Uint8Array {
  const table = new Uint8Array(keys.length);
  let k = 0;
  for (let i = 1; i < keys.length; i++) {
    while (k > 0 && keys[i] !== keys[k]) k = table[k - 1];
    if (keys[i] === keys[k]) k++;
    table[i] = k;
  }
  return table;
}

/**
 * Transform that forwards everything except the detach sequence; on a match it emits `'detach'`
 * and ends its readable side (later input is discarded). Unpipe the source on `'detach'`.
 */
export class DetachTransform extends Transform {
  private readonly scanner: DetachScanner;

  constructor(keys: Buffer, options: TransformOptions = {}) {
    super(options);
    this.scanner = new DetachScanner(keys);
  }

  get detached(): boolean {
    return this.scanner.detached;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.scanner.detached) {
      callback();
      return;
    }
    const { forward, detached } = this.scanner.scan(chunk);
    if (forward.length > 0) this.push(forward);
    if (detached) {
      this.emit('detach');
      this.push(null);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const rest = this.scanner.flush();
    if (rest.length > 0) this.push(rest);
    callback();
  }
}
