/**
 * Reading conmon's k8s-file container logs, and framing them for the logs/attach endpoints.
 *
 * File format (conmon ctr_logging.c), one record per line:
 *   `<YYYY-MM-DDTHH:MM:SS.nnnnnnnnn±HH:MM> <stdout|stderr> <F|P> <bytes>\n`
 * `F` marks a chunk that ended the container's line, `P` a chunk without its newline (conmon still
 * ends the file line so the file stays line-oriented). Readers merge `P` chunks into the next `F`
 * chunk of the same stream, so a line that the container wrote in two pieces comes out once.
 *
 * The reader works on Buffers (indexOf + fixed-position checks, no per-line regex or decoding) and
 * yields one batch of records per read so a 100 MiB log streams at disk speed.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { BadRequestError } from '../errors.js';

/** 1 = stdout, 2 = stderr: the values used as stream byte in multiplexed frames. */
export type LogStream = 1 | 2;

/** One log record as returned by the reader. */
export interface LogRecord {
  /** Millisecond-precision time of the chunk that completed the record. Shared between records with
   *  the same timestamp: do not mutate. */
  time: Date;
  /** The timestamp exactly as conmon wrote it (RFC3339 with 9 fractional digits and an offset). */
  timestamp: string;
  stream: LogStream;
  /** True only for a trailing chunk that never received its newline (the container ended mid-line,
   *  or the reader stopped); such a record is framed without the trailing "\n". */
  partial: boolean;
  /** The bytes the container wrote, without the newline. May be a view into a larger read buffer. */
  data: Buffer;
}

/** One file line parsed by {@link parseLogLine}. */
export interface ParsedLogLine {
  time: Date;
  timestamp: string;
  stream: LogStream;
  partial: boolean;
  text: string;
}

export interface ReadLogsOptions {
  /** Only records strictly after this instant (podman's `LogLine.Since`). */
  since?: Date;
  /** Only records strictly before this instant; reading stops at the first record after it. */
  until?: Date;
  /** Number of complete lines to take from the end of the file; -1 or undefined = all. */
  tail?: number;
  follow: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Asked when follow starts and on every wake-up; false = read to EOF once more and stop. */
  isRunning: () => boolean;
  /** Resolves when the container dies (must resolve at once if it is already dead). The signal is
   *  the reader's own: it fires when the reader stops, so the engine can drop its listener. */
  waitExit: (signal: AbortSignal) => Promise<void>;
  /** Aborting (client disconnect) stops the reader and releases its watcher and file at once. */
  signal: AbortSignal;
  logger?: Logger;
}

const NEWLINE = 0x0a;
const SPACE = 0x20;
/** First reads are large for throughput; once caught up, follow reads are small appends. */
const CATCH_UP_CHUNK = 1024 * 1024;
const FOLLOW_CHUNK = 64 * 1024;
const TAIL_BLOCK = 64 * 1024;
/** After tail has its lines, how far back it keeps looking for `P` chunks that belong to them. */
const TAIL_PREFIX_LOOKBACK = 1024 * 1024;
/** conmon writes at most 8 KiB of text per line; anything far longer is not a log line and is skipped
 *  rather than buffered. */
const MAX_LINE_BYTES = 8 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Timestamps

/** A parsed RFC3339 instant: epoch milliseconds plus the nanoseconds below the millisecond. */
export interface Instant {
  ms: number;
  subMsNanos: number;
}

function digitsAt(s: string | Buffer, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const c = typeof s === 'string' ? s.charCodeAt(i) : s[i]!;
    const d = c - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

function charAt(s: string | Buffer, i: number): number {
  return typeof s === 'string' ? s.charCodeAt(i) : (s[i] ?? -1);
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function utcMillis(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (year >= 100) return ms;
  // Date.UTC maps years 0-99 to 1900-1999.
  const d = new Date(ms);
  d.setUTCFullYear(year);
  return d.getTime();
}

function validDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]!) return false;
  if (month === 2 && day === 29) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return true;
}

/**
 * Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` in s[start, end). With `zoneOptional` a missing
 * zone means UTC (Go's layouts without a zone). Returns undefined when the text does not match.
 */
