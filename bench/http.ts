/**
 * The benchmark's clients: JSON requests over a keep-alive agent on a unix socket, and raw hijacked connections
 * (attach, exec start) read with a small multiplexed-frame counter.
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface Reply {
  status: number;
  body: Buffer;
}

/** An HTTP client for one daemon: every request goes over one keep-alive agent (up to `maxSockets` connections). */
export class ApiClient {
  readonly agent: Agent;

  constructor(
    readonly socketPath: string,
    maxSockets = 16,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method,
          path,
          headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A request that must answer `expected`; resolves with the parsed JSON body (or undefined when empty). */
  async call<T = unknown>(method: string, path: string, body?: unknown, expected: number[] = [200, 201, 204]): Promise<T> {
    const reply = await this.request(method, path, body);
    if (!expected.includes(reply.status)) {
      throw new Error(`${method} ${path} → ${reply.status}: ${reply.body.toString('utf8').slice(0, 500)}`);
    }
    const text = reply.body.toString('utf8').trim();
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface Hijacked {
  status: number;
  head: string;
  socket: Socket;
  /** Stream bytes that arrived together with the response head. */
  leftover: Buffer;
}

/**
 * Sends a request asking for the connection to be upgraded (`Connection: Upgrade`, `Upgrade: tcp`, as
 * podman-remote does) and resolves once the response head arrived, with the bare socket.
 */
export function hijack(socketPath: string, method: string, path: string, body?: unknown): Promise<Hijacked> {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('error', reject);
      socket.pause();
      const head = buffered.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, socket, leftover: buffered.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.once('connect', () => {
      // No Content-Type without a body, as podman-remote sends its attach requests.
      const type = payload.length > 0 ? 'Content-Type: application/json\r\n' : '';
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: d\r\n${type}Content-Length: ${payload.length}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
      if (payload.length > 0) socket.write(payload);
    });
  });
}

/**
 * Counts the payload of Docker's multiplexed stream (8-byte header: stream type, 3 zero bytes, big-endian
 * length), per stream type, without copying the data. With `keepTail`, the last few KiB of stdout are kept as
 * text (for checking small outputs); off by default, since it would cost more than the counting on big streams
 * of small frames (logs).
 */
export class FrameCounter {
  readonly bytes = [0, 0, 0, 0];
  frames = 0;
  private readonly header = Buffer.alloc(8);
  private headerFill = 0;
  private remaining = 0;
  private current = 0;
  private tail = '';

  constructor(private readonly keepTail = false) {}

  push(chunk: Buffer): void {
    const length = chunk.length;
    let offset = 0;
    while (offset < length) {
      if (this.remaining === 0) {
        let type: number;
        let size: number;
        if (this.headerFill === 0 && length - offset >= 8) {
          type = chunk[offset]!;
          size = chunk.readUInt32BE(offset + 4);
          offset += 8;
        } else {
          const take = Math.min(8 - this.headerFill, length - offset);
          chunk.copy(this.header, this.headerFill, offset, offset + take);
          this.headerFill += take;
          offset += take;
          if (this.headerFill < 8) return;
          this.headerFill = 0;
          type = this.header[0]!;
          size = this.header.readUInt32BE(4);
        }
        if (type > 3) throw new Error(`not a multiplexed stream (stream type ${type})`);
        this.current = type;
        this.remaining = size;
        this.frames++;
        continue;
      }
      const take = Math.min(this.remaining, length - offset);
      this.bytes[this.current]! += take;
      if (this.keepTail && this.current === 1) this.tail = (this.tail + chunk.toString('latin1', offset, offset + take)).slice(-4096);
      this.remaining -= take;
      offset += take;
    }
  }

  /** The last few KiB of stdout (with `keepTail` only). */
  get stdoutTail(): string {
    return this.tail;
  }

  get complete(): boolean {
    return this.remaining === 0 && this.headerFill === 0;
  }
}

/** Reads a hijacked (or any) socket to its end, feeding `onChunk`; resolves when the peer closed it. */
export function readToEnd(socket: Socket, leftover: Buffer, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (leftover.length > 0) onChunk(leftover);
    socket.on('data', onChunk);
    socket.once('end', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
    socket.resume();
  });
}

/** Writes `total` bytes of `chunk` repeated to a socket, honouring backpressure. */
export async function writeRepeated(socket: Socket, chunk: Buffer, total: number): Promise<void> {
  let left = total;
  while (left > 0) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!socket.write(piece)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          socket.off('close', onClose);
          resolve();
        };
        const onClose = (): void => {
          socket.off('drain', onDrain);
          reject(new Error(`connection closed with ${left + piece.length} bytes of stdin unwritten`));
        };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
    }
  }
}

/**
 * A lean keep-alive HTTP/1.1 client on one raw connection, for the API load: the request bytes are built once, and
 * responses are framed by Content-Length or chunked encoding without building header objects. Node's own http
 * client costs more CPU per request than either daemon's answer to _ping, so with it the load loop would measure
 * itself (on two cores it topped out near 7,000 req/s). One request at a time per connection (no pipelining).
 */
export class RawConnection {
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (status: number) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.parse();
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      this.waiting?.reject(err);
      this.waiting = undefined;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  static open(socketPath: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(socketPath);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends `request` (complete request bytes) and resolves with the response status once its body is in. */
  send(request: Buffer): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(request);
    });
  }

  private parse(): void {
    if (!this.waiting) return;
    const buf = this.buffered;
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = buf.toString('latin1', 0, headEnd);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let end: number;
    if (length) {
      end = headEnd + 4 + Number(length[1]);
      if (buf.length < end) return;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      let at = headEnd + 4;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at);
        if (lineEnd < 0) return;
        const size = Number.parseInt(buf.toString('latin1', at, lineEnd), 16);
        at = lineEnd + 2 + size + 2;
        if (at > buf.length) return;
        if (size === 0) break;
      }
      end = at;
    } else {
      end = headEnd + 4;
    }
    this.buffered = buf.subarray(end);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting.resolve(status);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The bytes of a bodyless GET, as a keep-alive client sends it. */
export function getRequest(path: string): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: d\r\nUser-Agent: podserve-bench\r\nAccept: */*\r\n\r\n`, 'latin1');
}
