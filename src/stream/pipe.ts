/**
 * Copy loops for attach and exec sessions.
 *
 * Output: conmon's attach socket delivers one packet per read of the container's stdio, the first
 * byte naming the pipe (2 stdout, 3 stderr) and the rest being data. `AttachPacketMapper` turns a
 * packet into what goes on the HTTP connection: the raw data for a TTY session, or a multiplexed
 * frame (stream 1/2) otherwise, dropping streams the client did not ask for. Payloads are views of
 * the packet, never copies.
 *
 * Input: `copyInput` moves client stdin to a sink (conmon's attach socket) one chunk at a time,
 * waiting for each write, splitting chunks to the sink's message size and watching for the detach
 * sequence. `copyStream` is a plain backpressured pipe that leaves both streams open on error.
 */
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { DetachScanner } from './detach.js';
import { frameHeader, StreamId } from './frames.js';

/** Pipe ids conmon puts in the first byte of each attach-socket packet (conmon `stdpipe_t`). */
export const ConmonPipe = {
  Stdin: 1,
  Stdout: 2,
  Stderr: 3,
} as const;

/**
 * conmon reads stdin from the attach socket with a 32 KiB buffer (CONN_SOCK_BUF_SIZE - 1 bytes of
 * data); a longer SEQPACKET message would be truncated, so stdin is split to this size.
 */
export const CONMON_STDIN_MAX_MESSAGE = 32767;

export interface AttachOutputOptions {
  /** TTY session: output is raw bytes, only conmon's stdout pipe carries data. */
  tty: boolean;
  /** Whether the client asked for stdout / stderr. */
  stdout: boolean;
  stderr: boolean;
}

/** Maps conmon attach packets onto the bytes written to the client. */
export class AttachPacketMapper {
  private readonly options: AttachOutputOptions;

  constructor(options: AttachOutputOptions) {
    this.options = { ...options };
  }

  /**
   * The buffers to write for one packet, in order (one raw buffer for TTY, header + payload
   * otherwise), or null when the packet is dropped: unknown or unrequested pipe, stdin echo, no data.
   * In TTY mode stderr does not exist and `stdout: false` means no output at all, as in Podman.
   */
  map(packet: Buffer): Buffer[] | null {
    if (packet.length <= 1) return null;
    const pipe = packet[0];
    const { tty, stdout, stderr } = this.options;
    if (tty) {
      return pipe === ConmonPipe.Stdout && stdout ? [packet.subarray(1)] : null;
    }
    let stream: StreamId;
    if (pipe === ConmonPipe.Stdout && stdout) stream = StreamId.Stdout;
    else if (pipe === ConmonPipe.Stderr && stderr) stream = StreamId.Stderr;
    else return null;
    const payload = packet.subarray(1);
    return [frameHeader(stream, payload.length), payload];
  }
}

/**
 * Writes mapped packets straight to the client connection, header and payload corked into one
 * writev. `write` returns the destination's backpressure signal (false: wait for 'drain').
 */
export class AttachOutputWriter {
  private readonly mapper: AttachPacketMapper;
  private readonly dst: Writable;

  constructor(dst: Writable, options: AttachOutputOptions) {
    this.dst = dst;
    this.mapper = new AttachPacketMapper(options);
  }

  write(packet: Buffer): boolean {
    const parts = this.mapper.map(packet);
    if (parts === null) return !this.dst.writableNeedDrain;
    if (parts.length === 1) return this.dst.write(parts[0]);
    this.dst.cork();
    let ok = true;
    for (const part of parts) ok = this.dst.write(part);
    this.dst.uncork();
    return ok;
  }
}

/**
 * Transform variant: each written chunk must be exactly one conmon packet (write them one by one;
 * a Writable never merges chunks); the readable side carries the client bytes.
 */
export class AttachOutputTransform extends Transform {
  private readonly mapper: AttachPacketMapper;

  constructor(options: AttachOutputOptions) {
    super();
    this.mapper = new AttachPacketMapper(options);
  }

  override _transform(packet: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const parts = this.mapper.map(packet);
    if (parts !== null) for (const part of parts) this.push(part);
    callback();
  }
}

/** Splits a buffer into views of at most `max` bytes (no copying). */
export function splitChunk(chunk: Buffer, max: number): Buffer[] {
  if (!Number.isInteger(max) || max <= 0) throw new RangeError(`invalid chunk size ${max}`);
  if (chunk.length <= max) return [chunk];
  const parts: Buffer[] = [];
  for (let offset = 0; offset < chunk.length; offset += max) parts.push(chunk.subarray(offset, offset + max));
  return parts;
}

export interface CopyStreamOptions {
  /** End `dst` when `src` ends (a half-close for sockets); default true. */
  end?: boolean;
}

/**
 * Pipes `src` into `dst` with backpressure and resolves with the byte count once `src` has ended
 * (and, with `end`, once `dst` has flushed). Rejects on an error of either stream or when `src` is
 * destroyed before its end. Unlike `stream.pipeline`, it destroys neither stream: on a hijacked
 * connection an error on one direction must not tear down the other.
 */