function parseRFC3339At(s: string | Buffer, start: number, end: number, zoneOptional = false): Instant | undefined {
  if (end - start < 19) return undefined;
  const year = digitsAt(s, start, 4);
  const month = digitsAt(s, start + 5, 2);
  const day = digitsAt(s, start + 8, 2);
  const hour = digitsAt(s, start + 11, 2);
  const minute = digitsAt(s, start + 14, 2);
  const second = digitsAt(s, start + 17, 2);
  if (
    year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 ||
    charAt(s, start + 4) !== 0x2d || charAt(s, start + 7) !== 0x2d || charAt(s, start + 10) !== 0x54 ||
    charAt(s, start + 13) !== 0x3a || charAt(s, start + 16) !== 0x3a
  ) {
    return undefined;
  }
  if (!validDate(year, month, day) || hour > 23 || minute > 59 || second > 59) return undefined;
  let pos = start + 19;
  let nanos = 0;
  const sep = charAt(s, pos);
  if (sep === 0x2e || sep === 0x2c) {
    pos++;
    let digits = 0;
    while (pos < end) {
      const d = charAt(s, pos) - 48;
      if (d < 0 || d > 9) break;
      if (digits < 9) nanos = nanos * 10 + d;
      digits++;
      pos++;
    }
    if (digits === 0) return undefined;
    for (let i = Math.min(digits, 9); i < 9; i++) nanos *= 10;
  }
  let offsetMinutes = 0;
  if (pos === end) {
    if (!zoneOptional) return undefined;
  } else {
    const z = charAt(s, pos);
    if (z === 0x5a && pos + 1 === end) {
      // 'Z'
    } else if ((z === 0x2b || z === 0x2d) && pos + 6 === end && charAt(s, pos + 3) === 0x3a) {
      const oh = digitsAt(s, pos + 1, 2);
      const om = digitsAt(s, pos + 4, 2);
      if (oh < 0 || om < 0 || oh > 23 || om > 59) return undefined;
      offsetMinutes = (oh * 60 + om) * (z === 0x2d ? -1 : 1);
    } else {
      return undefined;
    }
  }
  const ms = utcMillis(year, month, day, hour, minute, second) - offsetMinutes * 60_000 + Math.floor(nanos / 1e6);
  return { ms, subMsNanos: nanos % 1e6 };
}

/** Parses an RFC3339 / RFC3339Nano instant (zone required). */
export function parseRFC3339(text: string): Instant | undefined {
  return parseRFC3339At(text, 0, text.length);
}

/** Nanoseconds since the epoch of an RFC3339 / RFC3339Nano instant. */
export function parseRFC3339Nano(text: string): bigint | undefined {
  const instant = parseRFC3339(text);
  return instant === undefined ? undefined : BigInt(instant.ms) * 1_000_000n + BigInt(instant.subMsNanos);
}

/** Go's `time.RFC3339Nano` rendering in UTC (fraction without trailing zeros, omitted when zero). */
export function formatRFC3339Nano(nanos: bigint): string {
  let seconds = nanos / 1_000_000_000n;
  let fraction = nanos % 1_000_000_000n;
  if (fraction < 0n) {
    fraction += 1_000_000_000n;
    seconds -= 1n;
  }
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  if (fraction === 0n) return `${base}Z`;
  return `${base}.${fraction.toString().padStart(9, '0').replace(/0+$/, '')}Z`;
}

// Go durations: "300ms", "-1.5h", "2h45m". Units in nanoseconds.
const DURATION_UNITS: Record<string, number> = {
  ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};
