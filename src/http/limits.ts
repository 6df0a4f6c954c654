/**
 * Limits that keep the daemon up under abuse: request-head size and time limits (slowloris), body size, a cap
 * on connections and on concurrent long-lived requests, and Podman-shaped 4xx replies for requests Node's
 * parser rejects before Fastify sees them.
 *
 * What is deliberately NOT limited: the time a response may take, or the silence on a connection while a
 * response is open. `podman events`, `logs -f`, attach/exec streams and `wait` (Nomad holds it for hours) are
 * quiet for long stretches, so there is no socket inactivity timeout and no whole-request timeout; the only
 * clocks are on receiving a request's head and on idle keep-alive connections between requests.
 */
import type { ServerOptions as HttpServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { PodserveError } from '../errors.js';

export interface HttpLimits {
  /** Largest request head (request line and headers), bytes; more gets 431. Podman allows 1 MiB; clients send a few KiB. */
  maxHeaderBytes: number;
  /** Largest body Fastify parses itself (JSON, text); more gets 413. Routes that stream bodies set their own. */
  bodyLimit: number;
  /** A request's head must arrive within this, counted from its first byte or from the connection (slowloris): 408, close. */
  headersTimeoutMs: number;
  /** How often Node looks for connections past headersTimeout. */
  timeoutCheckIntervalMs: number;
  /** An idle keep-alive connection (no request in flight) is closed after this. */
  keepAliveTimeoutMs: number;
  /** A TLS handshake must finish within this. */
  tlsHandshakeTimeoutMs: number;
  /** Open connections at once; more are closed as soon as accepted. */
  maxConnections: number;
  /** Long-lived requests at once (attach, exec start, events, logs follow, stats stream, wait); more get 429. */
  maxStreams: number;
}

export const DEFAULT_LIMITS: Readonly<HttpLimits> = {
  maxHeaderBytes: 64 * 1024,
  bodyLimit: 16 * 1024 * 1024,
  headersTimeoutMs: 15_000,
  timeoutCheckIntervalMs: 1_000,
  keepAliveTimeoutMs: 15_000,
  tlsHandshakeTimeoutMs: 10_000,
  maxConnections: 4096,
  maxStreams: 512,
};

export function resolveLimits(overrides: Partial<HttpLimits> = {}): HttpLimits {
  return { ...DEFAULT_LIMITS, ...overrides };
}

/** Options for Node's http (and https) server. Fastify sets keepAliveTimeout and requestTimeout itself. */
export function httpServerOptions(limits: HttpLimits): HttpServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
  };
}

/** Podman's error body for what Node's parser refused; written straight on the socket, then the socket is closed. */
export function clientErrorHandler(logger: Logger, limits: HttpLimits): (err: Error & { code?: string }, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let status = 400;
    let message = `malformed HTTP request (${err.code ?? err.message})`;
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      message = `request header fields too large: the limit is ${limits.maxHeaderBytes} bytes`;
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      message = `request headers not received within ${limits.headersTimeoutMs / 1000} s`;
    }
    logger.debug({ code: err.code, status }, 'refused a malformed request');
    if (socket.writable) {
      const body = JSON.stringify({ cause: message, message, response: status });
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/** strconv.ParseBool's true spellings; query values decide whether some requests stream. */
function goTrue(value: unknown): boolean {
  const text = Array.isArray(value) ? value[value.length - 1] : value;
  return typeof text === 'string' ? ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text) : text === true;
}

function goFalse(value: unknown): boolean {
  const text = Array.isArray(value) ? value[value.length - 1] : value;
  return typeof text === 'string' ? ['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text) : text === false;
}

/**
 * Requests that hold their connection for as long as the client wants, by route pattern (so it holds for both
 * trees and every version prefix). A route can also say so itself with `config: { longLived: true }`.
 */
const LONG_LIVED: { route: RegExp; when?: (query: Record<string, unknown>) => boolean }[] = [
  { route: /\/attach(\/ws)?$/ },
  { route: /^\/(libpod\/)?exec\/[^/]+\/start$/ },
  { route: /^\/(libpod\/)?events$/ },
  { route: /\/wait$/ },
  { route: /\/logs$/, when: (q) => goTrue(q.follow) },
  { route: /\/stats$/, when: (q) => !goFalse(q.stream) },
  { route: /\/top$/, when: (q) => goTrue(q.stream) },
];

/** The rules whose pattern matches a route, worked out once per route (every request asks). */
const rulesByRoute = new Map<string, typeof LONG_LIVED>();

export function isLongLived(request: FastifyRequest): boolean {
  const options = request.routeOptions;
  if ((options.config as { longLived?: unknown } | undefined)?.longLived === true) return true;
  const route = options.url;
  if (route === undefined) return false;
  let rules = rulesByRoute.get(route);
  if (!rules) {
    rules = LONG_LIVED.filter((rule) => rule.route.test(route));
    rulesByRoute.set(route, rules);
  }
  if (rules.length === 0) return false;
  const query = (request.query ?? {}) as Record<string, unknown>;
  return rules.some((rule) => rule.when === undefined || rule.when(query));
}

/**
 * Caps concurrent long-lived requests. Each one is counted from its onRequest hook until its response closes
 * (hijacked ones too: the response closes with the socket), exactly once.
 */
export class StreamGate {
  private open = 0;

  constructor(private readonly max: number) {}

  get openStreams(): number {
    return this.open;
  }

  /** An onRequest hook (a plain callback: it runs for every request). */
  readonly onRequest = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
    if (!isLongLived(request)) return done();
    if (this.open >= this.max) {
      return done(
        new PodserveError(
          429,
          'too many concurrent streams',
          `too many concurrent long-lived requests (attach, exec, events, logs, stats, wait): the limit is ${this.max}`,
        ),
      );
    }
    this.open++;
    let released = false;
    reply.raw.once('close', () => {
      if (released) return;
      released = true;
      this.open--;
    });
    done();
  };
}
