/**
 * Libpod observation endpoints: container logs, events, stats (one container in Docker's shape, several in
 * libpod's) and top. The logs and events handlers serve the Docker-compatible tree too (routes/compat/observe.ts),
 * as Podman's do; they only differ in framing and event shape.
 *
 * Every stream answers 200 before its first record, writes with backpressure, and releases what it holds (log
 * file and watcher, event subscription, timers) as soon as the client goes away.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError, PodserveError, Sentinel } from '../../src/errors.js';
import {
  EventFilter,
  EventSubscriberOverflowError,
  serializeApiEvent,
  toDockerEvent,
  toLibpodEvent,
  type PodmanEvent,
} from '../../src/engine/events.js';
import { encodeLogRecords, parseTime } from '../../src/engine/logs.js';
import { goJson } from '../../src/engine/stats.js';
import type { Engine } from '../../src/engine/engine.js';
import type { Container } from '../../src/engine/types.js';
import { replyHeaders } from '../compat/scope.js';

type NameParams = { name: string };

const bool = { type: 'boolean' } as const;
const str = { type: 'string' } as const;
const filters = { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } } as const;
const nameParams = { type: 'object', properties: { name: { type: 'string', minLength: 1 } }, required: ['name'] } as const;

export const logsQuery = {
  type: 'object',
  properties: { follow: bool, stdout: bool, stderr: bool, since: str, until: str, timestamps: bool, tail: str, details: bool },
} as const;
export const eventsQuery = { type: 'object', properties: { since: str, until: str, stream: bool, filters } } as const;
export const statsQuery = { type: 'object', properties: { stream: bool, 'one-shot': bool } } as const;
const statsAllQuery = {
  type: 'object',
  properties: { containers: { type: 'array', items: str }, stream: bool, interval: { type: 'integer' } },
} as const;
export const topQuery = {
  type: 'object',
  properties: { ps_args: { anyOf: [str, { type: 'array', items: str }] }, stream: bool, delay: { type: 'integer' } },
} as const;

export interface LogsQuery {
  follow?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  since?: string;
  until?: string;
  timestamps?: boolean;
  tail?: string;
}
export interface EventsQuery {
  since?: string;
  until?: string;
  stream?: boolean;
  filters?: Record<string, string[]>;
}
export interface StatsQuery {
  stream?: boolean;
  'one-shot'?: boolean;
}
export interface TopQuery {
  ps_args?: string | string[];
  stream?: boolean;
  delay?: number;
}

/** Docker's stats stream interval (Podman 4.3.1 waits 5 s between objects; Docker and its clients expect 1 s). */
const STATS_INTERVAL_MS = 1000;

// ---------------------------------------------------------------------------------------------
// Streaming responses

export interface ResponseStream {
  /** Aborts when the client goes away (or the response ended). */
  signal: AbortSignal;
  /** Writes a chunk; resolves once the socket took it (waits for 'drain'); false when the client is gone. */
  write(chunk: string | Buffer): Promise<boolean>;
  end(): void;
}

/**
 * Takes the response over from Fastify and sends the 200 header now, with the app's headers (version, server,
 * reference id) and `contentType`; chunked encoding follows from the absent length.
 */
export function startStream(reply: FastifyReply, contentType: string | undefined, abort = new AbortController()): ResponseStream {
  const raw: ServerResponse = reply.raw;
  const onClose = (): void => abort.abort();
  raw.once('close', onClose);
  reply.hijack();
  raw.writeHead(200, { ...replyHeaders(reply), ...(contentType ? { 'Content-Type': contentType } : {}) });
  raw.flushHeaders();
  return {
    signal: abort.signal,
    async write(chunk) {
      if (raw.destroyed || raw.writableEnded) return false;
      if (raw.write(chunk)) return true;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          raw.off('drain', done);
          raw.off('close', done);
          resolve();
        };
        raw.on('drain', done);
        raw.on('close', done);
      });
      return !raw.destroyed;
    },
    end() {
      raw.off('close', onClose);
      if (!raw.destroyed && !raw.writableEnded) raw.end();
      abort.abort();
    },
  };
}

