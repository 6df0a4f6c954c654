/**
 * Client side of conmon's attach socket (SOCK_SEQPACKET, `<bundle>/attach`). Two transports, one contract:
 *
 * - 'native' (preferred): the fd comes from our small addon (./seqpacket.ts) and Node drives it as a stream.
 *   Each 'data' event is one packet, and every other packet already queued is taken with it in one native
 *   call (receiveQueuedPackets), runs of one pipe joined; pausing stops reading so conmon blocks on a slow
 *   consumer (backpressure down to the container), end() is shutdown(SHUT_WR). Packets still queued when
 *   conmon hangs up are taken the same way, since libuv takes a hang-up after a short read for end-of-stream.
 * - 'node-unix-socket' (fallback when the addon is not built): that library reads every queued packet
 *   whenever the socket is readable and cannot stop, so output waits in memory up to a byte cap; and closing
 *   one of its sockets from inside its own callbacks aborts the process (the native read loop hits EBADF with
 *   its emitter released), so every socket operation on it runs from setImmediate.
 *
 * Either way stdin is cut into messages of at most 32767 bytes, the most conmon reads per message (a longer
 * SEQPACKET message would be truncated by its recvfrom), and written one at a time.
 */
import { openSync, closeSync, constants as fsConstants } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type unixSocket from 'node-unix-socket';
import type { Logger } from 'pino';
import { InternalError } from '../errors.js';
import { connectSeqpacket, receiveQueuedPackets } from './seqpacket.js';
import { requireOnDemand } from '../paths.js';
import type { AttachConnection, AttachPacket } from './types.js';

type SeqpacketSocket = InstanceType<typeof unixSocket.SeqpacketSocket>;

/** conmon reads client messages into a 32768-byte buffer minus one (conn_sock.c `CONN_SOCK_BUF_SIZE - 1`). */
export const MAX_STDIN_MESSAGE = 32767;
/** conmon sends at most 1 + 8192 bytes per packet; the receive buffer is generously larger so nothing is truncated. */
const RECEIVE_BUFFER_SIZE = 64 * 1024;
/** Default cap on output queued for a consumer that does not keep up. */
export const DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024;
/** Object-mode high-water mark of `packets` (packets, not bytes). */
const PACKET_HIGH_WATER_MARK = 16;

export type AttachTransport = 'native' | 'node-unix-socket';

export interface AttachOptions {
  /** node-unix-socket transport only: destroy `packets` with an error once this many output bytes wait. */
  maxQueuedBytes?: number;
  logger?: Logger;
  /** Force a transport (tests); default: native, or node-unix-socket when the addon cannot be loaded. */
  transport?: AttachTransport;
}

let nativeUnavailable: string | undefined;

/** Connect to conmon's attach socket at any path length. Failures are InternalErrors naming the path. */
export async function connectAttachSocket(socketPath: string, opts: AttachOptions = {}): Promise<AttachConnection> {
  const transport = opts.transport ?? (nativeUnavailable === undefined ? 'native' : 'node-unix-socket');
  if (transport === 'native') {
    let socket: Socket;
    try {
      socket = connectSeqpacket(socketPath);
    } catch (err) {
      if (opts.transport === undefined && isAddonLoadError(err)) {
        nativeUnavailable = errorText(err);
        opts.logger?.warn({ err }, 'native SEQPACKET addon unavailable; attach falls back to node-unix-socket (no backpressure)');
        return connectAttachSocket(socketPath, { ...opts, transport: 'node-unix-socket' });
      }
      throw new InternalError(`failed to connect to container's attach socket: ${socketPath}: ${errorText(err)}`);
    }
    return new StreamAttachConnection(socket, opts);
  }
  return connectWithNodeUnixSocket(socketPath, opts);
}

function isAddonLoadError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'MODULE_NOT_FOUND' || code === 'ERR_DLOPEN_FAILED';
}

/**
 * The node-unix-socket transport. The parent directory is opened and the socket is addressed as
 * /proc/self/fd/<dirfd>/<name>, which always fits in sun_path (108 bytes).
 */
