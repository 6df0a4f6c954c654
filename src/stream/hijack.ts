/**
 * Taking over an HTTP connection for attach and exec start, the way Podman 4.3.1 does it
 * (libpod/util.go `writeHijackHeader`, `hijackWriteError`): after the hijack the connection is a
 * bare byte stream in both directions, with stdin from the client and container output to it.
 *
 * Node's HTTP server keeps parsing a connection after a request, so a route cannot simply write to
 * `req.socket`: later client bytes would be parsed as requests and a client half-close would end
 * our side. Two ways in, both ending in `hijack(req)`:
 *
 * 1. Through `installUpgradeDispatcher` (recommended). Node hands a request over as an 'upgrade'
 *    event, detached from its parser, with the bytes that followed the headers; the dispatcher
 *    reads the request body from those bytes (Content-Length, or a complete chunked body), puts the
 *    remainder back into the socket as stdin, and re-emits the request as an ordinary 'request'
 *    with a complete body, so a Fastify route parses it and runs as usual. Requests carrying
 *    `Connection: Upgrade` always go this way; requests without those headers (podman-remote exec,
 *    nomad, podman-py) go this way when `isHijackRequest` selects them (by default POST
 *    `…/containers/{name}/attach` and `…/exec/{id}/start`). This is the only way that is safe when
 *    stdin follows the body in the same packet.
 * 2. Plain route, no dispatcher: `hijack(req)` detaches the socket from Node's parser itself. Safe
 *    for bytes that arrive after the request was fully parsed. Bytes pipelined right behind the
 *    request in the same read have already been fed to the parser: with a body they are rejected
 *    as a bad request before the route runs (the connection is lost); behind a bodyless request
 *    (route run synchronously by the parser) they are dropped, the session survives.
 *
 * Either way the route obtains the JSON body the normal way (Fastify parses it before the handler
 * runs), calls `reply.hijack()`, then `hijack(request.raw, …)`; whatever the socket yields after
 * that is stdin, starting with any bytes that were already buffered.
 */
