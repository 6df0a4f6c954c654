/**
 * The event bus: Podman 4.3.1 event semantics with a persistent journal.
 *
 * Like podman's "file" events logger, every event is one JSON line (podman's own libpod Event
 * encoding) appended to `<runroot>/events/events.log`, so history survives daemon restarts and a file
 * podman wrote can be read. The journal is also the bus's single source of truth: `emit` appends,
 * then dispatches whatever the file gained since the last dispatch. Lines appended by another process
 * (the `container cleanup` exit command running while no daemon answered) arrive the same way,
 * through an fs.watch on the journal's directory. No polling anywhere.
 *
 * Subscribers get a bounded queue. A subscriber that falls more than `queueLimit` events behind is
 * dropped: it still receives the events already queued, then its iterator throws
 * {@link EventSubscriberOverflowError} (the HTTP layer ends the stream). Memory per subscriber is
 * therefore bounded no matter how slow the client reads.
 *
 * Rotation: when an append would take the journal past `maxBytes`, the older half is discarded
 * (podman's truncate: keep the second half from the first full line), and a `system log-rotation`
 * event is written first, as podman does. There is no cross-process lock: two processes rotating at
 * the same instant could lose a line (podserve runs one daemon per journal; the exit command only
 * writes when no daemon answers).
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, statSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { BadRequestError, InternalError } from '../errors.js';
import { formatRFC3339Nano, parseRFC3339Nano, timerAt } from './logs.js';
import { nowNanos } from './time.js';

export type EventType = 'container' | 'image' | 'volume' | 'pod' | 'system' | 'network' | 'machine';

/** Statuses ("actions") podman 4.3.1 knows (libpod/events/config.go). */
export type EventStatus =
  | 'attach' | 'auto-update' | 'build' | 'checkpoint' | 'cleanup' | 'commit' | 'copy' | 'create' | 'exec'
  | 'exec_died' | 'died' | 'export' | 'health_status' | 'history' | 'import' | 'init' | 'kill'
  | 'loadfromarchive' | 'mount' | 'connect' | 'disconnect' | 'pause' | 'prune' | 'pull' | 'push' | 'refresh'
  | 'remove' | 'rename' | 'renumber' | 'restart' | 'restore' | 'log-rotation' | 'save' | 'start' | 'stop'
  | 'sync' | 'tag' | 'unmount' | 'unpause' | 'untag' | 'load';

const EVENT_TYPES: ReadonlySet<string> = new Set<EventType>(['container', 'image', 'volume', 'pod', 'system', 'network', 'machine']);

/** One event, as stored and dispatched. */
export interface PodmanEvent {
  type: EventType;
  /** podman's Status = Docker's Action: 'start', 'died', 'pull', … (see {@link EventStatus}). */
  status: string;
  /** Container / image / pod id ('' when none, e.g. volume and system events). */
  id: string;
  name: string;
  /** The container's image name (container events). */
  image: string;
  /** Container labels and event details (podman's Details.Attributes). */
  attributes: Record<string, string>;
  /** Exit code for died / exec_died. */
  containerExitCode?: number;
  podId?: string;
  network?: string;
  healthStatus?: string;
  /** Nanoseconds since the Unix epoch. Unique and increasing for events emitted by one bus. */
  timeNano: bigint;
}

/** What `emit` takes. `attributes.containerExitCode` (a decimal string) is accepted too and moved to
 *  `containerExitCode`, where podman keeps it. */
export interface EventInput {
  type: EventType;
  status: EventStatus | (string & {});
  id?: string;
  name?: string;
  image?: string;
  attributes?: Record<string, string>;
  containerExitCode?: number;
  podId?: string;
  network?: string;
  healthStatus?: string;
  /** Defaults to now. */
  timeNano?: bigint;
}

export interface EventBusOptions {
  /** Journal size that triggers rotation (podman's events_logfile_max_size, default 1 MB); 0 = never. */
  maxBytes?: number;
  /** Events a subscriber may have queued before it is dropped (default 4096). */
  queueLimit?: number;
}

