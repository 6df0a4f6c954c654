/**
 * A SOCK_SEQPACKET connection as a Node stream, for conmon's attach socket. The fd comes from our small
 * native addon (native/seqpacket.c, see src/native.ts) and is driven by libuv as a pipe: each
 * 'data' event is exactly one packet (one read() returns one record; receiveQueuedPackets takes the rest
 * queued behind it), `pause()` stops reading so a slow client makes conmon block (backpressure all the way to
 * the container), `end()` is shutdown(SHUT_WR).
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
const batchMeta = new Int32Array(1 + 2 * 64);
/** Receives land here, then only what arrived is copied out: most calls find nothing queued (every keystroke
 * echoed is a 'data' event), and a fresh 320 KiB buffer per call would cost an mmap and munmap each time. */
let scratch: Buffer | undefined;

/**
 * Every packet already queued on the socket, read in one native call and merged into runs of one pipe. Empty
 * when nothing is queued. Used on each 'data' event (a busy producer then costs one event per batch, not one
 * per packet) and at end-of-stream, where libuv would leave queued packets unread: it takes a hang-up after a
 * short read for "drained", which is true for byte streams but not for SEQPACKET.
 */
export function receiveQueuedPackets(socket: net.Socket): PacketRun[] {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return [];
  scratch ??= Buffer.allocUnsafeSlow(BATCH_BUFFER_SIZE);
  const count = nativeAddon().recvBatch(fd, scratch, batchMeta);
  if (count === 0) return [];
  // Payloads sit back to back from offset 1 of the scratch buffer.
  let total = 0;
  for (let i = 0; i < count; i++) total += batchMeta[2 + 2 * i] as number;
  const data = Buffer.allocUnsafe(total);
  scratch.copy(data, 0, 1, 1 + total);
  const runs: PacketRun[] = [];
  let runStart = 0;
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const pipe = batchMeta[1 + 2 * i] as number;
    const length = batchMeta[2 + 2 * i] as number;
    const last = runs[runs.length - 1];
    if (last === undefined || last.pipe !== pipe) {
      runStart = offset;
      runs.push({ pipe, data: data.subarray(offset, offset + length) });
    } else {
      last.data = data.subarray(runStart, offset + length);
    }
    offset += length;
  }
  return runs;
}