import { IncomingMessage, ServerResponse, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { StreamId, writeFrame } from './frames.js';

export const RAW_STREAM_CONTENT_TYPE = 'application/vnd.docker.raw-stream';
/** What Docker (API ≥ 1.42) announces for non-TTY streams; Podman 4.3.1 always sends the raw type. */
export const MULTIPLEXED_STREAM_CONTENT_TYPE = 'application/vnd.docker.multiplexed-stream';

const CONTROL_CHARS = /[\r\n\0]/g;
const HAS_CONTROL_CHAR = /[\r\n\0]/;

/**
 * The protocol to echo when the request asks to be upgraded: `Connection` lists the `upgrade` token
 * (case-insensitive) and `Upgrade` is non-empty. Podman compares the whole Connection value;
 * accepting it as one token among others only adds `Connection: keep-alive, Upgrade`.
 */
export function requestedUpgrade(headers: IncomingHttpHeaders): string | undefined {
  const upgrade = headers.upgrade?.replace(CONTROL_CHARS, '').trim();
  if (!upgrade) return undefined;
  const connection = headers.connection;
  if (typeof connection !== 'string') return undefined;
  const asksUpgrade = connection.split(',').some((token) => token.trim().toLowerCase() === 'upgrade');
  return asksUpgrade ? upgrade : undefined;
}

export interface HijackHead {
  /** Status line and headers, ending with the blank line. */
  head: string;
  /** Whether it is the `101 UPGRADED` form. */
  upgraded: boolean;
}

/**
 * Podman's literal hijack header: `101 UPGRADED` echoing `Upgrade` when the client asked for an
 * upgrade, else `200 OK`; no Date, Content-Length or Transfer-Encoding.
 */
export function hijackResponseHead(headers: IncomingHttpHeaders, contentType: string = RAW_STREAM_CONTENT_TYPE): HijackHead {
  if (HAS_CONTROL_CHAR.test(contentType)) {
    throw new TypeError('content type must not contain control characters');
  }
  const protocol = requestedUpgrade(headers);
  if (protocol === undefined) {
    return { head: `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\n\r\n`, upgraded: false };
  }
  return {
    head: `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n\r\n`,
    upgraded: true,
  };
}

export interface HijackOptions {
  /** Content-Type of the hijacked response; default `application/vnd.docker.raw-stream`. */
  contentType?: string;
}

export interface HijackedConnection {
  /**
   * The client connection: read stdin from it (it starts with bytes already buffered), write
   * output to it. A client half-close ends only its readable side; end it yourself when done
   * (`closeHijacked`), or report a late failure with `writeHijackError`.
   */
  socket: Socket;
  /** The `101 UPGRADED` header was sent (else `200 OK`). */
  upgraded: boolean;
}

/**
 * Takes the request's connection away from Node's HTTP server and writes the hijack header on it,
 * immediately (before any output). Call it from a route after `reply.hijack()`; the request body,
 * if any, must already have been read (Fastify does so before the handler runs).
 */
export function hijack(req: IncomingMessage, options: HijackOptions = {}): HijackedConnection {
  const { head, upgraded } = hijackResponseHead(req.headers, options.contentType);
  const socket = req.socket;
  detachFromHttpServer(socket, req);
  if (!socket.destroyed) socket.write(head);
  return { socket, upgraded };
}

/** Node internals touched to take a socket from its HTTP parser (checked at runtime, Node 20). */
interface NodeHttpParser {
  _consumed?: boolean;
  socket?: unknown;
  incoming?: unknown;
  onIncoming?: ((req: IncomingMessage & { upgrade?: boolean }, keepAlive: boolean) => unknown) | null;
  unconsume?: () => void;
  remove?: () => void;
  close?: () => void;
}
interface ParsedSocket {
  parser?: NodeHttpParser | null;
  _paused?: boolean;
}

/** Names of the listeners Node's HTTP server puts on a connection (lib/_http_server.js). */
const HTTP_SERVER_LISTENERS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['data', new Set(['bound socketOnData'])],
  ['end', new Set(['bound socketOnEnd'])],
  ['close', new Set(['bound socketOnClose'])],
  ['drain', new Set(['bound socketOnDrain'])],
  ['error', new Set(['socketOnError'])],
  ['timeout', new Set(['socketOnTimeout'])],
  ['pause', new Set(['onSocketPause'])],
  ['resume', new Set(['onSocketResume'])],
]);

/**
 * What Node itself does before emitting 'upgrade': drop the server's listeners (so client bytes are
 * not parsed and a client FIN does not end our side), stop the parser reading the handle directly,
 * take the connection out of the server's idle/timeout bookkeeping, and leave the socket paused
 * without a flowing mode so no byte is emitted before the caller reads. Idempotent.
 */
function detachFromHttpServer(socket: Socket, req: IncomingMessage): void {
  const owned = socket as Socket & ParsedSocket;
  const parser = owned.parser;
  if (parser) {
    for (const [event, names] of HTTP_SERVER_LISTENERS) {
      for (const listener of socket.listeners(event)) {
        if (names.has((listener as { name?: string }).name ?? '')) {
          socket.removeListener(event, listener as (...args: unknown[]) => void);
        }
      }
    }
    // Stop delivery to JS 'data' events before the parser lets go of the handle.
    socket.pause();
    if (parser._consumed && typeof parser.unconsume === 'function') parser.unconsume();
    parser._consumed = false;
    // When the route runs synchronously inside the parser (a request without body), the parser
    // goes on with the rest of the current read, which is stdin. Those bytes are lost (the
    // dispatcher path avoids this) but must not hurt the session: answering "upgrade" to a stray
    // request makes the parser stop there (the cleared flag keeps Node from acting on it), and
    // muting the after-parse callback keeps a parse error from reaching 'clientError', whose
    // default handler writes a 400 into the stream and destroys the socket.
    parser.onIncoming = (stray: IncomingMessage & { upgrade?: boolean }): number => {
      stray.upgrade = false;
      return 2;
    };
    const kOnExecute = (parser.constructor as { kOnExecute?: unknown }).kOnExecute;
    if (typeof kOnExecute === 'number') (parser as Record<number, unknown>)[kOnExecute] = ignoreParserResult;
    owned.parser = null;
    (req as IncomingMessage & ParsedSocket).parser = null;
    owned._paused = false;
    // Out of the server's connection list (idle/timeout sweeps) and freed, once the parser is
    // surely off the stack: a parse in progress would put it back in the list on completion.
    setImmediate(() => {
      if (typeof parser.remove === 'function') parser.remove();
      parser.socket = null;
      parser.incoming = null;
      if (typeof parser.close === 'function') parser.close();
    });
  }
  // Neither paused nor flowing: `on('data')`, `pipe` or `read()` start the flow.
  (socket as unknown as { readableFlowing: boolean | null }).readableFlowing = null;
  socket.allowHalfOpen = true;
  socket.setTimeout(0);
  guardSocketErrors(socket);
}