/** Thrown by a subscription's iterator when the subscriber fell too far behind and was dropped. */
export class EventSubscriberOverflowError extends InternalError {
  constructor(limit: number) {
    super(`event subscriber too slow: more than ${limit} events queued, subscription dropped`);
  }
}

// ---------------------------------------------------------------------------------------------
// Filters

/**
 * Filters as the API receives them: podman's `key=value` list, the `{"key":["v"]}` map, or Docker's
 * older `{"key":{"v":true}}` map (both JSON forms of the `filters` query parameter).
 */
export type EventFilterInput = readonly string[] | Readonly<Record<string, readonly string[] | Readonly<Record<string, boolean>>>>;

export interface EventFilterOptions {
  /** Docker API: also accept Docker's action names in `event=` (die → died, delete → remove). */
  compat?: boolean;
}

type Predicate = (ev: PodmanEvent) => boolean;

function nameOrIdPredicate(type: EventType, value: string, byName: boolean): Predicate {
  return (ev) => ev.type === type && ((byName && ev.name === value) || ev.id.startsWith(value));
}

function predicateFor(key: string, value: string, compat: boolean): Predicate {
  switch (key) {
    case 'container':
      return nameOrIdPredicate('container', value, true);
    case 'image':
      return nameOrIdPredicate('image', value, true);
    case 'pod':
      return nameOrIdPredicate('pod', value, true);
    case 'volume':
      // podman 4.3.1 matches the id; volume events carry the volume's name, so accept both.
      return (ev) => ev.type === 'volume' && (ev.id.startsWith(value) || ev.name === value);
    case 'event':
    case 'status': {
      const wanted = compat && value === 'die' ? 'died' : compat && value === 'delete' ? 'remove' : value;
      return (ev) => ev.status === wanted;
    }
    case 'type':
      return (ev) => ev.type === value;
    case 'label': {
      // key=value matches exactly; a bare key (Docker's form) matches any value.
      const eq = value.indexOf('=');
      if (eq < 0) return (ev) => Object.hasOwn(ev.attributes, value);
      const k = value.slice(0, eq);
      const v = value.slice(eq + 1);
      return (ev) => Object.hasOwn(ev.attributes, k) && ev.attributes[k] === v;
    }
    default:
      throw new BadRequestError(`failed to parse event filters: ${key} is an invalid filter`);
  }
}

/** A compiled filter: values of one key are ORed, different keys ANDed (podman's applyFilters). */
export class EventFilter {
  private constructor(private readonly groups: Predicate[][]) {}

  /** An empty filter: every event matches. */
  static readonly all = new EventFilter([]);

  /** @throws BadRequestError for an unknown key or a list item without "=". */
  static parse(input: EventFilterInput | undefined, opts: EventFilterOptions = {}): EventFilter {
    if (input === undefined) return EventFilter.all;
    const compat = opts.compat ?? false;
    const pairs: Array<[string, string]> = [];
    if (Array.isArray(input)) {
      for (const item of input as readonly string[]) {
        const eq = item.indexOf('=');
        if (eq < 0) throw new BadRequestError(`failed to parse event filters: ${item} is an invalid filter`);
        pairs.push([item.slice(0, eq), item.slice(eq + 1)]);
      }
    } else {
      for (const [key, values] of Object.entries(input as Record<string, readonly string[] | Record<string, boolean>>)) {
        if (Array.isArray(values)) {
          for (const v of values as readonly string[]) pairs.push([key, String(v)]);
        } else if (values !== null && typeof values === 'object') {
          for (const [v, on] of Object.entries(values)) if (on) pairs.push([key, v]);
        } else {
          throw new BadRequestError(`failed to parse event filters: ${key} is an invalid filter`);
        }
      }
    }
    const groups = new Map<string, Predicate[]>();
    for (const [rawKey, value] of pairs) {
      const key = rawKey.toLowerCase();
      const predicate = predicateFor(key, value, compat);
      const group = groups.get(key === 'status' ? 'event' : key);
      if (group) group.push(predicate);
      else groups.set(key === 'status' ? 'event' : key, [predicate]);
    }
    return new EventFilter([...groups.values()]);
  }

