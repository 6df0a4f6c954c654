/**
 * A SOCK_SEQPACKET connection as a Node stream, for conmon's attach socket. The fd comes from our small
 * native addon (native/seqpacket.c, see src/native.ts) and is driven by libuv as a pipe: each
 * 'data' event is exactly one packet (one read() returns one record), `pause()` stops reading so a slow
 * client makes conmon block (backpressure all the way to the container), `end()` is shutdown(SHUT_WR).
 */
import { closeSync } from 'node:fs';
import net from 'node:net';
import { nativeAddon } from '../native.js';

interface PipeHandle {
  open(fd: number): number;
}

// Node's own pipe handle: the documented net.Socket({ fd }) refuses fds whose type libuv does not guess
// (SEQPACKET), while the handle itself drives any stream-like socket.
const { Pipe, constants: PipeConstants } = (process as unknown as { binding(name: string): any }).binding('pipe_wrap') as {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
};

/** Connects to a SEQPACKET socket at `path` (any length). Throws with the OS error (ENOENT, ECONNREFUSED…). */
export function connectSeqpacket(path: string): net.Socket {
  const fd = nativeAddon().connectSeqpacket(path);
  const handle = new Pipe(PipeConstants.SOCKET);
  const status = handle.open(fd);
  if (status !== 0) {
    closeSync(fd);
    throw new Error(`cannot drive the attach socket ${path}: libuv error ${status}`);
  }
  return new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: true } as net.SocketConstructorOpts);
}

/** One run of output: consecutive packets of one conmon pipe, payloads joined (pipe bytes removed). */
export interface PacketRun {
  pipe: number;
  data: Buffer;
}

/** Room for a batch: conmon's packets are 8 KiB, so up to ~30 of them, plus the space a receive must leave. */
const BATCH_BUFFER_SIZE = 320 * 1024;
/** Batches smaller than this are copied out, so a trickle does not pin a whole batch buffer per packet. */
const COPY_BELOW = 16 * 1024;
const batchMeta = new Int32Array(1 + 2 * 64);

/**
 * Every packet already queued on the socket, read in one native call and merged into runs of one pipe. Empty
 * when nothing is queued. Used on each 'data' event (a busy
 * producer then costs one event per batch, not one per packet) and at end-of-stream, where libuv would leave
 * queued packets unread: it takes a hang-up after a short read for "drained", which is true for byte streams
 * but not for SEQPACKET.
 */
export function receiveQueuedPackets(socket: net.Socket): PacketRun[] {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return [];
  const buffer = Buffer.allocUnsafeSlow(BATCH_BUFFER_SIZE);
  const count = nativeAddon().recvBatch(fd, buffer, batchMeta);
  const runs: PacketRun[] = [];
  let start = 1;
  let end = 1;
  for (let i = 0; i < count; i++) {
    const pipe = batchMeta[1 + 2 * i] as number;
    const length = batchMeta[2 + 2 * i] as number;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.pipe === pipe) {
      end += length;
      last.data = buffer.subarray(start, end);
    } else {
      start = end;
      end += length;
      runs.push({ pipe, data: buffer.subarray(start, end) });
    }
  }
  if (end - 1 < COPY_BELOW) for (const run of runs) run.data = Buffer.from(run.data);
  return runs;
}
