/**
 * Helpers for the attach and exec tests: a raw client for hijacked HTTP streams (the exact bytes of the answer,
 * stdin, half-close, multiplexed frame decoding) and a pseudo-terminal driver for the podman/docker CLIs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { spawn as spawnPty, type IPty } from 'node-pty';
import { FrameDecoder, type Frame } from '../../../src/stream/frames.js';
import { removeAllContainers, type Daemon } from '../../helpers/daemon.js';

export const PODMAN = 'podman';
export const DOCKER = 'docker';

export interface HijackRequest {
  method?: string;
  path: string;
  /** Sends `Connection: Upgrade` and `Upgrade: tcp`. */
  upgrade?: boolean;
  body?: unknown;
  headers?: Record<string, string>;
  /** Bytes written right behind the request, in the same write (pipelined stdin). */
  pipelined?: Buffer | string;
}

/**
 * One hijacked exchange on a fresh connection. `head` resolves with the status line and headers once they
 * arrived; `rest` collects every byte after them; `ended` resolves when the server closed its side.
 */
export class HijackClient {
  readonly socket: net.Socket;
  readonly head: Promise<string>;
  readonly ended: Promise<Buffer>;
  private received = Buffer.alloc(0);
  private headEnd = -1;
  private readonly waiters: { check: () => boolean }[] = [];

  constructor(socketPath: string, req: HijackRequest) {
    this.socket = net.connect({ path: socketPath, allowHalfOpen: true });
    const lines = [`${req.method ?? 'POST'} ${req.path} HTTP/1.1`, 'Host: d'];
    if (req.upgrade) lines.push('Connection: Upgrade', 'Upgrade: tcp');
    const body = req.body === undefined ? undefined : Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
    if (body) lines.push('Content-Type: application/json', `Content-Length: ${body.length}`);
    for (const [k, v] of Object.entries(req.headers ?? {})) lines.push(`${k}: ${v}`);
    const parts = [Buffer.from(lines.join('\r\n') + '\r\n\r\n')];
    if (body) parts.push(body);
    if (req.pipelined !== undefined) parts.push(Buffer.from(req.pipelined));
    this.socket.write(Buffer.concat(parts));

    let resolveHead!: (h: string) => void;
    let rejectHead!: (e: Error) => void;
    this.head = new Promise((resolve, reject) => {
      resolveHead = resolve;
      rejectHead = reject;
    });
    this.head.catch(() => undefined);
    this.socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      if (this.headEnd < 0) {
        const at = this.received.indexOf('\r\n\r\n');
        if (at >= 0) {
          this.headEnd = at + 4;
          resolveHead(this.received.toString('latin1', 0, this.headEnd));
        }
      }
      for (const w of [...this.waiters]) if (w.check()) this.waiters.splice(this.waiters.indexOf(w), 1);
    });
    this.ended = new Promise((resolve) => {
      const done = (): void => {
        if (this.headEnd < 0) rejectHead(new Error(`connection ended without a response head: ${JSON.stringify(this.received.toString('latin1'))}`));
        resolve(this.rest);
      };
      this.socket.once('end', done);
      this.socket.once('close', done);
      this.socket.on('error', () => undefined);
    });
  }

  /** Bytes after the response head so far. */
  get rest(): Buffer {
    return this.headEnd < 0 ? Buffer.alloc(0) : this.received.subarray(this.headEnd);
  }

  /** Resolves once `predicate(rest)` holds, rejects after `timeoutMs`. */
  waitFor(predicate: (rest: Buffer) => boolean, timeoutMs = 10_000, what = 'data'): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.rest.toString('latin1').slice(-400))}`));
      }, timeoutMs);
      const waiter = {
        check: (): boolean => {
          if (this.headEnd < 0 || !predicate(this.rest)) return false;
          clearTimeout(timer);
          resolve(this.rest);
          return true;
        },
      };
      if (!waiter.check()) this.waiters.push(waiter);
    });
  }

  /** Waits until the raw text after the head contains `text`. */
  waitForText(text: string, timeoutMs = 10_000): Promise<Buffer> {
    return this.waitFor((rest) => rest.toString('latin1').includes(text), timeoutMs, JSON.stringify(text));
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Half-close: the client's stdin is at EOF. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves when the server closed, with everything after the head; rejects after `timeoutMs`. */
  async done(timeoutMs = 20_000): Promise<Buffer> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`stream did not end; got ${JSON.stringify(this.rest.toString('latin1').slice(-400))}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.ended, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export function hijackRequest(d: Daemon, req: HijackRequest): HijackClient {
  return new HijackClient(d.socket, req);
}

/** Decodes a whole multiplexed stream; throws on a truncated or invalid one. */
export function decodeFrames(data: Buffer): Frame[] {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  decoder.push(data, (f) => frames.push({ stream: f.stream, payload: Buffer.from(f.payload) }));
  decoder.end();
  return frames;
}

/** The payloads of one stream id, joined. */
export function streamText(frames: Frame[], stream: number): string {
  return Buffer.concat(frames.filter((f) => f.stream === stream).map((f) => f.payload)).toString('utf8');
}

