/**
 * Docker/Podman multiplexed stream frames, as written on attach, exec and logs responses of
 * non-TTY containers: an 8-byte header `[stream, 0, 0, 0, length as uint32 big-endian]` followed by
 * `length` payload bytes.
 *
 * Encoding never copies the payload: a frame is the pair (header, payload). The decoder hands out
 * views (`subarray`) of the input chunks whenever a payload lies inside one chunk, and copies only
 * payloads that straddle chunk boundaries.
 */
import { Transform, type TransformCallback, type Writable } from 'node:stream';

/** Stream ids of the frame header. 3 is Podman's "error from the service" extension. */
export const StreamId = {
  Stdin: 0,
  Stdout: 1,
  Stderr: 2,
  Error: 3,
} as const;
export type StreamId = (typeof StreamId)[keyof typeof StreamId];

export const FRAME_HEADER_SIZE = 8;
/** Largest length an 8-byte header can carry. */
export const MAX_FRAME_LENGTH = 0xffff_ffff;
/** Default cap on one decoded payload: protects the decoder from a corrupt length field. */
export const DEFAULT_MAX_DECODED_PAYLOAD = 64 * 1024 * 1024;

export function isStreamId(value: number): value is StreamId {
  return value === 0 || value === 1 || value === 2 || value === 3;
}

/** The 8-byte header of a frame carrying `length` bytes on `stream`. */
export function frameHeader(stream: StreamId, length: number): Buffer {
  if (!isStreamId(stream)) throw new RangeError(`invalid frame stream id ${String(stream)}`);
  if (!Number.isInteger(length) || length < 0 || length > MAX_FRAME_LENGTH) {
    throw new RangeError(`invalid frame length ${length}`);
  }
  const header = Buffer.alloc(FRAME_HEADER_SIZE);
  header[0] = stream;
  header.writeUInt32BE(length, 4);
  return header;
}

/** Header and payload of one frame; the payload is the caller's memory, not a copy. */
export function encodeFrame(stream: StreamId, payload: Uint8Array): [Buffer, Buffer] {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return [frameHeader(stream, body.length), body];
}

/** One contiguous buffer holding a whole frame (copies; for small messages such as errors). */
export function encodeFrameConcat(stream: StreamId, payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([frameHeader(stream, body.length), body]);
}

/**
 * Writes one frame as two writes inside a cork, so a socket sends header and payload with one
 * writev and no concatenation. Returns the destination's backpressure signal.
 */
export function writeFrame(dst: Writable, stream: StreamId, payload: Uint8Array): boolean {
  const [header, body] = encodeFrame(stream, payload);
  dst.cork();
  dst.write(header);
  const ok = dst.write(body);
  dst.uncork();
  return ok;
}

export interface Frame {
  stream: StreamId;
  /** May be a view into a chunk given to the decoder: copy it if you keep it and reuse chunks. */
  payload: Buffer;
}

export type FrameErrorCode = 'TRUNCATED' | 'BAD_STREAM' | 'TOO_LARGE';

export class FrameError extends Error {
  readonly code: FrameErrorCode;
  constructor(code: FrameErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'FrameError';
  }
}

export interface FrameDecoderOptions {
  /** Largest payload accepted (default 64 MiB); a bigger length field is reported as TOO_LARGE. */
  maxPayload?: number;
}

/**
 * Push-parser for a multiplexed stream. Feed chunks of any size, split at any byte; frames come
 * out through the callback in order. `end()` reports input that stopped inside a frame.
 * After an error the decoder stays failed and rethrows it.
 */
export class FrameDecoder {
  private readonly maxPayload: number;
  private readonly header = Buffer.alloc(FRAME_HEADER_SIZE);
  private headerFill = 0;
  /** Stream and length of the frame whose payload is being collected, or -1 between frames. */
  private stream: StreamId = StreamId.Stdout;
  private remaining = -1;
  /** Destination for a payload split across chunks. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  private failure: FrameError | null = null;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_DECODED_PAYLOAD;
  }

  /** Bytes held back waiting for the rest of a frame (header bytes plus collected payload). */
  get bufferedBytes(): number {
    return this.remaining < 0 ? this.headerFill : FRAME_HEADER_SIZE + this.partialFill;
  }