  matches(ev: PodmanEvent): boolean {
    for (const group of this.groups) if (!group.some((p) => p(ev))) return false;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Journal encoding (podman's libpod/events Event JSON, so either program can read the other's file)

/** Go's encoding/json escapes these inside strings (SetEscapeHTML, and always U+2028/2029). */
const GO_ESCAPES = /[<>&\u2028\u2029]/g;
const goEscape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
/** JSON.stringify, with Go's extra escaping. */
const goString = (s: string): string => JSON.stringify(s).replace(GO_ESCAPES, goEscape);

/** A string map with keys sorted, as Go's encoder writes maps. */
function goStringMap(map: Record<string, string> | undefined): string {
  if (map === undefined) return 'null';
  const keys = Object.keys(map).sort();
  return `{${keys.map((k) => `${goString(k)}:${goString(map[k]!)}`).join(',')}}`;
}

/** One journal line (without newline) in podman's field order; empty fields omitted as podman does. */
export function encodeJournalLine(ev: PodmanEvent): string {
  const parts: string[] = [];
  if (ev.containerExitCode) parts.push(`"ContainerExitCode":${ev.containerExitCode}`);
  if (ev.id) parts.push(`"ID":${goString(ev.id)}`);
  if (ev.image) parts.push(`"Image":${goString(ev.image)}`);
  if (ev.name) parts.push(`"Name":${goString(ev.name)}`);
  if (ev.network) parts.push(`"network":${goString(ev.network)}`);
  parts.push(`"Status":${goString(ev.status)}`);
  parts.push(`"Time":${goString(formatRFC3339Nano(ev.timeNano))}`);
  parts.push(`"Type":${goString(ev.type)}`);
  if (ev.healthStatus) parts.push(`"health_status":${goString(ev.healthStatus)}`);
  if (ev.podId) parts.push(`"PodID":${goString(ev.podId)}`);
  parts.push(`"Attributes":${goStringMap(ev.attributes)}`);
  return `{${parts.join(',')}}`;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Parses a journal line (ours or podman's); undefined when it is not a valid event. */
export function decodeJournalLine(line: string): PodmanEvent | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (raw === null || typeof raw !== 'object') return undefined;
  const o = raw as Record<string, unknown>;
  const type = str(o['Type']);
  const status = str(o['Status']);
  const timeNano = parseRFC3339Nano(str(o['Time']));
  if (!EVENT_TYPES.has(type) || status === '' || timeNano === undefined) return undefined;
  const attributes: Record<string, string> = {};
  const rawAttributes = o['Attributes'];
  if (rawAttributes !== null && typeof rawAttributes === 'object') {
    for (const [k, v] of Object.entries(rawAttributes)) if (typeof v === 'string') attributes[k] = v;
  }
  const ev: PodmanEvent = {
    type: type as EventType,
    status,
    id: str(o['ID']),
    name: str(o['Name']),
    image: str(o['Image']),
    attributes,
    timeNano,
  };
  if (typeof o['ContainerExitCode'] === 'number') ev.containerExitCode = o['ContainerExitCode'];
  if (str(o['PodID'])) ev.podId = str(o['PodID']);
  if (str(o['network'])) ev.network = str(o['network']);
  if (str(o['health_status'])) ev.healthStatus = str(o['health_status']);
  return ev;
}

// ---------------------------------------------------------------------------------------------
// API shapes

/** The JSON object /events answers with per event (docker's events.Message plus podman's HealthStatus). */
export interface ApiEvent {
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** Unix seconds. */
  time: number;
  /** Unix nanoseconds: a bigint because it exceeds 2^53; serialize with {@link serializeApiEvent}. */
  timeNano: bigint;
  HealthStatus?: string;
}

/** podman 4.3.1's /libpod/events shape (entities.ConvertToEntitiesEvent). */
export function toLibpodEvent(ev: PodmanEvent): ApiEvent {
  const attributes: Record<string, string> = {
    ...ev.attributes,
    image: ev.image,
    name: ev.name,
    containerExitCode: String(ev.containerExitCode ?? 0),
    podId: ev.podId ?? '',
  };
  const out: ApiEvent = {
    status: ev.status,
    id: ev.id,
    from: ev.image,
    Type: ev.type,
    Action: ev.status,
    Actor: { ID: ev.id, Attributes: attributes },
    scope: 'local',
    time: Number(ev.timeNano / 1_000_000_000n),
    timeNano: ev.timeNano,
  };
  if (ev.healthStatus) out.HealthStatus = ev.healthStatus;
  return out;
}

/** The Docker-compatible /events shape: as libpod, but image remove → delete, died → die + exitCode. */
export function toDockerEvent(ev: PodmanEvent): ApiEvent {
  const out = toLibpodEvent(ev);
  if (ev.type === 'image' && ev.status === 'remove') {
    out.status = 'delete';
    out.Action = 'delete';
  }
  if (ev.status === 'died') {
    out.status = 'die';
    out.Action = 'die';
    out.Actor.Attributes['exitCode'] = out.Actor.Attributes['containerExitCode']!;
  }
  return out;
}

/** One line of the /events stream, exactly as Go's json.Encoder writes it (omitempty, sorted map
 *  keys, HTML escaping, exact 64-bit timeNano), newline included. */
export function serializeApiEvent(ev: ApiEvent): string {
  const parts: string[] = [];
  if (ev.status) parts.push(`"status":${goString(ev.status)}`);
  if (ev.id) parts.push(`"id":${goString(ev.id)}`);
  if (ev.from) parts.push(`"from":${goString(ev.from)}`);
  parts.push(`"Type":${goString(ev.Type)}`);
  parts.push(`"Action":${goString(ev.Action)}`);
  parts.push(`"Actor":{"ID":${goString(ev.Actor.ID)},"Attributes":${goStringMap(ev.Actor.Attributes)}}`);
  if (ev.scope) parts.push(`"scope":${goString(ev.scope)}`);
  if (ev.time) parts.push(`"time":${ev.time}`);
  if (ev.timeNano) parts.push(`"timeNano":${ev.timeNano.toString()}`);
  if (ev.HealthStatus) parts.push(`"HealthStatus":${goString(ev.HealthStatus)}`);
  return `{${parts.join(',')}}\n`;
}

// ---------------------------------------------------------------------------------------------
// Reading the journal

const READ_CHUNK = 64 * 1024;

/**
 * Reads complete lines of fd in [offset, end) chunk by chunk (synchronously: the journal is small and
 * local, and a sync read cannot race with rotation closing the fd).
 */
class JournalReader {
  private carry: Buffer = Buffer.alloc(0);
  private readPos: number;
  /** Offset just after the last complete line returned so far. */
  consumed: number;

  constructor(
    private readonly fd: number,
    offset: number,
    private readonly end: number,
  ) {
    this.readPos = offset;
    this.consumed = offset;
  }

  /** The next batch of complete lines (possibly empty); undefined at the end of the range. A last
   *  line without its newline (being written) is not returned. */
  nextLines(): string[] | undefined {
    if (this.readPos >= this.end) return undefined;
    const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, this.end - this.readPos));
    const n = readSync(this.fd, chunk, 0, chunk.length, this.readPos);
    if (n === 0) {
      this.readPos = this.end;
      return undefined;
    }
    this.readPos += n;
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
    const lines: string[] = [];
    let pos = 0;
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, pos)) {
      lines.push(data.toString('utf8', pos, nl));
      pos = nl + 1;
    }
    this.consumed += pos;
    this.carry = Buffer.from(data.subarray(pos));
    return lines;
  }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

