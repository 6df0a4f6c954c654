/**
 * The two daemons under test: podserve started from this checkout, and the reference — a `podman system service`
 * the benchmark starts itself (private --root/--runroot) or one given with --ref. Each gets a temporary state
 * directory that is unmounted and removed afterwards, whatever happened.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ApiClient } from './http.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PODSERVE_CLI = join(REPO_ROOT, 'dist/src/launch.cjs');
export const FIXTURES_DIR = process.env.PODSERVE_FIXTURES ?? '/var/tmp/podserve-fixtures';
export const BUSYBOX_ARCHIVE = join(FIXTURES_DIR, 'busybox-docker.tar');
export const IMAGE = 'localhost/busybox:latest';

export interface Daemon {
  /** "podserve" or "podman". */
  name: string;
  socket: string;
  api: ApiClient;
  /** The serving process, when known (memory figures). */
  pid: number | undefined;
  /** Our own state dir (undefined for a reference given with --ref). */
  dir: string | undefined;
  /** Stops a daemon we started and removes its state; a given reference is left running. */
  stop(): Promise<void>;
}

/** Makes the busybox fixture with scripts/fixtures.sh when it is missing. */
export function ensureFixtures(): void {
  if (existsSync(BUSYBOX_ARCHIVE)) return;
  execFileSync('sh', [join(REPO_ROOT, 'scripts/fixtures.sh'), FIXTURES_DIR], { stdio: 'inherit' });
}