  /** True when the input so far ends exactly on a frame boundary. */
  get atBoundary(): boolean {
    return this.remaining < 0 && this.headerFill === 0;
  }

  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    if (this.failure) throw this.failure;
    let offset = 0;
    const length = chunk.length;
    while (offset < length) {
      if (this.remaining < 0) {
        // Fast path: a whole header inside the chunk.
        if (this.headerFill === 0 && length - offset >= FRAME_HEADER_SIZE) {
          this.startFrame(chunk, offset);
          offset += FRAME_HEADER_SIZE;
        } else {
          const take = Math.min(FRAME_HEADER_SIZE - this.headerFill, length - offset);
          chunk.copy(this.header, this.headerFill, offset, offset + take);
          this.headerFill += take;
          offset += take;
          if (this.headerFill < FRAME_HEADER_SIZE) return;
          this.headerFill = 0;
          this.startFrame(this.header, 0);
        }
        if (this.remaining === 0) {
          this.remaining = -1;
          onFrame({ stream: this.stream, payload: Buffer.alloc(0) });
        }
        continue;
      }
      const available = length - offset;
      if (this.partial === null && available >= this.remaining) {
        // Whole payload inside this chunk: hand out a view.
        const end = offset + this.remaining;
        this.remaining = -1;
        onFrame({ stream: this.stream, payload: chunk.subarray(offset, end) });
        offset = end;
        continue;
      }
      if (this.partial === null) {
        this.partial = Buffer.allocUnsafe(this.remaining);
        this.partialFill = 0;
      }
      const take = Math.min(this.remaining, available);
      chunk.copy(this.partial, this.partialFill, offset, offset + take);
      this.partialFill += take;
      this.remaining -= take;
      offset += take;
      if (this.remaining === 0) {
        const payload = this.partial;
        this.partial = null;
        this.partialFill = 0;
        this.remaining = -1;
        onFrame({ stream: this.stream, payload });
      }
    }
  }

  /** Declares the end of input; throws a TRUNCATED FrameError when it stopped inside a frame. */
  end(): void {
    if (this.failure) throw this.failure;
    if (!this.atBoundary) {
      const detail =
        this.remaining < 0
          ? `${this.headerFill} of ${FRAME_HEADER_SIZE} header bytes`
          : `${this.partialFill} of ${this.partialFill + this.remaining} payload bytes`;
      this.failure = new FrameError('TRUNCATED', `multiplexed stream truncated: ended after ${detail}`);
      throw this.failure;
    }
  }

  private startFrame(source: Buffer, at: number): void {
    const stream = source[at];
    if (!isStreamId(stream)) {
      this.failure = new FrameError('BAD_STREAM', `invalid stream id ${stream} in frame header`);
      throw this.failure;
    }
    const size = source.readUInt32BE(at + 4);
    if (size > this.maxPayload) {
      this.failure = new FrameError('TOO_LARGE', `frame payload of ${size} bytes exceeds the limit of ${this.maxPayload}`);
      throw this.failure;
    }
    this.stream = stream;
    this.remaining = size;
  }
}

/** Transform: bytes in, `Frame` objects out; errors with a FrameError on bad or truncated input. */
export class FrameDecodeStream extends Transform {
  private readonly decoder: FrameDecoder;
  private readonly emitFrame = (frame: Frame): void => {
    this.push(frame);
  };

  constructor(options: FrameDecoderOptions = {}) {
    super({ readableObjectMode: true });
    this.decoder = new FrameDecoder(options);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decoder.push(chunk, this.emitFrame);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.decoder.end();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}