/** Resolves after `ms`, or at once (false) when the signal aborts; leaves no timer behind. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---------------------------------------------------------------------------------------------
// Logs (both trees)

const INT_DIGITS: Record<number, RegExp> = { 2: /^[01]+$/, 8: /^[0-7]+$/, 10: /^\d+$/, 16: /^[0-9a-f]+$/i };

/** Go's strconv.ParseInt(text, 0, 64): sign, 0x/0o/0b/0 prefixes, underscores between digits. */
export function parseGoInt(text: string): number {
  const syntax = (): BadRequestError =>
    new BadRequestError(`failed to parse query parameter 'tail': "${text}": strconv.ParseInt: parsing "${text}": invalid syntax`, 'invalid syntax');
  let s = text;
  let sign = 1;
  if (s.startsWith('+') || s.startsWith('-')) {
    if (s.startsWith('-')) sign = -1;
    s = s.slice(1);
  }
  let base = 10;
  let prefixed = false;
  if (/^0[xX]/.test(s)) [base, s, prefixed] = [16, s.slice(2), true];
  else if (/^0[oO]/.test(s)) [base, s, prefixed] = [8, s.slice(2), true];
  else if (/^0[bB]/.test(s)) [base, s, prefixed] = [2, s.slice(2), true];
  else if (s.length > 1 && s.startsWith('0')) [base, s, prefixed] = [8, s.slice(1), true];
  // Underscores may only separate digits (or follow a base prefix).
  if (s.includes('_')) {
    if (!/^_?[^_]+(_[^_]+)*$/.test(s) || (s.startsWith('_') && !prefixed)) throw syntax();
    s = s.replace(/_/g, '');
  }
  if (s === '' || !INT_DIGITS[base]!.test(s)) throw syntax();
  const value = BigInt(sign) * BigInt(base === 10 ? s : `0${base === 16 ? 'x' : base === 8 ? 'o' : 'b'}${s}`);
  if (value > 9223372036854775807n || value < -9223372036854775808n) {
    throw new BadRequestError(`failed to parse query parameter 'tail': "${text}": strconv.ParseInt: parsing "${text}": value out of range`, 'value out of range');
  }
  return Number(value);
}

function queryTime(name: 'since' | 'until', value: string): Date | undefined {
  try {
    return parseTime(value, name);
  } catch (err) {
    if (err instanceof PodserveError) {
      throw new BadRequestError(`failed to parse query parameter '${name}': "${value}": ${err.message}`, err.message);
    }
    throw err;
  }
}

/**
 * Podman's LogsFromContainer. Libpod requests are always framed; Docker-compatible ones are framed unless the
 * container has a terminal.
 */
