/**
 * One sample of each measurement against one daemon. Both daemons get byte-for-byte the same requests; every
 * container runs with `netns: {nsmode: "none"}` (a private network namespace with only loopback), which both
 * podserve and Podman implement the same way, so no bridge/netavark set-up is timed for either.
 */
import { request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Daemon } from './daemons.js';
import { IMAGE } from './daemons.js';
import { ApiClient, FrameCounter, getRequest, hijack, RawConnection, readToEnd, writeRepeated, type Hijacked } from './http.js';
import { percentile } from './stats.js';

export const V = '/v4.3.1/libpod';
export const MiB = 1024 * 1024;
export const NETWORK = { nsmode: 'none' } as const;

/** Containers a run created on a daemon, removed at the end even when a measurement failed. */
export class Tracked {
  readonly ids = new Set<string>();
  constructor(readonly daemon: Daemon) {}

  async create(body: Record<string, unknown>): Promise<string> {
    const { Id } = await this.daemon.api.call<{ Id: string }>('POST', `${V}/containers/create`, { image: IMAGE, netns: NETWORK, ...body }, [201]);
    this.ids.add(Id);
    return Id;
  }

  async remove(id: string): Promise<void> {
    await this.daemon.api.call('DELETE', `${V}/containers/${id}?force=true&timeout=0`, undefined, [200]);
    this.ids.delete(id);
  }
}

async function waitExit(d: Daemon, id: string): Promise<number> {
  const code = await d.api.call<number>('POST', `${V}/containers/${id}/wait`, undefined, [200]);
  return Number(code);
}

// ------------------------------------------------------------------------------------------ 1. lifecycle

/** create + start + wait + delete of `true`; the plain DELETE (no force) a client would send. */
async function lifecycleOnce(t: Tracked): Promise<void> {
  const d = t.daemon;
  const id = await t.create({ command: ['true'] });
  await d.api.call('POST', `${V}/containers/${id}/start`, undefined, [204]);
  const code = await waitExit(d, id);
  if (code !== 0) throw new Error(`${d.name}: \`true\` exited ${code}`);
  await d.api.call('DELETE', `${V}/containers/${id}`, undefined, [200]);
  t.ids.delete(id);
}

/** Milliseconds per container, `count` containers one after the other. */
export async function lifecycleSequential(t: Tracked, count: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i++) await lifecycleOnce(t);
  return (performance.now() - start) / count;
}

/** Containers per second with `clients` clients each running `each` lifecycles back to back. */
export async function lifecycleParallel(t: Tracked, clients: number, each: number): Promise<number> {
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < each; i++) await lifecycleOnce(t);
    }),
  );
  return (clients * each) / ((performance.now() - start) / 1000);
}

/** Starts `count` long-running containers with 8 clients (the population for list, inspect and exec). */
export async function startSleepers(t: Tracked, count: number): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        next++;
        const id = await t.create({ command: ['sleep', '100000'] });
        await t.daemon.api.call('POST', `${V}/containers/${id}/start`, undefined, [204]);
        ids.push(id);
      }
    }),
  );
  return ids;
}

// ------------------------------------------------------------------------------------------ 2. exec

/** Milliseconds for exec create + start (hijacked, read to EOF) + inspect, averaged over `count` sessions. */
export async function execRoundTrip(d: Daemon, containerId: string, count: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const { Id } = await d.api.call<{ Id: string }>(
      'POST',
      `${V}/containers/${containerId}/exec`,
      { AttachStdout: true, AttachStderr: true, Cmd: ['echo', 'bench'] },
      [201],
    );
    const h = await hijack(d.socket, 'POST', `${V}/exec/${Id}/start`, { Detach: false, Tty: false });
    expectHijacked(d, h, 'exec start');
    const frames = new FrameCounter(true);
    await withTimeout(readToEnd(h.socket, h.leftover, (c) => frames.push(c)), 30_000, h, `${d.name}: exec output`);
    const inspect = await d.api.call<{ ExitCode: number; Running: boolean }>('GET', `${V}/exec/${Id}/json`, undefined, [200]);
    if (frames.stdoutTail !== 'bench\n') throw new Error(`${d.name}: exec printed ${JSON.stringify(frames.stdoutTail)}, not "bench\\n"`);
    if (inspect.ExitCode !== 0 || inspect.Running) throw new Error(`${d.name}: exec inspect says ${JSON.stringify(inspect)}`);
  }
  return (performance.now() - start) / count;
}