function ignoreParserResult(): void {
  // See detachFromHttpServer: nothing left to do with what the parser made of stray bytes.
}

/** Node removes its error listener from a taken-over socket; without one an ECONNRESET would crash. */
function ignoreSocketError(): void {
  // The socket destroys itself on error; the owner learns about it through 'close'.
}

function guardSocketErrors(socket: Duplex): void {
  if (!socket.listeners('error').includes(ignoreSocketError)) socket.on('error', ignoreSocketError);
}

/**
 * Ends the connection once everything written has been flushed, then closes it (like Podman's
 * `Close()` of the hijacked connection). Resolves when the socket is closed.
 */
export function closeHijacked(socket: Duplex): Promise<void> {
  return new Promise<void>((resolve) => {
    if (socket.destroyed) {
      resolve();
      return;
    }
    guardSocketErrors(socket);
    socket.once('close', () => resolve());
    if (socket.writableEnded) {
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
      return;
    }
    socket.end(() => socket.destroy());
  });
}

/**
 * Reports a failure after the hijack, as Podman does (and for a detach, with "detached from
 * container"): `Error: <message>\n`, raw or as a stream-2 frame, then closes the connection.
 */
export function writeHijackError(socket: Duplex, message: string, multiplexed: boolean): Promise<void> {
  if (!socket.destroyed && !socket.writableEnded) {
    const text = Buffer.from(`Error: ${message}\n`);
    if (multiplexed) writeFrame(socket, StreamId.Stderr, text);
    else socket.write(text);
  }
  return closeHijacked(socket);
}

const HIJACK_PATH = /^(?:\/v\d+(?:\.\d+)*)?(?:\/libpod)?\/(?:containers\/[^/?]+\/attach|exec\/[^/?]+\/start)\/?(?:\?|$)/;

/**
 * Default selector for `isHijackRequest`: POST to `…/containers/{name}/attach` or `…/exec/{id}/start`,
 * compat or libpod, with or without a version prefix.
 */
export function isHijackEndpoint(req: IncomingMessage): boolean {
  return req.method === 'POST' && HIJACK_PATH.test(req.url ?? '');
}

export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface UpgradeDispatcherOptions {
  /**
   * Listeners that serve `Upgrade: websocket` (those of @fastify/websocket). Default: every
   * 'upgrade' listener on the server at install time, which are removed from it.
   */
  websocketListeners?: UpgradeListener[];
  /**
   * Requests without upgrade headers to route through the detached path too (see the module
   * comment), decided once their headers are parsed. Default `isHijackEndpoint`; null: none.
   */
  isHijackRequest?: ((req: IncomingMessage) => boolean) | null;
  /** Largest request body read on the detached path (default 1 MiB). */
  bodyLimit?: number;
  logger?: Logger;
}

/**
 * Becomes the server's only 'upgrade' listener. `Upgrade: websocket` goes to the websocket
 * listeners; every other upgrade (`Upgrade: tcp` of attach/exec) and every request selected by
 * `isHijackRequest` is re-emitted as an ordinary 'request' with its body, on a connection already
 * detached from the parser, so the normal route answers it and may hijack it. A response that is
 * not hijacked closes the connection after it is sent. Install after `await app.ready()` (when
 * @fastify/websocket has added its listener). Returns a function that restores the previous setup.
 */