class Subscription implements AsyncIterableIterator<PodmanEvent> {
  private replay: JournalReader | undefined;
  private replayFd: number | undefined;
  private replayReady: PodmanEvent[] = [];
  private replayIndex = 0;
  private queue: PodmanEvent[] = [];
  private queueHead = 0;
  private waiter: ((result: IteratorResult<PodmanEvent>) => void) | undefined;
  private error: Error | undefined;
  /** No more live events will be queued. */
  private liveEnded = false;
  private ended = false;
  private timer: { clear(): void } | undefined;
  private readonly onAbort = (): void => this.finish();

  constructor(
    private readonly bus: EventBus,
    private readonly filter: EventFilter,
    private readonly sinceNs: bigint | undefined,
    private readonly untilNs: bigint | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly queueLimit: number,
  ) {}

  /** Called by the bus when registering: replay range and live phase. */
  start(replayFd: number | undefined, replayEnd: number, live: boolean): void {
    if (replayFd !== undefined) {
      this.replayFd = replayFd;
      this.replay = new JournalReader(replayFd, 0, replayEnd);
    }
    if (!live) this.liveEnded = true;
    if (this.untilNs !== undefined && live) {
      this.timer = timerAt(Number(this.untilNs / 1_000_000n), () => this.endLive());
    }
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (this.signal?.aborted) this.finish();
  }

