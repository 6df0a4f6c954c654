/**
 * A SOCK_SEQPACKET connection as a Node stream, for conmon's attach socket. The fd comes from our small
 * native addon (native/seqpacket.c, built by scripts/setup.sh) and is driven by libuv as a pipe: each
 * 'data' event is exactly one packet (one read() returns one record), `pause()` stops reading so a slow
 * client makes conmon block (backpressure all the way to the container), `end()` is shutdown(SHUT_WR).
 */
import { closeSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';

const require = createRequire(import.meta.url);

interface Native {
  connectSeqpacket(path: string): number;
}

interface PipeHandle {
  open(fd: number): number;
}

let native: Native | undefined;
function loadNative(): Native {
  native ??= require('../../../build/Release/seqpacket.node') as Native;
  return native;
}

// Node's own pipe handle: the documented net.Socket({ fd }) refuses fds whose type libuv does not guess
// (SEQPACKET), while the handle itself drives any stream-like socket.
const { Pipe, constants: PipeConstants } = (process as unknown as { binding(name: string): any }).binding('pipe_wrap') as {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
};

/** Connects to a SEQPACKET socket at `path` (any length). Throws with the OS error (ENOENT, ECONNREFUSED…). */
export function connectSeqpacket(path: string): net.Socket {
  const fd = loadNative().connectSeqpacket(path);
  const handle = new Pipe(PipeConstants.SOCKET);
  const status = handle.open(fd);
  if (status !== 0) {
    closeSync(fd);
    throw new Error(`cannot drive the attach socket ${path}: libuv error ${status}`);
  }
  return new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: true } as net.SocketConstructorOpts);
}

const EAGAIN_CODES = new Set(['EAGAIN', 'EWOULDBLOCK']);

/**
 * Packets still queued in the kernel when libuv reported end-of-stream. libuv treats a hang-up after a short
 * read as "drained", which is true for byte streams but not for SEQPACKET, where each read takes one packet:
 * conmon's last packets before it closes would be lost. Read them synchronously (the fd is non-blocking).
 */
export function drainQueuedPackets(socket: net.Socket, bufferSize = 65536): Buffer[] {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return [];
  const packets: Buffer[] = [];
  const buf = Buffer.allocUnsafe(bufferSize);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if (EAGAIN_CODES.has((err as NodeJS.ErrnoException).code ?? '')) break;
      break;
    }
    if (n <= 0) break;
    packets.push(Buffer.from(buf.subarray(0, n)));
  }
  return packets;
}