/** One GET /_ping on a fresh connection; resolves true on a 200. */
export function pingOnce(socketPath: string, timeoutMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpRequest({ socketPath, path: '/_ping', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

export async function waitForPing(socketPath: string, timeoutMs: number, died?: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void died?.then(() => (gone = true));
  while (!(await pingOnce(socketPath))) {
    if (gone) throw new Error(`the daemon for ${socketPath} exited before serving`);
    if (Date.now() > deadline) throw new Error(`no answer to _ping on ${socketPath} within ${timeoutMs} ms`);
    await delay(20);
  }
}

/** Lazily unmounts everything mounted below `dir`, deepest first. */
export function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}

/** Processes whose command line mentions `text` (conmon monitors, exit commands of a daemon's containers). */
export function processesMentioning(text: string): number[] {
  const result = spawnSync('pgrep', ['-f', '--', text], { encoding: 'utf8' });
  return result.stdout
    .split('\n')
    .map(Number)
    .filter((pid) => pid > 0 && pid !== process.pid);
}

/** Waits (bounded) until no process mentions `text` any more. */
export async function settleProcesses(text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (processesMentioning(text).length > 0 && Date.now() < deadline) await delay(50);
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

export async function stopProcess(proc: ChildProcess, graceMs = 15_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited(proc);
  clearTimeout(timer);
}

/** Force-removes the given containers (timeout 0), ignoring ones already gone. */
export async function removeContainers(api: ApiClient, ids: Iterable<string>): Promise<void> {
  const all = [...ids];
  for (let i = 0; i < all.length; i += 8) {
    await Promise.all(
      all.slice(i, i + 8).map((id) => api.request('DELETE', `/v4.3.1/libpod/containers/${id}?force=true&timeout=0`).catch(() => undefined)),
    );
  }
}

async function removeEverything(api: ApiClient): Promise<void> {
  const list = await api.request('GET', '/v4.3.1/libpod/containers/json?all=true').catch(() => undefined);
  if (list?.status !== 200) return;
  await removeContainers(api, (JSON.parse(list.body.toString('utf8')) as { Id: string }[]).map((c) => c.Id));
}

/** Tears a state dir down: waits for its conmons and exit commands, unmounts, removes. */
async function removeStateDir(dir: string): Promise<void> {
  await settleProcesses(dir, 10_000);
  for (const pid of processesMentioning(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  unmountUnder(dir);
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}

function spawnLogged(command: string, args: string[], logFile: string): ChildProcess {
  // stderr to a file: a pipe nobody drains would block a chatty daemon.
  const fd = openSync(logFile, 'a');
  try {
    return spawn(command, args, { stdio: ['ignore', 'ignore', fd] });
  } finally {
    closeSync(fd);
  }
}

export interface PodserveOptions {
  /** Extra node flags for the daemon (e.g. --cpu-prof). */
  nodeArgs?: string[];
  logLevel?: string;
  /** Another build's dist/src/launch.cjs (before/after comparisons of a change); default this checkout's. */
  cli?: string;
  /** Name in the table. */
  name?: string;
}

export function podserveArgs(dir: string, socket: string | undefined, opts: PodserveOptions = {}): string[] {
  return [
    ...(opts.nodeArgs ?? []),
    opts.cli ?? PODSERVE_CLI,
    '--root',
    join(dir, 'root'),
    '--runroot',
    join(dir, 'run'),
    '--log-level',
    opts.logLevel ?? 'warn',
    'service',
    '--time',
    '0',
    ...(socket ? [`unix://${socket}`] : []),
  ];
}

export function podmanArgs(dir: string, socket: string | undefined): string[] {
  return ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), 'system', 'service', '--time=0', ...(socket ? [`unix://${socket}`] : [])];
}

async function started(name: string, proc: ChildProcess, dir: string, socket: string): Promise<Daemon> {
  const api = new ApiClient(socket, 16);
  const daemon: Daemon = {
    name,
    socket,
    api,
    pid: proc.pid,
    dir,
    stop: async () => {
      await removeEverything(api);
      api.close();
      await stopProcess(proc);
      await removeStateDir(dir);
    },
  };
  try {
    await waitForPing(socket, 60_000, exited(proc));
  } catch (err) {
    await daemon.stop().catch(() => undefined);
    throw new Error(`${name} did not start: ${(err as Error).message}; see ${join(dir, 'daemon.log')}`);
  }
  return daemon;
}

export async function startPodserve(dir: string, opts: PodserveOptions = {}): Promise<Daemon> {
  const socket = join(dir, 's.sock');
  const proc = spawnLogged(process.execPath, podserveArgs(dir, socket, opts), join(dir, 'daemon.log'));
  return started(opts.name ?? 'podserve', proc, dir, socket);
}

export async function startPodman(dir: string): Promise<Daemon> {
  const socket = join(dir, 's.sock');
  const proc = spawnLogged('podman', podmanArgs(dir, socket), join(dir, 'daemon.log'));
  return started('podman', proc, dir, socket);
}

/** The process listening on a unix socket, from `ss -xlp` (for the memory of a reference given with --ref). */
export function listenerPid(socketPath: string): number | undefined {
  const out = spawnSync('ss', ['-xlpn'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of out.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[4] !== socketPath) continue;
    const pid = /pid=(\d+)/.exec(line)?.[1];
    if (pid) return Number(pid);
  }
  return undefined;
}

export async function useReference(uri: string): Promise<Daemon> {
  if (!uri.startsWith('unix://')) throw new Error(`--ref must be unix:///path, got ${uri}`);
  const socket = uri.slice('unix://'.length);
  const api = new ApiClient(socket, 16);
  await waitForPing(socket, 30_000);
  return {
    name: 'podman',
    socket,
    api,
    pid: listenerPid(socket),
    dir: undefined,
    stop: async () => api.close(),
  };
}

/** Loads the busybox fixture through the API (POST /libpod/images/load, the archive streamed). */
export function loadImage(daemon: Daemon): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath: daemon.socket, method: 'POST', path: '/v4.3.1/libpod/images/load', headers: { 'Content-Type': 'application/x-tar' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${daemon.name}: image load → ${res.statusCode} ${body}`))));
      },
    );
    req.on('error', reject);
    createReadStream(BUSYBOX_ARCHIVE).pipe(req);
  });
}

export interface MemoryReading {
  rssMiB: number;
  /** Peak resident set since the process started (VmHWM). */
  peakMiB: number;
}

export function readMemory(pid: number | undefined): MemoryReading | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, all threads) a process has used so far, in ms; undefined when unreadable. */
export function readCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime (fields 14 and 15 of stat; 11 and 12 after the command name) in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** Is something accepting connections on this unix socket? */
export function accepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