  private accepts(ev: PodmanEvent): boolean {
    if (this.sinceNs !== undefined && !(ev.timeNano > this.sinceNs)) return false;
    if (this.untilNs !== undefined && !(ev.timeNano < this.untilNs)) return false;
    return this.filter.matches(ev);
  }

  /** A live event from the bus. */
  deliver(ev: PodmanEvent): void {
    if (this.liveEnded) return;
    if (this.untilNs !== undefined && ev.timeNano >= this.untilNs) {
      this.endLive();
      return;
    }
    if (!this.accepts(ev)) return;
    if (this.waiter !== undefined && this.replay === undefined && this.queueHead === this.queue.length) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: ev, done: false });
      return;
    }
    if (this.queue.length - this.queueHead >= this.queueLimit) {
      this.error = new EventSubscriberOverflowError(this.queueLimit);
      this.bus.logger.warn({ queued: this.queueLimit }, 'dropping a slow event subscriber');
      this.endLive();
      return;
    }
    this.queue.push(ev);
  }

  /** Stop receiving live events; queued ones are still delivered. */
  endLive(): void {
    if (this.liveEnded) return;
    this.liveEnded = true;
    this.bus.unregister(this);
    this.timer?.clear();
    // A pending next() means nothing is left to deliver (an overflow needs a full queue, so it never
    // has a waiter): the iterator is done.
    if (this.waiter !== undefined) this.finish();
  }

  /** Release everything; the iterator is done. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.liveEnded = true;
    this.bus.unregister(this);
    this.timer?.clear();
    this.closeReplay();
    this.queue = [];
    this.queueHead = 0;
    this.signal?.removeEventListener('abort', this.onAbort);
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  private closeReplay(): void {
    this.replay = undefined;
    this.replayReady = [];
    if (this.replayFd !== undefined) {
      closeSync(this.replayFd);
      this.replayFd = undefined;
    }
  }

  private nextReplayed(): PodmanEvent | undefined {
    while (this.replay !== undefined) {
      if (this.replayIndex < this.replayReady.length) return this.replayReady[this.replayIndex++];
      this.replayReady = [];
      this.replayIndex = 0;
      const lines = this.replay.nextLines();
      if (lines === undefined) {
        this.closeReplay();
        break;
      }
      for (const line of lines) {
        const ev = line === '' ? undefined : decodeJournalLine(line);
        if (ev !== undefined && this.accepts(ev)) this.replayReady.push(ev);
      }
    }
    return undefined;
  }

  next(): Promise<IteratorResult<PodmanEvent>> {
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    const replayed = this.nextReplayed();
    if (replayed !== undefined) return Promise.resolve({ value: replayed, done: false });
    if (this.queueHead < this.queue.length) {
      const ev = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as PodmanEvent; // let it be collected
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      return Promise.resolve({ value: ev, done: false });
    }
    if (this.error !== undefined) {
      const err = this.error;
      this.finish();
      return Promise.reject(err);
    }
    if (this.liveEnded) {
      this.finish();
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<PodmanEvent>> {
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<PodmanEvent> {
    return this;
  }
}

// ---------------------------------------------------------------------------------------------
// The bus

const DEFAULT_MAX_BYTES = 1_000_000;
const DEFAULT_QUEUE_LIMIT = 4096;

export class EventBus {
  private readonly subscribers = new Set<Subscription>();
  private readonly fileName: string;
  /** The journal as the bus reads it: fd, inode, and how far it has been dispatched. */
  private readFd: number;
  private readIno: number;
  private dispatched: number;
  private lastTimeNano = 0n;
  private watcher: FSWatcher | undefined;
  private closed = false;
  private readonly maxBytes: number;
  private readonly queueLimit: number;

  private constructor(
    readonly path: string,
    readonly logger: Logger,
    opts: EventBusOptions,
  ) {
    this.fileName = basename(path);
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.queueLimit = opts.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    // Create the journal (reading an absent file would fail); existing lines are history, not news.
    closeSync(openSync(path, 'a', 0o600));
    this.readFd = openSync(path, 'r');
    const info = fstatSync(this.readFd);
    this.readIno = info.ino;
    this.dispatched = this.completeLinesEnd(this.readFd, info.size);
  }

  /** Opens (creating if needed) the journal at `path` and starts watching it for other writers. */
  static async open(path: string, logger: Logger, opts: EventBusOptions = {}): Promise<EventBus> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const bus = new EventBus(path, logger, opts);
    try {
      bus.watcher = watch(dirname(path), (_event, name) => {
        if (name === null || name === bus.fileName) bus.pump();
      });
      bus.watcher.on('error', (err) => logger.warn({ err }, 'events journal watcher failed; other writers are no longer seen live'));
      // The bus lives as long as the daemon; it alone must not keep a process (or a test) alive.
      bus.watcher.unref();
    } catch (err) {
      logger.warn({ err }, 'cannot watch the events journal; other writers are not seen live');
    }
    return bus;
  }

  /** Offset after the last newline in fd's first `size` bytes (a half-written line stays pending). */
  private completeLinesEnd(fd: number, size: number): number {
    let end = size;
    const buf = Buffer.allocUnsafe(4096);
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const n = readSync(fd, buf, 0, end - start, start);
      const nl = buf.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) return start + nl + 1;
      end = start;
    }
    return 0;
  }

  private nextTime(requested: bigint | undefined): bigint {
    if (requested !== undefined) return requested;
    let t = nowNanos();
    if (t <= this.lastTimeNano) t = this.lastTimeNano + 1n;
    this.lastTimeNano = t;
    return t;
  }

  private normalize(input: EventInput): PodmanEvent {
    const attributes = { ...(input.attributes ?? {}) };
    let exitCode = input.containerExitCode;
    const fromAttributes = attributes['containerExitCode'];
    if (fromAttributes !== undefined) {
      delete attributes['containerExitCode'];
      if (exitCode === undefined && /^-?\d+$/.test(fromAttributes)) exitCode = Number(fromAttributes);
    }
    const ev: PodmanEvent = {
      type: input.type,
      status: input.status,
      id: input.id ?? '',
      name: input.name ?? '',
      image: input.image ?? '',
      attributes,
      timeNano: this.nextTime(input.timeNano),
    };
    if (exitCode !== undefined) ev.containerExitCode = exitCode;
    if (input.podId) ev.podId = input.podId;
    if (input.network) ev.network = input.network;
    if (input.healthStatus) ev.healthStatus = input.healthStatus;
    return ev;
  }

  /**
   * Records an event and hands it to every matching live subscriber (synchronously, before returning).
   * If the journal cannot be written the event is still dispatched, and the failure logged.
   */
  emit(input: EventInput): PodmanEvent {
    const ev = this.normalize(input);
    if (this.closed) {
      this.logger.debug({ status: ev.status, id: ev.id }, 'event emitted after the bus closed: dropped');
      return ev;
    }
    const line = `${encodeJournalLine(ev)}\n`;
    try {
      // Open per append (as podman does): always the current inode, even after a rotation.
      let fd = openSync(this.path, 'a', 0o600);
      try {
        const size = fstatSync(fd).size;
        if (this.maxBytes > 0 && size + Buffer.byteLength(line) >= this.maxBytes && size > 0) {
          closeSync(fd);
          fd = -1;
          this.rotate();
          fd = openSync(this.path, 'a', 0o600);
          // Same instant as the event that caused it, so times in the file stay ordered.
          const rotated = this.normalize({ type: 'system', status: 'log-rotation', name: this.path, timeNano: ev.timeNano });
          writeSync(fd, `${encodeJournalLine(rotated)}\n${line}`);
        } else {
          writeSync(fd, line);
        }
      } finally {
        if (fd >= 0) closeSync(fd);
      }
    } catch (err) {
      this.logger.error({ err, path: this.path }, 'cannot write the events journal; event dispatched in memory only');
      this.dispatch(ev);
      return ev;
    }
    this.pump();
    return ev;
  }

  /** podman's truncate: keep the second half of the journal, from its first complete line. */
  private rotate(): void {
    this.pump(); // everything before the cut has been dispatched
    const tmp = join(dirname(this.path), `.${this.fileName}.rotate`);
    const src = openSync(this.path, 'r');
    try {
      const size = fstatSync(src).size;
      const kept = Buffer.allocUnsafe(size - Math.floor(size / 2));
      const n = readSync(src, kept, 0, kept.length, Math.floor(size / 2));
      const nl = kept.subarray(0, n).indexOf(0x0a);
      const body = nl < 0 ? Buffer.alloc(0) : kept.subarray(nl + 1, n);
      const out = openSync(tmp, 'w', 0o600);
      try {
        writeSync(out, body);
      } finally {
        closeSync(out);
      }
      renameSync(tmp, this.path);
      // Switch the reader to the new file: all of it is history already dispatched.
      closeSync(this.readFd);
      this.readFd = openSync(this.path, 'r');
      this.readIno = fstatSync(this.readFd).ino;
      this.dispatched = body.length;
      this.logger.debug({ path: this.path, kept: body.length }, 'events journal rotated');
    } finally {
      closeSync(src);
    }
  }

  /** Dispatches every complete line the journal gained since the last dispatch. */
  private pump(): void {
    if (this.closed) return;
    try {
      this.dispatchFrom(this.readFd, this.dispatched, undefined);
      // Another process may have rotated or recreated the journal.
      let ino: number;
      try {
        ino = statSync(this.path).ino;
      } catch {
        return;
      }
      if (ino !== this.readIno) {
        closeSync(this.readFd);
        this.readFd = openSync(this.path, 'r');
        this.readIno = fstatSync(this.readFd).ino;
        // A rotated file repeats older lines: only events newer than the last one seen are news.
        this.dispatched = 0;
        this.dispatchFrom(this.readFd, 0, this.lastTimeNano);
      }
    } catch (err) {
      this.logger.error({ err, path: this.path }, 'cannot read the events journal');
    }
  }

  private dispatchFrom(fd: number, from: number, newerThan: bigint | undefined): void {
    const size = fstatSync(fd).size;
    if (size <= from) return;
    const reader = new JournalReader(fd, from, size);
    for (let lines = reader.nextLines(); lines !== undefined; lines = reader.nextLines()) {
      for (const line of lines) {
        if (line === '') continue;
        const ev = decodeJournalLine(line);
        if (ev === undefined) {
          this.logger.warn({ line: line.slice(0, 200) }, 'skipping an invalid events journal line');
          continue;
        }
        if (newerThan !== undefined && ev.timeNano <= newerThan) continue;
        if (ev.timeNano > this.lastTimeNano) this.lastTimeNano = ev.timeNano;
        this.dispatch(ev);
      }
    }
    this.dispatched = reader.consumed;
  }

  private dispatch(ev: PodmanEvent): void {
    for (const sub of [...this.subscribers]) sub.deliver(ev);
  }

  /** @internal */
  unregister(sub: Subscription): void {
    this.subscribers.delete(sub);
  }

  /** Number of live subscriptions (for metrics and leak tests). */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Subscribes to events. Registration is immediate, so nothing emitted after this call is missed
   * (wait-before-start). With `since` or `until` the journal is replayed first (podman: FromStart),
   * then live events follow without gap or duplicate; without either, only live events. The stream
   * ends at `until`, when `signal` aborts (everything released at once), when the consumer stops
   * iterating, or on close(); a subscriber more than `queueLimit` events behind gets
   * EventSubscriberOverflowError after its queued events.
   * @throws BadRequestError for invalid filters (before anything is registered)
   */
  subscribe(filter: EventFilter | EventFilterInput | undefined, since?: Date, until?: Date, signal?: AbortSignal): AsyncIterableIterator<PodmanEvent> {
    const compiled = filter instanceof EventFilter ? filter : EventFilter.parse(filter);
    const sinceNs = since === undefined ? undefined : BigInt(since.getTime()) * 1_000_000n;
    const untilNs = until === undefined ? undefined : BigInt(until.getTime()) * 1_000_000n;
    const sub = new Subscription(this, compiled, sinceNs, untilNs, signal, this.queueLimit);
    if (this.closed || signal?.aborted) {
      sub.start(undefined, 0, false);
      sub.finish();
      return sub;
    }
    this.pump(); // the cut below must include everything already in the file
    const replay = since !== undefined || until !== undefined;
    const live = untilNs === undefined || untilNs > nowNanos();
    let replayFd: number | undefined;
    if (replay && this.dispatched > 0) {
      // An fd of our own on the same file, opened now: a later rotation does not disturb the replay.
      replayFd = openSync(this.path, 'r');
      if (fstatSync(replayFd).ino !== this.readIno) {
        closeSync(replayFd);
        replayFd = undefined;
        this.logger.debug('events journal replaced during subscribe; replay skipped');
      }
    }
    if (live) this.subscribers.add(sub);
    sub.start(replayFd, this.dispatched, live);
    return sub;
  }

  /** Events in the journal matching the filters (stream=false), oldest first. */
  async query(filter: EventFilter | EventFilterInput | undefined, since?: Date, until?: Date): Promise<PodmanEvent[]> {
    const compiled = filter instanceof EventFilter ? filter : EventFilter.parse(filter);
    const sinceNs = since === undefined ? undefined : BigInt(since.getTime()) * 1_000_000n;
    const untilNs = until === undefined ? undefined : BigInt(until.getTime()) * 1_000_000n;
    const fd = openSync(this.path, 'r');
    const out: PodmanEvent[] = [];
    try {
      const reader = new JournalReader(fd, 0, fstatSync(fd).size);
      for (let lines = reader.nextLines(); lines !== undefined; lines = reader.nextLines()) {
        for (const line of lines) {
          const ev = line === '' ? undefined : decodeJournalLine(line);
          if (ev === undefined) continue;
          if (sinceNs !== undefined && !(ev.timeNano > sinceNs)) continue;
          if (untilNs !== undefined && !(ev.timeNano < untilNs)) continue;
          if (compiled.matches(ev)) out.push(ev);
        }
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }

  /** Stops watching, ends every subscription (their iterators finish), closes the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.pump();
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    for (const sub of [...this.subscribers]) sub.endLive();
    this.subscribers.clear();
    closeSync(this.readFd);
  }
}