export function installUpgradeDispatcher(server: Server, options: UpgradeDispatcherOptions = {}): () => void {
  const takenFromServer = options.websocketListeners === undefined;
  const websocketListeners = options.websocketListeners ?? (server.listeners('upgrade') as UpgradeListener[]);
  for (const listener of websocketListeners) server.removeListener('upgrade', listener);
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  const logger = options.logger;
  const isHijackRequest = options.isHijackRequest === undefined ? isHijackEndpoint : options.isHijackRequest;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    guardSocketErrors(socket);
    if (websocketListeners.length > 0 && isWebsocketUpgrade(req)) {
      for (const listener of websocketListeners) listener.call(server, req, socket, head);
      return;
    }
    dispatchAsRequest(server, req, socket as Socket, head, bodyLimit).catch((err: unknown) => {
      logger?.debug({ err, url: req.url }, 'dropping upgraded connection');
      socket.destroy();
    });
  };
  server.on('upgrade', onUpgrade);

  // Marking a request as an upgrade while its headers are parsed makes Node stop parsing right
  // after them and emit 'upgrade' with the rest of the bytes (lib/_http_server.js parserOnIncoming).
  const onConnection = (socket: Socket): void => {
    const parser = (socket as Socket & ParsedSocket).parser;
    const original = parser?.onIncoming;
    if (!parser || typeof original !== 'function' || !isHijackRequest) return;
    const select = isHijackRequest;
    parser.onIncoming = function selectHijack(this: unknown, req: IncomingMessage & { upgrade?: boolean }, keepAlive: boolean): unknown {
      if (!req.upgrade) {
        let selected = false;
        try {
          selected = select(req);
        } catch (err) {
          logger?.warn({ err }, 'isHijackRequest threw');
        }
        if (selected) req.upgrade = true;
      }
      return original.call(this, req, keepAlive);
    };
  };
  if (isHijackRequest) server.on('connection', onConnection);

  return () => {
    server.removeListener('upgrade', onUpgrade);
    server.removeListener('connection', onConnection);
    if (takenFromServer) for (const listener of websocketListeners) server.on('upgrade', listener);
  };
}

function isWebsocketUpgrade(req: IncomingMessage): boolean {
  const protocol = requestedUpgrade(req.headers);
  return protocol !== undefined && protocol.split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

class RequestBodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function dispatchAsRequest(server: Server, original: IncomingMessage, socket: Socket, head: Buffer, bodyLimit: number): Promise<void> {
  let body: Buffer;
  let rest: Buffer;
  try {
    ({ body, rest } = await readRequestBody(original, socket, head, bodyLimit));
  } catch (err) {
    if (err instanceof RequestBodyError) {
      rejectRequest(socket, err.status, err.message);
      return;
    }
    throw err;
  }
  // A client may have pipelined requests before this one: their responses go out first.
  await previousResponsesSent(socket);
  if (socket.destroyed) return;
  // The bytes after the body are stdin: give them back to the socket, ahead of anything newer.
  if (rest.length > 0) socket.unshift(rest);
  (socket as unknown as { readableFlowing: boolean | null }).readableFlowing = null;

  const req = new IncomingMessage(socket);
  req.httpVersionMajor = original.httpVersionMajor;
  req.httpVersionMinor = original.httpVersionMinor;
  req.httpVersion = original.httpVersion;
  req.method = original.method;
  req.url = original.url;
  // The body is complete and in hand: describe it with Content-Length only (a chunked body has
  // been decoded), so body parsers see an ordinary request.
  const headers = { ...original.headers, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  req.headers = headers;
  req.rawHeaders = withBodyLength(original.rawHeaders, body.length);
  // IncomingMessage#_read would resume the socket (it assumes the parser feeds it): the body is
  // complete already and the socket's bytes belong to whoever hijacks it.
  req._read = (): void => {};
  if (body.length > 0) req.push(body);
  req.push(null);
  req.complete = true;

  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => {
    // Not hijacked: an ordinary response, after which the connection closes (no parser is left).
    res.detachSocket(socket);
    process.nextTick(() => res.emit('close'));
    socket.end(() => socket.destroy());
  });
  server.emit('request', req, res);
}

function withBodyLength(rawHeaders: string[], length: number): string[] {
  const result: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (name === 'content-length' || name === 'transfer-encoding') continue;
    result.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  result.push('Content-Length', String(length));
  return result;
}

/** Waits while Node still has a response of an earlier request on this connection in flight. */
async function previousResponsesSent(socket: Socket): Promise<void> {
  for (;;) {
    const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!current || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        current.removeListener('finish', done);
        current.removeListener('close', done);
        socket.removeListener('close', done);
        // Node assigns the next queued response in its own 'finish' listener; look again after it.
        setImmediate(resolve);
      };
      current.once('finish', done);
      current.once('close', done);
      socket.once('close', done);
    });
  }
}

