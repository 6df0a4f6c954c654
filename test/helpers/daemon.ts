/**
 * Starts a real podserve daemon on a temporary socket with temporary --root/--runroot, waits for _ping, and
 * tears it down (SIGTERM, then SIGKILL) when the test ends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The daemon as installed: the launcher, which runs the bundle (src/launch.cts). */
export const CLI = fileURLToPath(new URL('../../src/launch.cjs', import.meta.url));

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json<T = any>(): T; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One HTTP request over a unix socket, body read whole (for small JSON replies). */
export function request(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const payload =
      body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = httpRequest(
      {
        socketPath,
        method,
        path,
        headers: {
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: buf,
            text: buf.toString('utf8'),
            json: () => JSON.parse(buf.toString('utf8')),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export interface Daemon {
  dir: string;
  socket: string;
  root: string;
  runRoot: string;
  proc: ChildProcess;
  stderr: () => string;
  request: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Response>;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  stop: () => Promise<void>;
}

export interface DaemonOptions {
  time?: number;
  logLevel?: string;
  extraGlobalArgs?: string[];
  extraServiceArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reuse state dirs (restart tests). */
  dir?: string;
}

export async function waitForPing(socketPath: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await request(socketPath, 'GET', '/_ping');
      if (res.status === 200) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`podserve did not answer _ping on ${socketPath} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Force-removes every container of a daemon (test teardown: no conmon, mount or cgroup left behind). */
export async function removeAllContainers(socketPath: string): Promise<void> {
  const list = await request(socketPath, 'GET', '/v4.3.1/libpod/containers/json?all=true');
  if (list.status !== 200) return;
  await Promise.all(
    (list.json() as { Id: string }[]).map((c) => request(socketPath, 'DELETE', `/v4.3.1/libpod/containers/${c.Id}?force=true&timeout=0`)),
  );
}

/** Waits (bounded) for conmon monitors and their exit commands that still work on `dir` to finish. */
export async function exitCommandsDone(dir: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const busy = spawnSync('pgrep', ['-f', `(^[^ ]*conmon |container cleanup).*${dir}/`]).status === 0;
    if (!busy) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Lazily unmounts whatever is still mounted below `dir` (after a kill -9 test, say). */
export function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}

export async function startDaemon(t: { teardown: (fn: () => unknown) => void }, opts: DaemonOptions = {}): Promise<Daemon> {
  const dir = opts.dir ?? mkdtempSync('/tmp/psd-');
  const socket = join(dir, 'p.sock');
  const root = join(dir, 'root');
  const runRoot = join(dir, 'run');
  const proc = spawn(
    process.execPath,
    [
      CLI,
      '--root',
      root,
      '--runroot',
      runRoot,
      '--log-level',
      opts.logLevel ?? 'info',
      ...(opts.extraGlobalArgs ?? []),
      'service',
      '--time',
      String(opts.time ?? 0),
      ...(opts.extraServiceArgs ?? []),
      `unix://${socket}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } },
  );
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (s: string) => {
    stderr += s;
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  t.teardown(async () => {
    if (!opts.dir) await removeAllContainers(socket).catch(() => undefined);
    await stop();
    if (!opts.dir) {
      await exitCommandsDone(dir);
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    }
  });
  try {
    await Promise.race([
      waitForPing(socket),
      exited.then((code) => {
        throw new Error(`podserve exited (${code}) before serving: ${stderr}`);
      }),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    socket,
    root,
    runRoot,
    proc,
    stderr: () => stderr,
    request: (method, path, body, headers) => request(socket, method, path, body, headers),
    exited,
    stop,
  };
}