export const UPGRADED_HEAD = 'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n';
export const OK_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n';

/** Creates a container through the libpod API; returns its id. */
export async function createContainer(d: Daemon, spec: Record<string, unknown>): Promise<string> {
  const res = await d.request('POST', '/v4.3.1/libpod/containers/create', { image: 'localhost/busybox', ...spec });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`);
  return res.json<{ Id: string }>().Id;
}

export async function startContainer(d: Daemon, id: string): Promise<void> {
  const res = await d.request('POST', `/v4.3.1/libpod/containers/${id}/start`);
  if (res.status !== 204) throw new Error(`start failed: ${res.status} ${res.text}`);
}

export async function inspectState(d: Daemon, id: string): Promise<{ Status: string; Running: boolean; ExitCode: number }> {
  const res = await d.request('GET', `/v4.3.1/libpod/containers/${id}/json`);
  return res.json<{ State: { Status: string; Running: boolean; ExitCode: number } }>().State;
}

/** Waits for a container to reach `status` (polling inspect), failing after `timeoutMs`. */
export async function waitStatus(d: Daemon, id: string, status: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await inspectState(d, id);
    if (state.Status === status) return;
    if (Date.now() > deadline) throw new Error(`container ${id} is ${state.Status}, not ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A CLI running in a pseudo-terminal, with everything it printed so far. */
export class PtySession {
  readonly pty: IPty;
  output = '';
  readonly exited: Promise<number>;
  private readonly waiters: { check: () => boolean }[] = [];

  constructor(file: string, args: string[], opts: { cols?: number; rows?: number; env?: NodeJS.ProcessEnv } = {}) {
    this.pty = spawnPty(file, args, {
      name: 'xterm',
      cols: opts.cols ?? 80,
      rows: opts.rows ?? 24,
      env: { ...process.env, ...opts.env } as Record<string, string>,
    });
    this.pty.onData((d) => {
      this.output += d;
      for (const w of [...this.waiters]) if (w.check()) this.waiters.splice(this.waiters.indexOf(w), 1);
    });
    this.exited = new Promise((resolve) => this.pty.onExit((e) => resolve(e.exitCode)));
  }

  /** Resolves when the output (from `from` on) matches; rejects after `timeoutMs`. */
  expect(pattern: RegExp | string, timeoutMs = 15_000, from = 0): Promise<string> {
    const test = (): boolean => {
      const text = this.output.slice(from);
      return typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for ${String(pattern)}; output: ${JSON.stringify(this.output.slice(-600))}`));
      }, timeoutMs);
      const waiter = {
        check: (): boolean => {
          if (!test()) return false;
          clearTimeout(timer);
          resolve(this.output);
          return true;
        },
      };
      if (!waiter.check()) this.waiters.push(waiter);
    });
  }

  /** Types text, one key per write (as a person would: the client sees each key as its own read). */
  async type(text: string, gapMs = 5): Promise<void> {
    for (const ch of text) {
      this.pty.write(ch);
      await new Promise((r) => setTimeout(r, gapMs));
    }
  }

  write(data: string): void {
    this.pty.write(data);
  }

  async waitExit(timeoutMs = 15_000): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`process did not exit; output: ${JSON.stringify(this.output.slice(-600))}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    try {
      this.pty.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function podmanArgs(d: Daemon, ...args: string[]): string[] {
  return ['--url', `unix://${d.socket}`, ...args];
}

export function dockerArgs(d: Daemon, ...args: string[]): string[] {
  return ['-H', `unix://${d.socket}`, ...args];
}

/** PIDs of processes whose command line mentions `text` (conmon monitors, exit commands of a test daemon). */
export function processesMentioning(text: string, except: number[] = []): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || except.includes(Number(entry))) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(text)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * Test teardown, registered after startDaemon (tap runs teardowns last-registered first): removes every container
 * and waits for their conmon monitors and exit commands to finish, so nothing writes into the daemon's
 * directories while they are deleted.
 */
export async function quiesce(d: Daemon, timeoutMs = 10_000): Promise<void> {
  await removeAllContainers(d.socket).catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  const daemonPid = d.proc.pid ?? -1;
  while (processesMentioning(d.root, [daemonPid]).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/** Events of the daemon's journal (podman's file format, one JSON object a line). */
export interface JournalEvent {
  Status: string;
  ID?: string;
  Name?: string;
  ContainerExitCode?: number;
  Attributes?: Record<string, string>;
}

export function journalEvents(d: Daemon): JournalEvent[] {
  let text = '';
  try {
    text = readFileSync(join(d.runRoot, 'events', 'events.log'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as JournalEvent);
}

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a CLI to completion (no terminal); `input` becomes its stdin (then EOF). */
export function runCli(file: string, args: string[], opts: { input?: Buffer | string | NodeJS.ReadableStream; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} timed out; stderr: ${err}`));
    }, opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.on('error', () => undefined);
    const input = opts.input;
    if (input === undefined) child.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  });
}
