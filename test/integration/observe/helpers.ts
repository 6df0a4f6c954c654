/** Shared by the observe tests: containers through the libpod API, CLIs, and streamed responses read as they come. */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import type { Daemon } from '../../helpers/daemon.js';

const exec = promisify(execFile);

export const LIBPOD = '/v4.3.1/libpod';
export const COMPAT = '/v1.41';

/** Creates a busybox container through the libpod API (and starts it unless `start` is false); returns its id. */
export async function runContainer(
  d: Daemon,
  name: string,
  command: string[],
  opts: { terminal?: boolean; start?: boolean; user?: string; spec?: Record<string, unknown> } = {},
): Promise<string> {
  const created = await d.request('POST', `${LIBPOD}/containers/create`, {
    image: 'localhost/busybox:latest',
    name,
    command,
    terminal: opts.terminal ?? false,
    ...(opts.user ? { user: opts.user } : {}),
    ...opts.spec,
  });
  if (created.status !== 201) throw new Error(`create ${name}: ${created.status} ${created.text}`);
  const id = created.json<{ Id: string }>().Id;
  if (opts.start !== false) {
    const started = await d.request('POST', `${LIBPOD}/containers/${id}/start`);
    if (started.status !== 204) throw new Error(`start ${name}: ${started.status} ${started.text}`);
  }
  return id;
}

/** Waits for a container to exit (libpod wait). */
export async function waitExit(d: Daemon, name: string): Promise<number> {
  const res = await d.request('POST', `${LIBPOD}/containers/${name}/wait?condition=exited`);
  if (res.status !== 200) throw new Error(`wait ${name}: ${res.status} ${res.text}`);
  return Number(res.text.trim());
}

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

async function cli(program: string, args: string[], timeoutMs: number): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec(program, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : -1 };
  }
}

export const podman = (d: Daemon, args: string[], timeoutMs = 60_000): Promise<CliResult> => cli('podman', ['--url', `unix://${d.socket}`, ...args], timeoutMs);
export const docker = (d: Daemon, args: string[], timeoutMs = 60_000): Promise<CliResult> => cli('docker', ['-H', `unix://${d.socket}`, ...args], timeoutMs);

/** A streamed response: headers as soon as they arrive, body chunks as they come. */
export interface Streamed {
  status: number;
  headers: IncomingHttpHeaders;
  res: IncomingMessage;
  /** Resolves with the next chunk, or undefined at the end of the body. */
  next(timeoutMs?: number): Promise<Buffer | undefined>;
  /** Everything until the end of the body. */
  rest(timeoutMs?: number): Promise<Buffer>;
  /** Hang up. */
  destroy(): void;
}

export function openStream(socketPath: string, path: string): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method: 'GET', path }, (res) => {
      const queue: Buffer[] = [];
      let ended = false;
      let waiter: (() => void) | undefined;
      res.on('data', (chunk: Buffer) => {
        queue.push(chunk);
        waiter?.();
      });
      res.on('end', () => {
        ended = true;
        waiter?.();
      });
      res.on('error', () => {
        ended = true;
        waiter?.();
      });
      const next = async (timeoutMs = 10_000): Promise<Buffer | undefined> => {
        if (queue.length > 0) return queue.shift();
        if (ended) return undefined;
        await new Promise<void>((ok, fail) => {
          const timer = setTimeout(() => fail(new Error(`no data on ${path} within ${timeoutMs} ms`)), timeoutMs);
          waiter = () => {
            clearTimeout(timer);
            waiter = undefined;
            ok();
          };
        });
        return queue.length > 0 ? queue.shift() : undefined;
      };
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        res,
        next,
        async rest(timeoutMs = 10_000) {
          const parts: Buffer[] = [];
          for (let c = await next(timeoutMs); c !== undefined; c = await next(timeoutMs)) parts.push(c);
          return Buffer.concat(parts);
        },
        destroy: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Splits a multiplexed body into [stream, text] frames; throws on a torn frame. */
export function demux(body: Buffer): [number, string][] {
  const frames: [number, string][] = [];
  let pos = 0;
  while (pos < body.length) {
    if (pos + 8 > body.length) throw new Error('torn frame header');
    const len = body.readUInt32BE(pos + 4);
    if (pos + 8 + len > body.length) throw new Error('torn frame body');
    frames.push([body[pos]!, body.subarray(pos + 8, pos + 8 + len).toString('utf8')]);
    pos += 8 + len;
  }
  return frames;
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Polls `check` until it holds (or the time is up); returns its last value. */
export async function eventually<T>(check: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}
