/**
 * Attaching a client connection to a container's (or exec session's) standard streams, as Podman 4.3.1's
 * HTTPAttach does over conmon's attach socket.
 *
 * The engine never sees HTTP: a caller hands in a `connect` function that takes over its connection (writes the
 * hijack header) and returns it as a plain Duplex — client stdin on the readable side, container output on the
 * writable side. It is called only once everything that can fail with an ordinary error reply (lookup, state,
 * detach keys, re-initialisation, connecting to conmon) has succeeded; errors after it are written on the
 * connection itself (`Error: <message>\n`, raw or as a stderr frame) before it is closed.
 *
 * Data moves with backpressure both ways and without per-byte JavaScript on the output path: a client that reads
 * slowly pauses the attach socket, which blocks conmon's writes and in turn the container. Detach keys are scanned
 * on stdin only: anywhere in the byte stream for a TTY session (keys typed fast or pasted may share a read), and
 * for a session without a terminal only when each key arrives as a read of its own, as Podman's CopyDetachable
 * matches them — stdin of such a session is often binary data (a file piped through `podman run -i`), in which
 * ctrl-p ctrl-q would otherwise turn up by chance (about 800 times in 50 MiB of random bytes).
 */
import { once } from 'node:events';
import { Transform, type Duplex, type Readable, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import { BadRequestError, InternalError, PodserveError, Sentinel, stateImproper } from '../errors.js';
import type { AttachConnection, AttachPacket } from '../oci/types.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from '../stream/detach.js';
import { FRAME_HEADER_SIZE, StreamId } from '../stream/frames.js';
import { closeHijacked, writeHijackError } from '../stream/hijack.js';
import { copyInput, ConmonPipe } from '../stream/pipe.js';
import { NotModified } from './containers.js';
import type { Engine } from './engine.js';
import { encodeLogRecords, readLogBatches } from './logs.js';
import type { Container } from './types.js';

/** Which of the standard streams a client attaches to. */
export interface StreamSelection {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export const ALL_STREAMS: Readonly<StreamSelection> = { stdin: true, stdout: true, stderr: true };

/** Takes over the client connection (writes the hijack header) and returns it; called at most once. */
export type ConnectClient = () => Duplex;

export interface ContainerAttachOptions {
  /** Streams to attach; undefined = all three (Podman, when the query names none of them). */
  streams?: StreamSelection;
  /**
   * Detach sequence (moby/term syntax); "" disables detaching; undefined = the container's own, else the
   * default ctrl-p,ctrl-q. An invalid spec is a 400 before anything else happens.
   */
  detachKeys?: string;
  /** Replay the container's log before the live stream. */
  logs: boolean;
  /** Stream live output (and stdin); with only `logs`, the connection closes after the replay. */
  stream: boolean;
  /**
   * 8-byte multiplexing headers on output. Default: when the container has no terminal (HTTP attach);
   * Docker's WebSocket attach sends raw output either way.
   */
  multiplexed?: boolean;
}

/** How an attach session ended, for the caller's logs. */
export type AttachEnd =
  /** The process exited and its output was delivered (conmon closed the attach socket). */
  | 'output-ended'
  /** The client typed the detach sequence; the container keeps running. */
  | 'detached'
  /** The client went away; the container keeps running. */
  | 'client-gone'
  /** Only the log was asked for, and it was sent. */
  | 'logs-only'
  /** Something failed after the hijack; it was reported on the connection. */
  | 'failed';

export const DETACHED_MESSAGE = Sentinel.detached;

/** The detach sequence as bytes: explicit spec, else the container's, else the default. Throws 400 if invalid. */
export function resolveDetachKeys(spec: string | undefined, fallback?: string): Buffer {
  return parseDetachKeys(spec ?? fallback ?? DEFAULT_DETACH_KEYS);
}

/** An attach that passed every check and holds its conmon connection, ready to take over a client connection. */
export class PreparedAttach {
  private taken = false;

  constructor(
    readonly container: Container,
    /** Null when only the log was asked for. */
    readonly conn: AttachConnection | null,
    readonly streams: StreamSelection,
    readonly detachKeys: Buffer,
    readonly logs: boolean,
    readonly multiplexed: boolean,
  ) {}

  /** Closes the conmon connection unless a session took it (a client that never came). Idempotent. */
  release(): void {
    if (!this.taken) this.conn?.close();
    this.taken = true;
  }

  /** The session owns the connection from now on. */
  take(): void {
    this.taken = true;
  }
}

/**
 * Everything of Podman's HTTPAttach that can fail with an ordinary error reply, with the compat handler's state
 * rules: streams and detach keys are checked, a configured or exited container is initialised (so attaching
 * before start loses no output), a created or running one is taken as it is, anything else is refused; then the
 * attach socket is connected. Once this resolves, output waits in conmon for `runAttach`.
 */
export async function prepareAttach(engine: Engine, nameOrId: string, opts: ContainerAttachOptions): Promise<PreparedAttach> {
  const streams = opts.streams ?? ALL_STREAMS;
  if (!streams.stdin && !streams.stdout && !streams.stderr) {
    throw new BadRequestError('at least one of stdin, stdout, stderr must be true');
  }
  if (!opts.stream && !opts.logs) throw new BadRequestError('at least one of Logs or Stream must be set');
  let c = engine.containers.lookup(nameOrId);
  const detachKeys = resolveDetachKeys(opts.detachKeys, c.config.detachKeys);
  c = await readyForAttach(engine, c);
  const conn = opts.stream ? await engine.oci.attach(c.config.bundleDir) : null;
  return new PreparedAttach(c, conn, streams, detachKeys, opts.logs, opts.multiplexed ?? !c.config.terminal);
}

/**
 * Streams a prepared attach over `client` until the session ends (log replay first when asked), and closes the
 * connection as Podman does; failures after this point are written on the connection.
 */
export async function runAttach(engine: Engine, prepared: PreparedAttach, client: Duplex): Promise<AttachEnd> {
  prepared.take();
  const { container: c, conn, streams, detachKeys, multiplexed } = prepared;
  const log = engine.logger.child({ part: 'attach', id: c.id });
  engine.events.emit({ type: 'container', status: 'attach', id: c.id, name: c.name, image: c.config.imageName, attributes: { ...c.config.labels } });
  log.debug({ streams, logs: prepared.logs, stream: conn !== null, tty: c.config.terminal }, 'attached');
  try {
    if (prepared.logs) {
      const replayed = await replayLog(c, client, multiplexed, log);
      if (!replayed) {
        conn?.close();
        client.destroy();
        return 'client-gone';
      }
    }
    if (!conn) {
      await closeHijacked(client);
      return 'logs-only';
    }
    const end = await pumpAttach({ conn, client, tty: c.config.terminal, multiplexed, streams, detachKeys, logger: log });
    await finishAttach(conn, client, end, multiplexed, log);
    return end.kind;
  } catch (err) {
    conn?.close();
    log.warn({ err }, 'attach failed after the hijack');
    await writeHijackError(client, errorText(err), multiplexed);
    return 'failed';
  }
}

/** prepareAttach, then `connect` (the hijack), then runAttach. Resolves when the session is over. */
export async function attachContainer(
  engine: Engine,
  nameOrId: string,
  opts: ContainerAttachOptions,
  connect: ConnectClient,
): Promise<AttachEnd> {
  const prepared = await prepareAttach(engine, nameOrId, opts);
  let client: Duplex;
  try {
    client = connect();
  } catch (err) {
    prepared.release();
    throw err;
  }
  return runAttach(engine, prepared, client);
}

/** Podman: configured/exited/stopped → Init (409 if that fails); created/running as they are; else 500. */
async function readyForAttach(engine: Engine, c: Container): Promise<Container> {
  const { status } = c.state;
  if (status === 'configured' || status === 'exited' || status === 'stopped') {
    try {
      return await engine.containers.init(c.id);
    } catch (err) {
      if (err instanceof PodserveError && err.status === 404) throw err;
      // Initialised (or started) by someone else meanwhile: attach to it as it is now.
      const now = engine.containers.lookup(c.id);
      if (err instanceof NotModified || now.state.status === 'created' || now.state.status === 'running') return now;
      const message = `preparing container ${c.id} for attach: ${errorText(err)}`;
      throw new PodserveError(409, err instanceof PodserveError ? err.causeText : message, message);
    }
  }
  if (status !== 'created' && status !== 'running') {
    throw stateImproper(`can only attach to created or running containers - currently in state ${status}`);
  }
  return c;
}

/**
 * Podman's AttachResize: the terminal size goes to conmon's ctl FIFO, which works while the container is still
 * "created" (podman-remote resizes before it starts the container).
 */
export async function resizeContainer(engine: Engine, nameOrId: string, height: number, width: number): Promise<void> {
  const c = engine.containers.lookup(nameOrId);
  if (c.state.status !== 'created' && c.state.status !== 'running') {
    throw new PodserveError(409, Sentinel.stateImproper, `can only resize created or running containers: ${Sentinel.stateImproper}`);
  }
  try {
    await engine.oci.attachResize(c.config.bundleDir, height, width);
  } catch (err) {
    throw new InternalError(`cannot resize container: ${errorText(err)}`);
  }
}

/** Writes the whole k8s-file log (as Podman's attach logs=true: all lines, no timestamps). False if the client left. */
async function replayLog(c: Container, client: Duplex, multiplexed: boolean, log: Logger): Promise<boolean> {
  if (c.config.logDriver !== 'k8s-file') return true;
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  client.once('close', onClose);
  try {
    const batches = readLogBatches(c.config.logPath, {
      follow: false,
      stdout: true,
      stderr: true,
      isRunning: () => false,
      waitExit: async () => undefined,
      signal: abort.signal,
      logger: log,
    });
    for await (const batch of batches) {
      if (batch.length === 0) continue;
      if (!client.write(encodeLogRecords(batch, { multiplexed, timestamps: false }))) {
        await once(client, 'drain', { signal: abort.signal });
      }
    }
    return !abort.signal.aborted;
  } catch (err) {
    if (abort.signal.aborted) return false;
    throw err;
  } finally {
    client.removeListener('close', onClose);
  }
}

export interface PumpOptions {
  conn: AttachConnection;
  client: Duplex;
  /** The process has a terminal: only conmon's stdout pipe carries data. */
  tty: boolean;
  /** 8-byte frame headers on output (else raw bytes). */
  multiplexed: boolean;
  streams: StreamSelection;
  /** Empty: detaching disabled. */
  detachKeys: Buffer;
  logger: Logger;
}

/** Output bytes that may wait in user space for a client before the attach socket is paused. */
const OUTPUT_WINDOW = 256 * 1024;
/** Stdin bytes that may be on their way to conmon before the client is read again. */
const STDIN_WINDOW = 64 * 1024;
/** How long a detach waits for stdin typed before the sequence to be taken by conmon. */
const DETACH_FLUSH_MS = 1000;

export type PumpEnd =
  | { kind: 'output-ended' }
  | { kind: 'detached' }
  | { kind: 'client-gone' }
  | { kind: 'failed'; error: Error };

/**
 * Moves output from conmon to the client and stdin from the client to conmon until one side is done. Output:
 * every packet is written as it comes (a frame header and the payload in one writev when multiplexed, the payload
 * alone otherwise); once OUTPUT_WINDOW bytes wait for the client, the packet stream is paused until they drained.
 * Input: the client is read on while at most STDIN_WINDOW bytes are on their way to conmon; client EOF half-closes
 * the attach socket after them (conmon then closes a non-TTY container's stdin) while output goes on. Resolves
 * once; closes nothing itself.
 */
export function pumpAttach(opts: PumpOptions): Promise<PumpEnd> {
  const { conn, client, tty, multiplexed, streams, detachKeys, logger } = opts;
  const { packets } = conn;
  return new Promise<PumpEnd>((resolve) => {
    let settled = false;
    const stopInput = new AbortController();
    let waitingForDrain = false;
    let gate: SingleReadDetachGate | undefined;

    const writeOut = (payload: Buffer, stream: StreamId): boolean => {
      if (!multiplexed) return client.write(payload);
      client.cork();
      client.write(pooledFrameHeader(stream, payload.length));
      const ok = client.write(payload);
      client.uncork();
      return ok;
    };
    const onPacket = (packet: AttachPacket): void => {
      if (packet.data.length === 0) return;
      let ok: boolean;
      if (packet.pipe === ConmonPipe.Stdout) {
        if (!streams.stdout) return;
        ok = writeOut(packet.data, StreamId.Stdout);
      } else if (packet.pipe === ConmonPipe.Stderr && !tty) {
        if (!streams.stderr) return;
        ok = writeOut(packet.data, StreamId.Stderr);
      } else {
        return;
      }
      // The socket's own high-water mark (16 KiB) is two packets: pausing there would make every packet a
      // round trip through the event loop. Up to OUTPUT_WINDOW bytes may wait for the client instead.
      if (!ok && client.writableLength >= OUTPUT_WINDOW && !waitingForDrain) {
        waitingForDrain = true;
        packets.pause();
        client.once('drain', onDrain);
      }
    };
    const onDrain = (): void => {
      waitingForDrain = false;
      if (!settled) packets.resume();
    };
    const onOutputEnd = (): void => finish({ kind: 'output-ended' });
    const onOutputError = (error: Error): void => finish({ kind: 'failed', error });
    const onClientClose = (): void => finish({ kind: 'client-gone' });
    const discard = (): void => undefined;

    const finish = (end: PumpEnd): void => {
      if (settled) return;
      settled = true;
      packets.removeListener('data', onPacket);
      packets.removeListener('end', onOutputEnd);
      packets.removeListener('error', onOutputError);
      client.removeListener('drain', onDrain);
      client.removeListener('close', onClientClose);
      client.removeListener('data', discard);
      if (gate) client.unpipe(gate);
      stopInput.abort();
      resolve(end);
    };

    packets.on('data', onPacket);
    packets.once('end', onOutputEnd);
    packets.once('error', onOutputError);
    client.once('close', onClientClose);
    if (client.destroyed) return finish({ kind: 'client-gone' });

    if (!streams.stdin) {
      // Nothing goes to the container; reading still notices a client that goes away.
      client.on('data', discard);
      return;
    }
    let input: Readable = client;
    if (!tty && detachKeys.length > 0) {
      gate = new SingleReadDetachGate(detachKeys);
      client.pipe(gate);
      input = gate;
    }
    // Up to STDIN_WINDOW bytes may be on their way to conmon while the next chunk is read (the connection keeps
    // them in order, one message at a time); the copy waits once that much is in flight.
    let inFlight = 0;
    let lastWrite: Promise<void> = Promise.resolve();
    const sink = (chunk: Buffer): Promise<void> | undefined => {
      inFlight += chunk.length;
      const written = conn.write(chunk).finally(() => {
        inFlight -= chunk.length;
      });
      lastWrite = written.catch(() => undefined);
      return inFlight >= STDIN_WINDOW ? written : undefined;
    };
    const detach = (): void => {
      // What was typed before the sequence still reaches the container, unless it does not read its stdin.
      const gaveUp = new Promise<void>((resolve) => setTimeout(resolve, DETACH_FLUSH_MS).unref());
      void Promise.race([lastWrite, gaveUp]).then(() => finish({ kind: 'detached' }));
    };
    copyInput(input, sink, { detachKeys: tty ? detachKeys : undefined, signal: stopInput.signal }).then(
      (result) => {
        if (result.reason === 'eof' && gate?.detached) {
          detach();
        } else if (result.reason === 'eof') {
          logger.debug({ bytes: result.bytes }, 'client stdin ended: half-closing the attach socket');
          conn.closeWrite().catch((err: unknown) => logger.debug({ err }, 'closeWrite failed'));
        } else if (result.reason === 'detached') {
          detach();
        } else if (result.reason === 'closed') {
          finish({ kind: 'client-gone' });
        }
      },
      (err: unknown) => {
        // conmon went away (the process exited): the output side reports the end.
        logger.debug({ err }, 'stdin copy stopped');
      },
    );
  });
}

/**
 * Podman's detach rule for sessions without a terminal (containers/common CopyDetachable): the sequence counts
 * only when each of its keys is a read of exactly one byte; any other read, and the held keys before it, pass on
 * unchanged. Ends its readable side on a match (`detached` turns true). Chunks must be the client's reads, as a
 * pipe from the socket delivers them.
 */
export class SingleReadDetachGate extends Transform {
  private readonly keys: Buffer;
  private held: Buffer[] = [];
  private isDetached = false;

  constructor(keys: Buffer) {
    super();
    this.keys = Buffer.from(keys);
  }

  get detached(): boolean {
    return this.isDetached;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.isDetached) return callback();
    const matched = this.held.length;
    if (chunk.length === 1 && chunk[0] === this.keys[matched]) {
      if (matched + 1 === this.keys.length) {
        this.isDetached = true;
        this.held = [];
        this.push(null);
      } else {
        this.held.push(chunk);
      }
      return callback();
    }
    if (matched > 0) {
      for (const key of this.held) this.push(key);
      this.held = [];
    }
    this.push(chunk);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.isDetached) for (const key of this.held) this.push(key);
    this.held = [];
    callback();
  }
}

/** frameHeader's bytes, in a slice of Node's buffer pool: one per output packet, so no allocation of its own. */
function pooledFrameHeader(stream: StreamId, length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header[0] = stream;
  header[1] = 0;
  header[2] = 0;
  header[3] = 0;
  header.writeUInt32BE(length, 4);
  return header;
}

/** Closes both ends as Podman does for each way a session can end. */
export async function finishAttach(conn: AttachConnection, client: Duplex, end: PumpEnd, multiplexed: boolean, log: Logger): Promise<void> {
  conn.close();
  switch (end.kind) {
    case 'output-ended':
      await closeHijacked(client);
      return;
    case 'detached':
      log.debug('client detached');
      await writeHijackError(client, DETACHED_MESSAGE, multiplexed);
      return;
    case 'client-gone':
      client.destroy();
      return;
    case 'failed':
      log.warn({ err: end.error }, 'attach stream failed');
      await writeHijackError(client, end.error.message, multiplexed);
      return;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