export function copyStream(src: Readable, dst: Writable, options: CopyStreamOptions = {}): Promise<number> {
  const end = options.end ?? true;
  return new Promise<number>((resolve, reject) => {
    let bytes = 0;
    let settled = false;
    const countBytes = (chunk: Buffer | string): void => {
      bytes += chunk.length;
    };
    const cleanup = (): void => {
      src.removeListener('data', countBytes);
      src.removeListener('end', onSrcEnd);
      src.removeListener('error', onError);
      src.removeListener('close', onSrcClose);
      dst.removeListener('error', onError);
      dst.removeListener('finish', onDstFinish);
      dst.removeListener('close', onDstClose);
      src.unpipe(dst);
    };
    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      cleanup();
      if (err) reject(err);
      else resolve(bytes);
    };
    let srcEnded = false;
    const onSrcEnd = (): void => {
      srcEnded = true;
      if (!end) settle(null);
    };
    const onDstFinish = (): void => {
      if (srcEnded) settle(null);
    };
    const onError = (err: Error): void => settle(err);
    const onSrcClose = (): void => {
      if (!srcEnded) settle(prematureClose('source'));
    };
    const onDstClose = (): void => {
      if (!(srcEnded && dst.writableFinished)) settle(prematureClose('destination'));
    };
    src.on('data', countBytes);
    src.once('end', onSrcEnd);
    src.on('error', onError);
    src.once('close', onSrcClose);
    dst.on('error', onError);
    dst.once('finish', onDstFinish);
    dst.once('close', onDstClose);
    src.pipe(dst, { end });
  });
}

function prematureClose(which: string): Error {
  return Object.assign(new Error(`${which} stream closed before the copy finished`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/** Where stdin goes: resolves (or calls back) once the chunk has been handed to the OS. */
export type ChunkSink = (chunk: Buffer) => Promise<void> | void;

export interface CopyInputOptions {
  /** Detach sequence to watch for (empty or absent: detaching disabled). */
  detachKeys?: Buffer;
  /** Largest message the sink accepts; longer chunks are split (default: conmon's 32767). */
  maxMessage?: number;
  /** Stops the copy early; resolves with reason 'aborted'. */
  signal?: AbortSignal;
}

export interface CopyInputResult {
  /**
   * 'eof': the input ended (held-back partial detach bytes were delivered);
   * 'detached': the detach sequence was typed (bytes before it delivered, bytes after it dropped);
   * 'closed': the input was destroyed without an end (client vanished);
   * 'aborted': `signal` fired.
   */
  reason: 'eof' | 'detached' | 'closed' | 'aborted';
  /** Bytes delivered to the sink. */
  bytes: number;
}

/**
 * Copies client stdin into `sink` with one write in flight at a time: the next chunk is read only
 * after the sink has taken the previous one, so nothing is read ahead beyond the source's own
 * buffer. The source is left paused, never destroyed: the caller decides what to close. Rejects
 * when the source errors or the sink fails.
 */
export function copyInput(src: Readable, sink: ChunkSink, options: CopyInputOptions = {}): Promise<CopyInputResult> {
  const scanner = new DetachScanner(options.detachKeys ?? Buffer.alloc(0));
  const maxMessage = options.maxMessage ?? CONMON_STDIN_MAX_MESSAGE;
  const signal = options.signal;
  return new Promise<CopyInputResult>((resolve, reject) => {
    let bytes = 0;
    let done = false;
    let busy = false;
    let ended = false;
    let closed = false;

    const finish = (reason: CopyInputResult['reason'] | Error): void => {
      if (done) return;
      done = true;
      src.removeListener('readable', pump);
      src.removeListener('end', onEnd);
      src.removeListener('error', finish);
      src.removeListener('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      src.pause();
      if (reason instanceof Error) reject(reason);
      else resolve({ reason, bytes });
    };
    const deliver = async (data: Buffer): Promise<void> => {
      for (const part of splitChunk(data, maxMessage)) {
        if (done) return;
        await sink(part);
        bytes += part.length;
      }
    };
    async function drain(): Promise<void> {
      let chunk: Buffer | string | null;
      while (!done && (chunk = src.read() as Buffer | string | null) !== null) {
        const { forward, detached } = scanner.scan(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
        if (forward.length > 0) await deliver(forward);
        if (detached) return finish('detached');
      }
      if (!done && closed) finish('closed');
      if (!done && ended) {
        const rest = scanner.flush();
        if (rest.length > 0) await deliver(rest);
        finish('eof');
      }
    }
    function pump(): void {
      if (busy || done) return;
      busy = true;
      drain().then(
        () => {
          busy = false;
          // Data or the end may have arrived while the sink was busy.
          if (!done && (ended || closed || src.readableLength > 0)) pump();
        },
        (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
      );
    }
    const onEnd = (): void => {
      ended = true;
      pump();
    };
    const onClose = (): void => {
      if (ended) return;
      closed = true;
      // With a write in flight, let it complete; the loop then stops.
      if (!busy) finish('closed');
    };
    const onAbort = (): void => finish('aborted');

    if (signal?.aborted) {
      resolve({ reason: 'aborted', bytes });
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    src.on('readable', pump);
    src.once('end', onEnd);
    src.on('error', finish);
    src.once('close', onClose);
    if (src.readableEnded) onEnd();
  });
}