export async function serveLogs(engine: Engine, request: FastifyRequest<{ Params: NameParams; Querystring: LogsQuery }>, reply: FastifyReply, libpod: boolean): Promise<void> {
  const q = request.query;
  const stdout = q.stdout ?? false;
  const stderr = q.stderr ?? false;
  if (!stdout && !stderr) {
    const message = `Bad Request: you must choose at least one stream for ${request.originalUrl}`;
    throw new BadRequestError(message, message);
  }
  const c = engine.containers.lookup(request.params.name);
  const tail = q.tail === undefined || q.tail === 'all' ? -1 : parseGoInt(q.tail);
  const since = q.since === undefined ? undefined : queryTime('since', q.since);
  const until = q.until === undefined || q.until === '0' ? undefined : queryTime('until', q.until);
  const multiplexed = libpod || !c.config.terminal;
  const abort = new AbortController();
  const batches = engine.containerLogs(c, {
    follow: q.follow ?? false,
    stdout,
    stderr,
    tail,
    since,
    until,
    signal: abort.signal,
  });
  const out = startStream(reply, multiplexed ? 'application/octet-stream' : 'text/plain; charset=utf-8', abort);
  const encode = { timestamps: q.timestamps ?? false, multiplexed };
  try {
    for await (const batch of batches) {
      if (!(await out.write(encodeLogRecords(batch, encode)))) break;
    }
  } catch (err) {
    // The status is out already: all that is left is to log and close.
    request.log.warn({ err, container: c.id }, 'reading container logs failed');
  } finally {
    out.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Events (both trees)

function eventTime(name: 'since' | 'until', value: string | undefined): Date | undefined {
  if (value === undefined || value === '') return undefined;
  try {
    return parseTime(value, name);
  } catch (err) {
    if (err instanceof PodserveError) {
      throw new BadRequestError(`failed to parse event filters: unable to convert ${name} time of ${value}: ${err.message}`, err.message);
    }
    throw err;
  }
}

/**
 * Podman's GetEvents: one JSON object per line, flushed per event; `stream=false` answers what the journal
 * holds and ends; `until` ends a stream at that time. Docker-compatible requests get Docker's names (die,
 * delete, exitCode).
 */
export async function serveEvents(engine: Engine, request: FastifyRequest<{ Querystring: EventsQuery }>, reply: FastifyReply, libpod: boolean): Promise<void> {
  const q = request.query;
  const filter = EventFilter.parse(q.filters, { compat: !libpod });
  const since = eventTime('since', q.since);
  const until = eventTime('until', q.until);
  const shape = libpod ? toLibpodEvent : toDockerEvent;
  const line = (ev: PodmanEvent): string => serializeApiEvent(shape(ev));
  if (q.stream === false) {
    const events = await engine.events.query(filter, since, until);
    const out = startStream(reply, 'application/json');
    try {
      // A few events per write: one line per event on the wire, without a syscall each.
      for (let i = 0; i < events.length; i += 256) {
        if (!(await out.write(events.slice(i, i + 256).map(line).join('')))) break;
      }
    } finally {
      out.end();
    }
    return;
  }
  const abort = new AbortController();
  // Subscribed before the header goes out: nothing emitted after the client saw the 200 is missed.
  const subscription = engine.events.subscribe(filter, since, until, abort.signal);
  const out = startStream(reply, 'application/json', abort);
  try {
    for await (const ev of subscription) {
      if (!(await out.write(line(ev)))) break;
    }
  } catch (err) {
    if (err instanceof EventSubscriberOverflowError) request.log.warn({ err }, 'events client too slow; stream ended');
    else request.log.warn({ err }, 'events stream failed');
  } finally {
    out.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Stats of one container (both trees: Docker's shape)

/**
 * Podman's compat StatsContainer: 200 first; nothing more for a container that does not run (Podman 4.3.1's
 * empty 200, which nomad-driver-podman reads as "exited"); otherwise one object, or one per second while
 * `stream` until the container stops or the client leaves.
 */
export async function serveContainerStats(
  engine: Engine,
  request: FastifyRequest<{ Params: NameParams; Querystring: StatsQuery }>,
  reply: FastifyReply,
  libpod: boolean,
): Promise<void> {
  const stream = request.query.stream ?? true;
  const oneShot = request.query['one-shot'] ?? false;
  if (stream && oneShot) throw new BadRequestError(Sentinel.invalidArg, Sentinel.invalidArg);
  const c = engine.containers.lookup(request.params.name);
  const abort = new AbortController();
  // Docker names start with "/" (the docker CLI drops the first character); libpod requests keep Podman's name.
  const objects = engine.dockerStats(c, { stream, intervalMs: STATS_INTERVAL_MS, signal: abort.signal, ...(libpod ? {} : { name: `/${c.name}` }) });
  const out = startStream(reply, 'application/json', abort);
  try {
    for await (const stats of objects) {
      if (!(await out.write(goJson(stats)))) break;
    }
  } catch (err) {
    request.log.warn({ err, container: c.id }, 'container stats failed');
  } finally {
    out.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Top (both trees)

export interface TopBody {
  Processes: string[][] | null;
  Titles: string[];
}

/** Podman's ContainerTopOKBody from ps lines: tab-separated cells, each trimmed. */
export function topBody(lines: readonly string[]): TopBody {
  const cells = (line: string): string[] => line.split('\t').map((cell) => cell.trim());
  const processes = lines.slice(1).map(cells);
  return { Processes: processes.length > 0 ? processes : null, Titles: cells(lines[0] ?? '') };
}

/**
 * Podman's TopContainer: `ps_args` as psgo descriptors or ps(1) arguments (default: psgo's `user,pid,ppid,…`
 * for libpod, `-ef` for Docker). With `stream`, a new table every `delay` seconds until the container stops.
 * A container that does not run is refused before the 200 (Podman 4.3.1 wrote an empty 200 that both the
 * podman and docker CLIs fail to decode).
 */
export async function serveTop(
  engine: Engine,
  request: FastifyRequest<{ Params: NameParams; Querystring: TopQuery }>,
  reply: FastifyReply,
  refuseNotRunning: (err: unknown) => unknown,
  defaultPsArgs: string,
): Promise<void> {
  const q = request.query;
  const delay = q.delay ?? 5;
  if (delay < 1) throw new BadRequestError(`"delay" parameter of value ${delay} < 1`, `"delay" parameter of value ${delay} < 1`);
  const raw = q.ps_args;
  const psArgs = raw === undefined ? defaultPsArgs : Array.isArray(raw) ? (raw[raw.length - 1] ?? defaultPsArgs) : raw;
  const c: Container = engine.containers.lookup(request.params.name);
  let lines: string[];
  try {
    lines = await engine.top(c, psArgs);
  } catch (err) {
    throw refuseNotRunning(err);
  }
  const out = startStream(reply, 'application/json');
  try {
    for (;;) {
      if (lines.length > 0 && !(await out.write(goJson(topBody(lines))))) break;
      if (!q.stream || !(await sleep(delay * 1000, out.signal))) break;
      const now = engine.containers.tryLookup(c.id);
      if (!now) break;
      try {
        lines = await engine.top(now, psArgs);
      } catch (err) {
        request.log.debug({ err, container: c.id }, 'top stream ended');
        break;
      }
    }
  } finally {
    out.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Routes

export default async function libpodObserveRoutes(app: FastifyInstance): Promise<void> {
  const engine = app.engine;

  app.get<{ Params: NameParams; Querystring: LogsQuery }>(
    '/libpod/containers/:name/logs',
    { schema: { params: nameParams, querystring: logsQuery } },
    (request, reply) => serveLogs(engine, request, reply, true),
  );

  app.get<{ Querystring: EventsQuery }>('/libpod/events', { schema: { querystring: eventsQuery } }, (request, reply) =>
    serveEvents(engine, request, reply, true),
  );

  app.get<{ Params: NameParams; Querystring: StatsQuery }>(
    '/libpod/containers/:name/stats',
    { schema: { params: nameParams, querystring: statsQuery } },
    (request, reply) => serveContainerStats(engine, request, reply, true),
  );

  app.get<{ Querystring: { containers?: string[]; stream?: boolean; interval?: number } }>(
    '/libpod/containers/stats',
    { schema: { querystring: statsAllQuery } },
    async (request, reply) => {
      const q = request.query;
      const interval = q.interval ?? 5;
      if (interval < 1) throw new PodserveError(500, 'invalid interval, must be a positive number greater zero');
      const abort = new AbortController();
      const reports = engine.libpodStats(q.containers ?? [], { stream: q.stream ?? true, intervalSec: interval, signal: abort.signal });
      const out = startStream(reply, 'application/json', abort);
      try {
        for await (const report of reports) {
          if (!(await out.write(goJson(report)))) break;
        }
      } catch (err) {
        request.log.warn({ err }, 'container stats failed');
      } finally {
        out.end();
      }
    },
  );

  app.get<{ Params: NameParams; Querystring: TopQuery }>(
    '/libpod/containers/:name/top',
    { schema: { params: nameParams, querystring: topQuery } },
    (request, reply) => serveTop(engine, request, reply, (err) => err, ''),
  );
}