async function connectWithNodeUnixSocket(socketPath: string, opts: AttachOptions): Promise<AttachConnection> {
  let dirFd: number | undefined;
  try {
    dirFd = openSync(dirname(socketPath), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    const shortPath = `/proc/self/fd/${dirFd}/${basename(socketPath)}`;
    // Loaded only here: the fallback is rarely needed, and loading the library costs start-up time.
    const { SeqpacketSocket } = requireOnDemand('node-unix-socket') as typeof unixSocket;
    for (let attempt = 0; ; attempt++) {
      const socket = new SeqpacketSocket();
      socket.setInternalReadBufferSize(RECEIVE_BUFFER_SIZE);
      // Listeners go on before connecting so that no packet can arrive unobserved.
      const conn = new SeqpacketAttachConnection(socket, opts);
      try {
        await connectOnce(socket, shortPath);
        return conn;
      } catch (err) {
        conn.close();
        // A listening AF_UNIX socket with a full backlog answers a non-blocking connect with EAGAIN.
        if (attempt < CONNECT_RETRIES && /EAGAIN|temporarily unavailable/i.test(errorText(err))) {
          await delay(CONNECT_RETRY_DELAY_MS);
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    throw new InternalError(`failed to connect to container's attach socket: ${socketPath}: ${errorText(err)}`);
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }
}

const CONNECT_RETRIES = 50;
const CONNECT_RETRY_DELAY_MS = 10;

/** connect(2) runs synchronously inside connect() (the /proc path is resolved there); the callback fires once writable. */
function connectOnce(socket: SeqpacketSocket, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    try {
      socket.connect(path, () => {
        socket.off('error', onError);
        resolve();
      });
    } catch (err) {
      socket.off('error', onError);
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class SeqpacketAttachConnection implements AttachConnection {
  readonly packets: Readable;
  private readonly socket: SeqpacketSocket;
  private readonly maxQueuedBytes: number;
  private readonly logger?: Logger;
  /** Packets received but not yet handed to `packets` because its buffer is full. */
  private readonly queue: AttachPacket[] = [];
  private queuedBytes = 0;
  private consumerWantsMore = false;
  private ended = false;
  private eofPushed = false;
  private writeShutdown = false;
  private isClosed = false;
  private socketReleased = false;
  private socketDestroyed = false;
  /** Operations waiting for a library callback that never comes once the socket is destroyed. */
  private readonly pendingOps = new Set<{ fail: () => void }>();

  constructor(socket: SeqpacketSocket, opts: AttachOptions) {
    this.socket = socket;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.logger = opts.logger;
    this.packets = new Readable({
      objectMode: true,
      highWaterMark: PACKET_HIGH_WATER_MARK,
      read: () => {
        this.consumerWantsMore = true;
        this.pump();
      },
      destroy: (err, callback) => {
        this.close();
        callback(err);
      },
    });
    // A failing connection must never crash the daemon just because nobody consumes `packets` yet;
    // consumers that listen (or iterate) still receive the error.
    this.packets.on('error', (err) => this.logger?.debug({ err }, 'attach connection failed'));
    socket.on('data', (buf: Buffer) => this.onPacket(buf));
    socket.on('end', () => {
      // conmon closed the connection: the process exited and its output is drained.
      this.ended = true;
      this.pump();
      this.releaseSocket();
    });
    socket.on('error', (err: Error) => {
      // node-unix-socket destroys the socket itself after emitting an error.
      this.socketDestroyed = true;
      this.socketReleased = true;
      this.isClosed = true;
      if (!this.packets.destroyed) this.packets.destroy(err);
    });
    socket.on('close', () => {
      this.socketDestroyed = true;
      this.socketReleased = true;
      this.isClosed = true;
      this.failPendingOps();
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  private onPacket(buf: Buffer): void {
    if (buf.length === 0 || this.isClosed) return;
    this.queue.push({ pipe: buf[0] as number, data: buf.subarray(1) });
    this.queuedBytes += buf.length;
    if (this.queuedBytes > this.maxQueuedBytes) {
      this.logger?.warn({ queuedBytes: this.queuedBytes }, 'attach consumer too slow, dropping the attach connection');
      this.packets.destroy(new Error(`attach output backlog exceeded ${this.maxQueuedBytes} bytes`));
      return;
    }
    this.pump();
  }

  private pump(): void {
    while (this.consumerWantsMore && this.queue.length > 0) {
      const packet = this.queue.shift() as AttachPacket;
      this.queuedBytes -= packet.data.length + 1;
      this.consumerWantsMore = this.packets.push(packet);
    }
    if (this.ended && !this.eofPushed && this.queue.length === 0 && !this.packets.destroyed) {
      this.eofPushed = true;
      this.packets.push(null);
    }
  }

  write(data: Uint8Array): Promise<void> {
    if (this.isClosed || this.writeShutdown) {
      return Promise.reject(new Error('attach connection is closed for writing'));
    }
    if (data.byteLength === 0) return Promise.resolve();
    // Copied now: the caller may reuse its buffer before the deferred write runs.
    const buf = Buffer.from(data);
    return new Promise<void>((resolve, reject) => {
      const settle = this.track(resolve, () => reject(new Error('attach connection closed')));
      this.outsideCallbacks(() => {
        // Writes issued before close() still go out: the deferred destroy runs after them.
        if (this.socketDestroyed) return settle(false);
        for (let off = 0; off < buf.length; off += MAX_STDIN_MESSAGE) {
          const len = Math.min(MAX_STDIN_MESSAGE, buf.length - off);
          const last = off + len >= buf.length;
          // One write() is one SEQPACKET message; the callback fires once the kernel took it.
          this.socket.write(buf, off, len, last ? () => settle(true) : undefined);
        }
      }, () => settle(false));
    });
  }

  closeWrite(): Promise<void> {
    if (this.isClosed || this.writeShutdown) return Promise.resolve();
    this.writeShutdown = true;
    return new Promise<void>((resolve) => {
      // A connection that goes away meanwhile is as closed for writing as it gets: resolve either way.
      const settle = this.track(resolve, resolve);
      // Queued behind earlier writes (setImmediate runs in order), then shutdown(SHUT_WR) once flushed.
      this.outsideCallbacks(() => {
        if (this.socketDestroyed) return settle(false);
        this.socket.end(() => settle(true));
      }, () => settle(false));
    });
  }

  /** Register an operation; the returned function settles it once (true = done, false = failed). */
  private track(onDone: () => void, onFail: () => void): (ok: boolean) => void {
    const op = { fail: onFail };
    this.pendingOps.add(op);
    return (ok) => {
      if (!this.pendingOps.delete(op)) return;
      if (ok) onDone();
      else onFail();
    };
  }

  /**
   * Run a socket operation from a fresh macrotask, never from inside one of the library's callbacks, where
   * re-entering the native object is unsafe (see the file comment).
   */
  private outsideCallbacks(fn: () => void, onError: (err: Error) => void): void {
    setImmediate(() => {
      try {
        fn();
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Fail what the library will never call back for once the socket is gone. */
  private failPendingOps(): void {
    const ops = [...this.pendingOps];
    this.pendingOps.clear();
    for (const op of ops) op.fail();
  }

  /** Close the socket outside of the library's callbacks (see the file comment). */
  private releaseSocket(): void {
    this.isClosed = true;
    if (this.socketReleased) return;
    this.socketReleased = true;
    setImmediate(() => {
      this.socketDestroyed = true;
      this.socket.destroy();
      this.failPendingOps();
    });
  }

  close(): void {
    this.releaseSocket();
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (!this.packets.destroyed && !this.eofPushed) this.packets.destroy();
  }
}

/**
 * Attach connection over a libuv-driven SEQPACKET stream (native transport). Backpressure is the stream's:
 * when `packets` is full the socket is paused, libuv stops reading and conmon's blocking writes wait.
 */
class StreamAttachConnection implements AttachConnection {
  readonly packets: Readable;
  private readonly socket: Socket;
  private readonly logger?: Logger;
  /** Serialises writes: one SEQPACKET message in flight, so Node never merges chunks into one writev. */
  private writeChain: Promise<void> = Promise.resolve();
  private writeShutdown = false;
  private isClosed = false;
  private eofPushed = false;

  constructor(socket: Socket, opts: AttachOptions) {
    this.socket = socket;
    this.logger = opts.logger;
    this.packets = new Readable({
      objectMode: true,
      highWaterMark: PACKET_HIGH_WATER_MARK,
      read: () => {
        if (!this.isClosed) socket.resume();
      },
      destroy: (err, callback) => {
        this.close();
        callback(err);
      },
    });
    // See SeqpacketAttachConnection: an unconsumed failing connection must not crash the daemon.
    this.packets.on('error', (err) => this.logger?.debug({ err }, 'attach connection failed'));
    socket.on('data', (buf: Buffer) => {
      // libuv reads one packet per event; whatever else conmon has queued is taken with it in one call.
      if (!this.deliver(buf) || !this.deliverQueued()) socket.pause();
    });
    socket.on('end', () => {
      // conmon hung up (the process exited, output drained). What libuv did not read is still queued.
      this.deliverQueued();
      this.eofPushed = true;
      if (!this.packets.destroyed) this.packets.push(null);
      this.isClosed = true;
      socket.destroy();
    });
    socket.on('error', (err: Error) => {
      this.isClosed = true;
      if (!this.packets.destroyed && !this.eofPushed) this.packets.destroy(err);
    });
    socket.on('close', () => {
      this.isClosed = true;
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Hand one packet to the consumer; false when `packets` is full. */
  private deliver(buf: Buffer): boolean {
    if (buf.length === 0 || this.packets.destroyed || this.eofPushed) return true;
    return this.packets.push({ pipe: buf[0] as number, data: buf.subarray(1) });
  }

  /** Hand the packets queued in the kernel to the consumer, merged per pipe; false when `packets` is full. */
  private deliverQueued(): boolean {
    // Packets the socket read before a pause wait in its own buffer and come first.
    if (this.packets.destroyed || this.eofPushed || this.socket.readableLength > 0) return true;
    let more = true;
    for (const run of receiveQueuedPackets(this.socket)) more = this.packets.push(run);
    return more;
  }

  write(data: Uint8Array): Promise<void> {
    if (this.isClosed || this.writeShutdown) {
      return Promise.reject(new Error('attach connection is closed for writing'));
    }
    if (data.byteLength === 0) return Promise.resolve();
    // A view, not a copy (see AttachConnection.write): copying every stdin chunk doubled the garbage, and the
    // collections it caused were most of the daemon's CPU time on a large stdin.
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const run = async (): Promise<void> => {
      for (let off = 0; off < buf.length; off += MAX_STDIN_MESSAGE) {
        await this.writeMessage(buf.subarray(off, Math.min(buf.length, off + MAX_STDIN_MESSAGE)));
      }
    };
    const result = this.writeChain.then(run);
    // The chain itself must survive a failed write so later calls report their own outcome.
    this.writeChain = result.catch(() => undefined);
    return result;
  }

  private writeMessage(chunk: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.socket.destroyed) return reject(new Error('attach connection closed'));
      this.socket.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
  }

  closeWrite(): Promise<void> {
    if (this.isClosed || this.writeShutdown) return Promise.resolve();
    this.writeShutdown = true;
    const result = this.writeChain.then(
      () =>
        new Promise<void>((resolve) => {
          if (this.socket.destroyed) return resolve();
          // end() flushes, then shutdown(SHUT_WR); 'close' covers a connection that fails meanwhile.
          this.socket.once('close', () => resolve());
          this.socket.end(() => resolve());
        }),
    );
    this.writeChain = result;
    return result;
  }

  close(): void {
    this.isClosed = true;
    this.socket.destroy();
    if (!this.packets.destroyed && !this.eofPushed) this.packets.destroy();
  }
}