/** Splits `head` (+ socket bytes) into the request body and what follows it. */
async function readRequestBody(req: IncomingMessage, socket: Socket, head: Buffer, limit: number): Promise<{ body: Buffer; rest: Buffer }> {
  if (req.headers['transfer-encoding'] !== undefined) {
    // Only a chunked body that is already complete is taken (dockerode sends an empty one); a
    // client streaming chunked stdin without terminating it would otherwise never be answered.
    const decoded = decodeCompleteChunkedBody(head, limit);
    return decoded ?? { body: Buffer.alloc(0), rest: head };
  }
  const declared = req.headers['content-length'];
  if (declared === undefined) return { body: Buffer.alloc(0), rest: head };
  if (!/^\d+$/.test(declared)) throw new RequestBodyError(400, `invalid Content-Length ${JSON.stringify(declared)}`);
  const length = Number(declared);
  if (length > limit) throw new RequestBodyError(413, `request body of ${length} bytes exceeds the limit of ${limit}`);
  if (head.length >= length) return { body: head.subarray(0, length), rest: head.subarray(length) };
  const all = await readAtLeast(socket, head, length);
  return { body: all.subarray(0, length), rest: all.subarray(length) };
}

function readAtLeast(socket: Socket, head: Buffer, length: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [head];
    let have = head.length;
    const cleanup = (): void => {
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.removeListener('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      parts.push(chunk);
      have += chunk.length;
      if (have < length) return;
      cleanup();
      socket.pause();
      resolve(Buffer.concat(parts, have));
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`connection ended after ${have} of ${length} request body bytes`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}

/**
 * Decodes a chunked body that is entirely inside `data` (chunks, the last `0` chunk, optional
 * trailers, final CRLF). Returns null when it is incomplete or malformed.
 */
export function decodeCompleteChunkedBody(data: Buffer, limit = Number.MAX_SAFE_INTEGER): { body: Buffer; rest: Buffer } | null {
  const parts: Buffer[] = [];
  let total = 0;
  let offset = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset);
    if (lineEnd < 0) return null;
    const sizeText = data.toString('latin1', offset, lineEnd).split(';')[0].trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return null;
    const size = parseInt(sizeText, 16);
    offset = lineEnd + 2;
    if (size === 0) break;
    if (data.length < offset + size + 2 || data[offset + size] !== 0x0d || data[offset + size + 1] !== 0x0a) return null;
    total += size;
    if (total > limit) return null;
    parts.push(data.subarray(offset, offset + size));
    offset += size + 2;
  }
  // Trailers, if any, then the empty line.
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset);
    if (lineEnd < 0) return null;
    const empty = lineEnd === offset;
    offset = lineEnd + 2;
    if (empty) break;
  }
  return { body: parts.length === 1 ? parts[0] : Buffer.concat(parts, total), rest: data.subarray(offset) };
}

function rejectRequest(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ cause: message, message, response: status });
  const reason = status === 413 ? 'Payload Too Large' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