// The micro sign and the Greek mu escaped: the bundle stays ASCII, which the launcher reads fastest.
const DURATION_RE = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/;
const DURATION_PART_RE = /(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g;

/** Nanoseconds of a Go duration string, or undefined when it is not one. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!DURATION_RE.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(DURATION_PART_RE)) total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
  return text.startsWith('-') ? -total : total;
}

const UNIX_FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const DATE_ONLY_RE = /^(\d{4})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})?$/;

/**
 * Parses a `since`/`until` query value like podman's `util.ParseInputTime`: RFC3339(Nano) with or
 * without zone (none = UTC), a date with optional zone, Unix seconds with optional fraction, or a
 * Go duration meaning now − d (`since`) or now + d (`until`). Go's zero time
 * "0001-01-01T00:00:00Z" means "not set" and gives undefined. Dates keep millisecond precision.
 * @throws BadRequestError "unable to interpret time value"
 */
export function parseTime(input: string, direction: 'since' | 'until' = 'since', now: Date = new Date()): Date | undefined {
  const text = input;
  const instant = parseRFC3339At(text, 0, text.length, true);
  if (instant !== undefined) {
    if (instant.ms === GO_ZERO_TIME_MS) return undefined;
    return new Date(instant.ms);
  }
  const dateOnly = DATE_ONLY_RE.exec(text);
  if (dateOnly) {
    const full = `${dateOnly[1]}-${dateOnly[2]}-${dateOnly[3]}T00:00:00${dateOnly[4] ?? 'Z'}`;
    const parsed = parseRFC3339At(full, 0, full.length);
    if (parsed !== undefined) return parsed.ms === GO_ZERO_TIME_MS ? undefined : new Date(parsed.ms);
  }
  if (UNIX_FLOAT_RE.test(text)) {
    const seconds = Number(text);
    if (Number.isFinite(seconds)) return new Date(Math.trunc(seconds * 1000));
  }
  const nanos = parseGoDuration(text);
  if (nanos !== undefined) {
    const deltaMs = nanos / 1e6;
    return new Date(now.getTime() + (direction === 'since' ? -deltaMs : deltaMs));
  }
  throw new BadRequestError('unable to interpret time value');
}

const GO_ZERO_TIME_MS = utcMillis(1, 1, 1, 0, 0, 0);

// ---------------------------------------------------------------------------------------------
// Line parsing

/** Where the fields of one file line are; undefined = malformed line. */
interface LineHeader {
  tsEnd: number;
  stream: LogStream;
  partial: boolean;
  dataStart: number;
}

/** Checks the `<ts> stdout|stderr F|P ` structure of buf[start, end) without parsing the time. */
function scanHeader(buf: Buffer, start: number, end: number): LineHeader | undefined {
  const sp = buf.indexOf(SPACE, start);
  if (sp < 0 || sp >= end || sp - start < 20) return undefined;
  // "stdout F" / "stderr P" occupy sp+1 .. sp+8, then a space (or the line ends: empty text).
  if (sp + 9 > end) return undefined;
  if (buf[sp + 1] !== 0x73 || buf[sp + 2] !== 0x74 || buf[sp + 3] !== 0x64 || buf[sp + 7] !== SPACE) return undefined;
  let stream: LogStream;
  if (buf[sp + 4] === 0x6f && buf[sp + 5] === 0x75 && buf[sp + 6] === 0x74) stream = 1;
  else if (buf[sp + 4] === 0x65 && buf[sp + 5] === 0x72 && buf[sp + 6] === 0x72) stream = 2;
  else return undefined;
  const flag = buf[sp + 8];
  if (flag !== 0x46 && flag !== 0x50) return undefined;
  if (sp + 9 < end && buf[sp + 9] !== SPACE) return undefined;
  return { tsEnd: sp, stream, partial: flag === 0x50, dataStart: Math.min(sp + 10, end) };
}

/**
 * Parses one k8s-file line (without its newline). Returns undefined for a malformed line; the text
 * keeps every space after the third field (podman re-joins them).
 */
export function parseLogLine(line: string): ParsedLogLine | undefined {
  const buf = Buffer.from(line, 'utf8');
  let end = buf.length;
  if (end > 0 && buf[end - 1] === NEWLINE) end--;
  const header = scanHeader(buf, 0, end);
  if (header === undefined) return undefined;
  const instant = parseRFC3339At(buf, 0, header.tsEnd);
  if (instant === undefined) return undefined;
  return {
    time: new Date(instant.ms),
    timestamp: buf.toString('latin1', 0, header.tsEnd),
    stream: header.stream,
    partial: header.partial,
    text: buf.toString('utf8', header.dataStart, end),
  };
}

// ---------------------------------------------------------------------------------------------
// Forward parser with partial merging, filters and tail skipping

/**
 * The timestamp of one or more file lines. Lines of one conmon read share it, so records point at one
 * object; the Date and the string are only built when somebody asks for them.
 */
class LogTime {
  private dateValue: Date | undefined;
  private textValue: string | undefined;

  constructor(
    readonly ms: number,
    readonly subMsNanos: number,
    /** The timestamp bytes are buf[start, end). */
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  get date(): Date {
    this.dateValue ??= new Date(this.ms);
    return this.dateValue;
  }

  get text(): string {
    this.textValue ??= this.buf.toString('latin1', this.start, this.end);
    return this.textValue;
  }
}

/** A record produced by the reader; `time` and `timestamp` are computed on first access. */
class ReadRecord implements LogRecord {
  constructor(
    readonly stream: LogStream,
    readonly partial: boolean,
    readonly data: Buffer,
    readonly logTime: LogTime,
  ) {}

  get time(): Date {
    return this.logTime.date;
  }

  get timestamp(): string {
    return this.logTime.text;
  }
}

class RecordParser {
  /** Complete records to drop before emitting (set by the tail scan). */
  skip = 0;
  /** Set once a record after `until` was seen: the reader ends. */
  stopped = false;
  private readonly pending: [undefined, Buffer[] | undefined, Buffer[] | undefined] = [undefined, undefined, undefined];
  private readonly pendingTime: [undefined, LogTime | undefined, LogTime | undefined] = [undefined, undefined, undefined];
  private lastTime: LogTime | undefined;
  /** Epoch ms of midnight UTC for the date bytes in dayKey (avoids Date.UTC on every timestamp). */
  private readonly dayKey = Buffer.alloc(10);
  private dayMs = Number.NaN;
  private readonly sinceMs: number | undefined;
  private readonly untilMs: number | undefined;

  constructor(
    private readonly wantStdout: boolean,
    private readonly wantStderr: boolean,
    since: Date | undefined,
    until: Date | undefined,
  ) {
    this.sinceMs = since?.getTime();
    this.untilMs = until?.getTime();
  }

  /** Parses every complete line of buf[start, end); returns the offset after the last newline. */
  parse(buf: Buffer, start: number, end: number, out: LogRecord[]): number {
    let pos = start;
    while (pos < end && !this.stopped) {
      const nl = buf.indexOf(NEWLINE, pos);
      if (nl < 0 || nl >= end) break;
      this.line(buf, pos, nl, out);
      pos = nl + 1;
    }
    return this.stopped ? end : pos;
  }

  /** A last line without newline (file cut mid-write), parsed when the reader finishes. */
  parseTrailing(buf: Buffer, out: LogRecord[]): void {
    if (buf.length > 0 && !this.stopped) this.line(buf, 0, buf.length, out);
  }

  /** Emits the chunks still waiting for their newline as partial records. */
  flush(out: LogRecord[]): void {
    for (const stream of [1, 2] as const) {
      const chunks = this.pending[stream];
      const time = this.pendingTime[stream];
      this.pending[stream] = undefined;
      this.pendingTime[stream] = undefined;
      if (chunks === undefined || time === undefined || this.stopped) continue;
      if (!this.passesTime(time)) continue;
      out.push(new ReadRecord(stream, true, Buffer.concat(chunks), time));
    }
  }

  private line(buf: Buffer, start: number, end: number, out: LogRecord[]): void {
    const header = scanHeader(buf, start, end);
    if (header === undefined) return;
    const time = this.timeOf(buf, start, header.tsEnd);
    if (time === undefined) return;
    const { stream } = header;
    const wanted = stream === 1 ? this.wantStdout : this.wantStderr;
    if (header.partial) {
      if (!wanted) return;
      const chunk = buf.subarray(header.dataStart, end);
      const chunks = this.pending[stream];
      if (chunks === undefined) {
        this.pending[stream] = [chunk];
      } else {
        chunks.push(chunk);
      }
      this.pendingTime[stream] = time;
      return;
    }
    if (this.skip > 0) {
      this.skip--;
      this.pending[stream] = undefined;
      this.pendingTime[stream] = undefined;
      return;
    }
    if (!wanted) return;
    let data = buf.subarray(header.dataStart, end);
    const chunks = this.pending[stream];
    if (chunks !== undefined) {
      chunks.push(data);
      data = Buffer.concat(chunks);
      this.pending[stream] = undefined;
      this.pendingTime[stream] = undefined;
    }
    if (!this.passesTime(time)) return;
    out.push(new ReadRecord(stream, false, data, time));
  }

  /** since: strictly after; until: strictly before, and anything after it ends the read. */
  private passesTime(t: LogTime): boolean {
    if (this.untilMs !== undefined) {
      if (t.ms > this.untilMs || (t.ms === this.untilMs && t.subMsNanos > 0)) {
        this.stopped = true;
        return false;
      }
      if (t.ms === this.untilMs) return false;
    }
    if (this.sinceMs !== undefined && !(t.ms > this.sinceMs || (t.ms === this.sinceMs && t.subMsNanos > 0))) return false;
    return true;
  }

  /** Lines of one conmon read share a timestamp: reuse the previous one when the bytes match. */
  private timeOf(buf: Buffer, start: number, end: number): LogTime | undefined {
    const last = this.lastTime;
    const length = end - start;
    if (last !== undefined && length === last.end - last.start) {
      const lastBuf = last.buf;
      const delta = last.start - start;
      let i = end - 1;
      while (i >= start && buf[i] === lastBuf[i + delta]) i--;
      if (i < start) return last;
    }
    const instant = this.parseInstant(buf, start, end);
    if (instant === undefined) return undefined;
    const time = new LogTime(instant.ms, instant.subMsNanos, buf, start, end);
    this.lastTime = time;
    return time;
  }

  /** parseRFC3339At with the day's epoch cached: timestamps change far more often than dates. */
  private parseInstant(buf: Buffer, start: number, end: number): Instant | undefined {
    const key = this.dayKey;
    let sameDay = !Number.isNaN(this.dayMs) && end - start >= 19;
    for (let i = 0; sameDay && i < 10; i++) if (buf[start + i] !== key[i]) sameDay = false;
    if (!sameDay) {
      const instant = parseRFC3339At(buf, start, end);
      if (instant === undefined) return undefined;
      const dayMs = parseRFC3339At(buf.toString('latin1', start, start + 10) + 'T00:00:00Z', 0, 20);
      if (dayMs !== undefined) {
        buf.copy(key, 0, start, start + 10);
        this.dayMs = dayMs.ms;
      }
      return instant;
    }
    // Same date: only the time of day, fraction and zone remain.
    const hour = twoDigits(buf, start + 11);
    const minute = twoDigits(buf, start + 14);
    const second = twoDigits(buf, start + 17);
    if (
      hour < 0 || minute < 0 || second < 0 || hour > 23 || minute > 59 || second > 59 ||
      buf[start + 10] !== 0x54 || buf[start + 13] !== 0x3a || buf[start + 16] !== 0x3a
    ) {
      return undefined;
    }
    let pos = start + 19;
    let nanos = 0;
    if (buf[pos] === 0x2e || buf[pos] === 0x2c) {
      pos++;
      let digits = 0;
      while (pos < end) {
        const d = buf[pos]! - 48;
        if (d < 0 || d > 9) break;
        if (digits < 9) nanos = nanos * 10 + d;
        digits++;
        pos++;
      }
      if (digits === 0) return undefined;
      for (let i = Math.min(digits, 9); i < 9; i++) nanos *= 10;
    }
    let offsetMinutes = 0;
    const z = buf[pos];
    if (z === 0x5a && pos + 1 === end) {
      // 'Z'
    } else if ((z === 0x2b || z === 0x2d) && pos + 6 === end && buf[pos + 3] === 0x3a) {
      const oh = twoDigits(buf, pos + 1);
      const om = twoDigits(buf, pos + 4);
      if (oh < 0 || om < 0 || oh > 23 || om > 59) return undefined;
      offsetMinutes = (oh * 60 + om) * (z === 0x2d ? -1 : 1);
    } else {
      return undefined;
    }
    const ms = this.dayMs + hour * 3_600_000 + minute * 60_000 + second * 1000 - offsetMinutes * 60_000 + Math.floor(nanos / 1e6);
    return { ms, subMsNanos: nanos % 1e6 };
  }
}

function twoDigits(buf: Buffer, at: number): number {
  const a = buf[at]! - 48;
  const b = buf[at + 1]! - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9) return -1;
  return a * 10 + b;
}

// ---------------------------------------------------------------------------------------------
// Tail: find where the last N complete lines start by reading the file backwards in blocks

interface TailStart {
  /** Offset of the first byte to parse forward from. */
  offset: number;
  /** Complete records in [offset, EOF) that come before the N wanted ones. */
  skip: number;
}

/**
 * Walks lines from the end of the file until `lines` complete (`F`) lines are found, then keeps going
 * over the `P` chunks that begin those records (possibly interleaved with the other stream's lines),
 * so the forward parse can merge them. Holds one block plus one line in memory, never the file.
 */
async function findTailStart(fh: FileHandle, size: number, lines: number): Promise<TailStart> {
  if (lines === 0) return { offset: size, skip: 0 };
  let start = size; // offset of the earliest byte the forward parse must see
  let fScanned = 0; // F lines visited so far (walking backwards)
  let fAtStart = 0; // F lines in [start, EOF)
  let counted = 0; // F lines of the wanted window
  const open = [false, false, false]; // per stream: its earliest included record may begin earlier
  let quotaOffset = -1;
  const done = (): TailStart => ({ offset: start, skip: fAtStart - counted });

  /** Returns false when the scan can stop. */
  const visit = (buf: Buffer, s: number, e: number, offset: number): boolean => {
    const header = scanHeader(buf, s, e);
    if (header === undefined || parseRFC3339At(buf, s, header.tsEnd) === undefined) return true;
    const { stream, partial } = header;
    if (!partial) fScanned++;
    if (counted < lines) {
      start = offset;
      fAtStart = fScanned;
      open[stream] = true;
      if (!partial) counted++;
      if (counted === lines) quotaOffset = offset;
      return true;
    }
    if (!partial) {
      open[stream] = false;
    } else if (open[stream]) {
      start = offset;
      fAtStart = fScanned;
    }
    return open[1] || open[2];
  };

  let end = size; // [0, end) not read yet
  // The line being assembled: its bytes from `end` up to the newline after it, in file order.
  let headParts: Buffer[] = [];
  let headLength = 0;
  let sawNewline = false;
  while (end > 0) {
    if (quotaOffset >= 0 && quotaOffset - end > TAIL_PREFIX_LOOKBACK) return done();
    const blockStart = Math.max(0, end - TAIL_BLOCK);
    const block = Buffer.allocUnsafe(end - blockStart);
    const { bytesRead } = await fh.read(block, 0, block.length, blockStart);
    const data = block.subarray(0, bytesRead);
    let lineEnd = data.length; // exclusive end, within data, of the line continuing into headParts
    for (let nl = data.lastIndexOf(NEWLINE); nl >= 0; nl = nl > 0 ? data.lastIndexOf(NEWLINE, nl - 1) : -1) {
      const lineOffset = blockStart + nl + 1;
      if (!sawNewline) {
        // Bytes after the file's last newline: a line still being written, or cut. Parsed forward.
        sawNewline = true;
        start = lineOffset;
      }
      let keepGoing: boolean;
      if (headLength === 0) {
        keepGoing = visit(data, nl + 1, lineEnd, lineOffset);
      } else {
        const line = headLength > MAX_LINE_BYTES ? undefined : Buffer.concat([data.subarray(nl + 1, lineEnd), ...headParts]);
        keepGoing = line === undefined || visit(line, 0, line.length, lineOffset);
        headParts = [];
        headLength = 0;
      }
      if (!keepGoing) return done();
      lineEnd = nl;
    }
    if (lineEnd > 0 && headLength <= MAX_LINE_BYTES) headParts.unshift(data.subarray(0, lineEnd));
    headLength += lineEnd;
    end = blockStart;
  }
  if (!sawNewline) return { offset: 0, skip: 0 };
  if (headParts.length > 0 && headLength <= MAX_LINE_BYTES) {
    const line = Buffer.concat(headParts); // the file's first line
    visit(line, 0, line.length, 0);
  }
  return done();
}

// ---------------------------------------------------------------------------------------------
// The reader

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `fire` at the absolute time `atMs`; unlike a bare setTimeout, correct beyond 24.8 days. */
export function timerAt(atMs: number, fire: () => void): { clear(): void } {
  let handle: NodeJS.Timeout | undefined;
  let cleared = false;
  const arm = (): void => {
    const delay = atMs - Date.now();
    if (delay <= 0) {
      if (!cleared) fire();
      return;
    }
    handle = setTimeout(arm, Math.min(delay, MAX_TIMER_MS));
  };
  arm();
  return {
    clear: () => {
      cleared = true;
      clearTimeout(handle);
    },
  };
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/**
 * Reads a k8s-file log as batches of records (one batch per read). See {@link readLogs}.
 * Every resource (file handle, directory watcher, timer, exit listener) is released when the
 * iteration ends, when the consumer stops iterating, or as soon as `opts.signal` fires — even while
 * the consumer is not pulling.
 */
export async function* readLogBatches(path: string, opts: ReadLogsOptions): AsyncGenerator<LogRecord[], void, undefined> {
  const { signal } = opts;
  if (signal.aborted) return;
  const parser = new RecordParser(opts.stdout, opts.stderr, opts.since, opts.until);
  const tail = opts.tail === undefined || opts.tail < 0 ? -1 : Math.floor(opts.tail);
  const fileName = basename(path);
  const tmpName = `${fileName}.tmp`;

  let fh: FileHandle | undefined;
  let ino = -1;
  let offset = 0;
  let carry: Buffer = Buffer.alloc(0);
  let discarding = false; // inside an over-long line: skip to its newline
  let firstOpen = true;
  let chunkSize = CATCH_UP_CHUNK;

  // Wake-up plumbing for follow: flags set by event sources, one promise awaited at a time.
  let dirty = false;
  let exited = false;
  let untilReached = false;
  let wake: (() => void) | undefined;
  const wakeUp = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let watcher: FSWatcher | undefined;
  let untilTimer: { clear(): void } | undefined;
  const stopSignal = new AbortController();

  const release = (): void => {
    watcher?.close();
    watcher = undefined;
    untilTimer?.clear();
    untilTimer = undefined;
    stopSignal.abort();
    const handle = fh;
    fh = undefined;
    // FileHandle.close waits for a read in flight, so closing here cannot hit a reused fd.
    handle?.close().catch(() => undefined);
    wakeUp();
  };
  signal.addEventListener('abort', release, { once: true });

  const openLog = async (): Promise<boolean> => {
    try {
      const handle = await open(path, 'r');
      if (signal.aborted) {
        await handle.close();
        return false;
      }
      const info = await handle.stat();
      fh = handle;
      ino = info.ino;
      offset = 0;
      carry = Buffer.alloc(0);
      discarding = false;
      if (firstOpen && tail >= 0) {
        const start = await findTailStart(handle, info.size, tail);
        offset = start.offset;
        parser.skip = start.skip;
      }
      firstOpen = false;
      return true;
    } catch (err) {
      // A log that appears later is read from its start: tail only applies to what existed.
      firstOpen = false;
      if (isNotFound(err) || signal.aborted) return false;
      throw err;
    }
  };

  /** Reads from `offset` to the current end of file; yields one batch per read. */
  async function* readToEof(): AsyncGenerator<LogRecord[], void, undefined> {
    while (fh !== undefined && !parser.stopped) {
      const size = Math.max(chunkSize, carry.length * 2);
      const buf = Buffer.allocUnsafe(size);
      carry.copy(buf, 0);
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, carry.length, size - carry.length, offset));
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      if (bytesRead === 0) {
        chunkSize = FOLLOW_CHUNK;
        return;
      }
      offset += bytesRead;
      const valid = buf.subarray(0, carry.length + bytesRead);
      let from = 0;
      if (discarding) {
        const nl = valid.indexOf(NEWLINE);
        if (nl < 0) {
          carry = Buffer.alloc(0);
          continue;
        }
        discarding = false;
        from = nl + 1;
      }
      const batch: LogRecord[] = [];
      const consumed = parser.parse(valid, from, valid.length, batch);
      carry = valid.subarray(consumed);
      if (carry.length > MAX_LINE_BYTES) {
        carry = Buffer.alloc(0);
        discarding = true;
      }
      if (batch.length > 0) yield batch;
      if (signal.aborted) return;
    }
  }

  /** After a wake-up: notice conmon's truncate-and-rename (new inode) or an in-place truncation. */
  const checkReplaced = async (): Promise<void> => {
    if (fh === undefined) return;
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      if (isNotFound(err)) return; // removed: keep the old handle until a new file appears
      throw err;
    }
    if (fh === undefined) return;
    if (info.ino !== ino) {
      opts.logger?.debug({ path }, 'log file replaced (log-size-max rotation), reopening');
      const old = fh;
      fh = undefined;
      await old.close();
      if (!signal.aborted) await openLog();
    } else if (info.size < offset) {
      offset = 0;
      carry = Buffer.alloc(0);
      discarding = false;
    }
  };

  try {
    await openLog();
    if (signal.aborted) return;
    const following = opts.follow && opts.isRunning();
    if (following) {
      try {
        watcher = watch(dirname(path), (_event, name) => {
          if (name === null || name === fileName || name === tmpName) {
            dirty = true;
            wakeUp();
          }
        });
        watcher.on('error', () => {
          // The directory went away (container removed): treat like an exit.
          exited = true;
          wakeUp();
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // No directory to watch: nothing will be written; wait for the exit only.
      }
      if (opts.until !== undefined) {
        untilTimer = timerAt(opts.until.getTime() + 1, () => {
          untilReached = true;
          wakeUp();
        });
      }
      opts.waitExit(stopSignal.signal).then(
        () => {
          exited = true;
          wakeUp();
        },
        () => {
          exited = true;
          wakeUp();
        },
      );
    }

    for (;;) {
      if (signal.aborted) return;
      // Decide before reading: a flag that was already set means this read is the final one.
      const finalPass = !following || exited || untilReached || !opts.isRunning();
      dirty = false;
      if (fh === undefined) await openLog();
      yield* readToEof();
      if (parser.stopped || signal.aborted) break;
      if (finalPass) break;
      await checkReplaced();
      // Anything that happened during the read is handled by another pass, not by waiting.
      if (dirty || exited || untilReached || signal.aborted) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    if (signal.aborted) return;
    const last: LogRecord[] = [];
    parser.parseTrailing(carry, last);
    parser.flush(last);
    if (last.length > 0) yield last;
  } finally {
    signal.removeEventListener('abort', release);
    release();
  }
}

/**
 * Reads a k8s-file log: tail (counted in complete lines, from the end, reading backwards), since /
 * until, stdout/stderr selection, `P` chunks merged into their line, and follow (fs.watch on the log's
 * directory; a missing file that appears later and conmon's rotation are handled). Follow stops at EOF
 * when the container is not running, and after one final read when it dies. A missing log is empty.
 */
export async function* readLogs(path: string, opts: ReadLogsOptions): AsyncGenerator<LogRecord, void, undefined> {
  for await (const batch of readLogBatches(path, opts)) yield* batch;
}

// ---------------------------------------------------------------------------------------------
// Framing

export interface EncodeLogOptions {
  /** Prefix `<RFC3339 seconds timestamp> ` (podman 4.3.1 uses Go's time.RFC3339, no fraction). */
  timestamps: boolean;
  /** 8-byte `[stream,0,0,0,len_be32]` header (false for compat requests on TTY containers). */
  multiplexed: boolean;
}

let lastStampSource = '';
let lastStamp: Buffer = Buffer.alloc(0);

/** Where the zone of an RFC3339 timestamp in t[start, end) begins. */
function zoneStartOf(t: Buffer | string, start: number, end: number): number {
  const c = charAt(t, end - 6);
  return end - start >= 25 && (c === 0x2b || c === 0x2d) ? end - 6 : end - 1;
}

function isZeroOffset(t: Buffer | string, zoneStart: number, end: number): boolean {
  if (end - zoneStart !== 6) return false;
  return charAt(t, zoneStart + 1) === 0x30 && charAt(t, zoneStart + 2) === 0x30 && charAt(t, zoneStart + 4) === 0x30 && charAt(t, zoneStart + 5) === 0x30;
}

/** `2024-01-02T03:04:05.123456789+01:00` → `2024-01-02T03:04:05+01:00 ` (zero offset → `Z`). */
function stampPrefix(timestamp: string): Buffer {
  if (timestamp === lastStampSource) return lastStamp;
  const zoneStart = zoneStartOf(timestamp, 0, timestamp.length);
  const zone = isZeroOffset(timestamp, zoneStart, timestamp.length) ? 'Z' : timestamp.slice(zoneStart);
  lastStampSource = timestamp;
  lastStamp = Buffer.from(`${timestamp.slice(0, 19)}${zone} `, 'latin1');
  return lastStamp;
}

function stampLength(rec: LogRecord): number {
  if (rec instanceof ReadRecord) {
    const t = rec.logTime;
    const zoneStart = zoneStartOf(t.buf, t.start, t.end);
    return 19 + (isZeroOffset(t.buf, zoneStart, t.end) ? 1 : t.end - zoneStart) + 1;
  }
  return stampPrefix(rec.timestamp).length;
}

/** Writes the timestamp prefix; records from the reader are copied from the file bytes directly. */
function writeStamp(rec: LogRecord, out: Buffer, at: number): number {
  if (!(rec instanceof ReadRecord)) return at + stampPrefix(rec.timestamp).copy(out, at);
  const t = rec.logTime;
  let pos = at + t.buf.copy(out, at, t.start, t.start + 19);
  const zoneStart = zoneStartOf(t.buf, t.start, t.end);
  if (isZeroOffset(t.buf, zoneStart, t.end)) out[pos++] = 0x5a;
  else pos += t.buf.copy(out, pos, zoneStart, t.end);
  out[pos++] = SPACE;
  return pos;
}

function encodedLength(rec: LogRecord, opts: EncodeLogOptions): number {
  return (opts.multiplexed ? 8 : 0) + (opts.timestamps ? stampLength(rec) : 0) + rec.data.length + (rec.partial ? 0 : 1);
}

function encodeInto(rec: LogRecord, opts: EncodeLogOptions, out: Buffer, at: number): number {
  let pos = at;
  if (opts.multiplexed) {
    const payload = (opts.timestamps ? stampLength(rec) : 0) + rec.data.length + (rec.partial ? 0 : 1);
    out[pos] = rec.stream;
    out[pos + 1] = 0;
    out[pos + 2] = 0;
    out[pos + 3] = 0;
    out.writeUInt32BE(payload, pos + 4);
    pos += 8;
  }
  if (opts.timestamps) pos = writeStamp(rec, out, pos);
  pos += rec.data.copy(out, pos);
  if (!rec.partial) out[pos++] = NEWLINE;
  return pos;
}

/** One record framed like podman 4.3.1's LogsFromContainer. */
export function encodeLogRecord(rec: LogRecord, opts: EncodeLogOptions): Buffer {
  const out = Buffer.allocUnsafe(encodedLength(rec, opts));
  encodeInto(rec, opts, out, 0);
  return out;
}

/** A whole batch framed into one Buffer (one write per batch). */
export function encodeLogRecords(recs: readonly LogRecord[], opts: EncodeLogOptions): Buffer {
  let total = 0;
  for (const rec of recs) total += encodedLength(rec, opts);
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const rec of recs) pos = encodeInto(rec, opts, out, pos);
  return out;
}