function expectHijacked(d: Daemon, h: Hijacked, what: string): void {
  if (h.status === 101 || h.status === 200) return;
  h.socket.destroy();
  throw new Error(`${d.name}: ${what} answered ${h.status}: ${h.head.split('\r\n')[0]} ${h.leftover.toString('utf8').slice(0, 300)}`);
}

async function withTimeout<T>(work: Promise<T>, ms: number, h: Hijacked, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      h.socket.destroy();
      reject(new Error(`${what}: not finished within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------------------------------ 3, 4. attach

/** Creates a container, initializes it (conmon + runc create) and attaches, so no output can be missed. */
async function attachBeforeStart(t: Tracked, body: Record<string, unknown>, query: string): Promise<{ id: string; h: Hijacked }> {
  const d = t.daemon;
  const id = await t.create(body);
  await d.api.call('POST', `${V}/containers/${id}/init`, undefined, [204]);
  const h = await hijack(d.socket, 'POST', `${V}/containers/${id}/attach?${query}`);
  expectHijacked(d, h, 'attach');
  return { id, h };
}

/** MiB/s of `dd if=/dev/zero bs=1M count=mib` through a hijacked attach, first byte to last; the count is checked. */
export async function attachStdout(t: Tracked, mib: number): Promise<number> {
  const d = t.daemon;
  const total = mib * MiB;
  const { id, h } = await attachBeforeStart(t, { command: ['dd', 'if=/dev/zero', 'bs=1M', `count=${mib}`] }, 'stream=true&stdout=true&stderr=true');
  const frames = new FrameCounter();
  let first = 0;
  let last = 0;
  const reading = readToEnd(h.socket, h.leftover, (chunk) => {
    if (first === 0) first = performance.now();
    frames.push(chunk);
    if (last === 0 && frames.bytes[1]! >= total) last = performance.now();
  });
  await d.api.call('POST', `${V}/containers/${id}/start`, undefined, [204]);
  await withTimeout(reading, 300_000, h, `${d.name}: attach stdout`);
  if (frames.bytes[1] !== total) throw new Error(`${d.name}: attach delivered ${frames.bytes[1]} stdout bytes, expected ${total}`);
  const code = await waitExit(d, id);
  if (code !== 0) throw new Error(`${d.name}: dd exited ${code}`);
  await t.remove(id);
  return mib / ((last - first) / 1000);
}

/** MiB/s of `mib` MiB written into a container's stdin through attach; the container counts them (head -c | wc -c). */
export async function attachStdin(t: Tracked, mib: number): Promise<number> {
  const d = t.daemon;
  const total = mib * MiB;
  const { id, h } = await attachBeforeStart(
    t,
    { command: ['sh', '-c', `head -c ${total} | wc -c`], stdin: true },
    'stream=true&stdin=true&stdout=true&stderr=true',
  );
  const frames = new FrameCounter(true);
  let counted: (n: number) => void = () => undefined;
  const countLine = new Promise<number>((resolve) => (counted = resolve));
  const reading = readToEnd(h.socket, h.leftover, (chunk) => {
    frames.push(chunk);
    const line = /(\d+)\s*\n/.exec(frames.stdoutTail);
    if (line) counted(Number(line[1]));
  });
  reading.catch(() => undefined);
  await d.api.call('POST', `${V}/containers/${id}/start`, undefined, [204]);
  const chunk = Buffer.alloc(MiB, 'x');
  const start = performance.now();
  await writeRepeated(h.socket, chunk, total);
  const count = await withTimeout(countLine, 300_000, h, `${d.name}: attach stdin`);
  const elapsed = performance.now() - start;
  if (count !== total) throw new Error(`${d.name}: the container read ${count} stdin bytes, expected ${total}`);
  h.socket.end();
  await withTimeout(reading, 30_000, h, `${d.name}: attach stdin end`).catch(() => h.socket.destroy());
  await waitExit(d, id);
  await t.remove(id);
  return mib / (elapsed / 1000);
}

// ------------------------------------------------------------------------------------------ 5. logs

export const LOG_LINE = 100;

/** A stopped container whose k8s-file log holds `lines` lines of 100 bytes (99 digits and a newline). */
export async function prepareLog(t: Tracked, lines: number): Promise<string> {
  const d = t.daemon;
  const id = await t.create({ command: ['sh', '-c', `yes ${'0'.repeat(LOG_LINE - 1)} | head -n ${lines}`] });
  await d.api.call('POST', `${V}/containers/${id}/start`, undefined, [204]);
  const code = await waitExit(d, id);
  if (code !== 0) throw new Error(`${d.name}: the log writer exited ${code}`);
  return id;
}

/** MiB/s reading the whole log (GET …/logs?stdout=true&stderr=true, multiplexed), request to last byte. */
export function readLog(d: Daemon, id: string, lines: number): Promise<number> {
  const expected = lines * LOG_LINE;
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const frames = new FrameCounter();
    const req = httpRequest({ socketPath: d.socket, agent: false, method: 'GET', path: `${V}/containers/${id}/logs?stdout=true&stderr=true` }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`${d.name}: logs → ${res.statusCode}`));
        return;
      }
      res.on('data', (c: Buffer) => frames.push(c));
      res.on('end', () => {
        const elapsed = performance.now() - start;
        if (frames.bytes[1] !== expected) reject(new Error(`${d.name}: logs delivered ${frames.bytes[1]} bytes in ${frames.frames} frames, expected ${expected}`));
        else resolve(expected / MiB / (elapsed / 1000));
      });
      res.on('error', reject);
    });
    req.setTimeout(300_000, () => req.destroy(new Error(`${d.name}: logs took too long`)));
    req.on('error', reject);
    req.end();
  });
}

// ------------------------------------------------------------------------------------------ 6. API load

export interface LoadResult {
  rate: number;
  p50: number;
  p99: number;
  requests: number;
}

/**
 * `connections` keep-alive connections, each sending `GET path` back to back for `durationMs`; every answer must
 * be a 200. Requests per second over the whole run, and latency percentiles in ms. `client` chooses the lean raw
 * client (default) or Node's http client with a keep-alive agent.
 */
export async function loadRun(socket: string, path: string, durationMs: number, connections = 16, client: 'raw' | 'node' = 'raw'): Promise<LoadResult> {
  const send = client === 'raw' ? await rawSender(socket, path, connections) : nodeSender(socket, path, connections);
  try {
    // Every connection answers once before the clock starts: the run measures requests, not connects.
    await Promise.all(Array.from({ length: connections }, (_, i) => send.request(i)));
    const latencies: number[] = [];
    const start = performance.now();
    const end = start + durationMs;
    await Promise.all(
      Array.from({ length: connections }, async (_, i) => {
        while (performance.now() < end) {
          const t0 = performance.now();
          await send.request(i);
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const elapsed = performance.now() - start;
    latencies.sort((a, b) => a - b);
    return { rate: latencies.length / (elapsed / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99), requests: latencies.length };
  } finally {
    send.close();
  }
}

interface Sender {
  request(connection: number): Promise<void>;
  close(): void;
}

async function rawSender(socket: string, path: string, connections: number): Promise<Sender> {
  const conns = await Promise.all(Array.from({ length: connections }, () => RawConnection.open(socket)));
  const bytes = getRequest(path);
  return {
    request: async (i) => {
      const status = await conns[i]!.send(bytes);
      if (status !== 200) throw new Error(`GET ${path} → ${status}`);
    },
    close: () => conns.forEach((c) => c.close()),
  };
}

function nodeSender(socket: string, path: string, connections: number): Sender {
  const api = new ApiClient(socket, connections);
  return {
    request: async () => {
      const r = await api.request('GET', path);
      if (r.status !== 200) throw new Error(`GET ${path} → ${r.status}: ${r.body.toString('utf8').slice(0, 200)}`);
    },
    close: () => api.close(),
  };
}

/** How many containers a list returns (to check that both daemons list the same population). */
export async function listLength(d: Daemon, path: string): Promise<number> {
  return (await d.api.call<unknown[]>('GET', path, undefined, [200])).length;
}

export { delay };
