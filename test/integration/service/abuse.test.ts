/**
 * A flood of 1,000 bad requests on the unix socket (garbage bytes, huge heads, bad JSON, oversized and
 * malformed bodies, slowloris heads, clients vanishing mid-request) against a real daemon process: every one gets
 * a 4xx or a closed connection (never a 5xx, never a hang), `_ping` stays fast throughout, and the daemon's
 * memory comes back to where it was.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, waitForPing } from '../../helpers/daemon.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/limited-daemon.js', import.meta.url));
const HEADERS_TIMEOUT_MS = 2000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resident memory from /proc, in KiB: sampled during the flood without disturbing the daemon. */
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/** Deterministic bytes, so a failure can be replayed. */
function noise(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

interface Outcome {
  status?: number;
  closed: boolean;
  ms: number;
}

/** Sends `chunks` on a fresh connection (then, if asked, vanishes) and reports the status line, if any. */
function send(socketPath: string, chunks: Buffer[], opts: { pauseMs?: number; vanish?: boolean } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(socketPath);
    let head = '';
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      resolve({ status: status ? Number(status) : undefined, closed: socket.destroyed || socket.readableEnded, ms: Date.now() - started });
      socket.destroy();
    };
    // Nothing may hang: the daemon must answer or close within its head timeout and some slack.
    const guard = setTimeout(done, HEADERS_TIMEOUT_MS + 8000);
    socket.on('data', (c: Buffer) => {
      if (head.length < 64) head += c.toString('latin1');
    });
    socket.on('close', done);
    socket.on('error', () => undefined);
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        if (opts.pauseMs) await sleep(opts.pauseMs);
      }
      if (opts.vanish) socket.destroy();
    });
  });
}

type Attack = { kind: string; run: () => Promise<Outcome> };

function attacks(sock: string): Attack[] {
  const list: Attack[] = [];
  const add = (kind: string, count: number, make: (i: number) => () => Promise<Outcome>): void => {
    for (let i = 0; i < count; i++) list.push({ kind, run: make(i) });
  };
  add('garbage bytes', 250, (i) => () => send(sock, [noise(i + 1, 64 + ((i * 97) % 4000))]));
  add('garbage lines', 50, (i) => () => send(sock, [Buffer.from(`${'\u00ff'.repeat(i % 7)}NOT HTTP AT ALL ${i}\r\n\r\n`, 'latin1')]));
  add('huge head', 150, (i) => () =>
    send(sock, [Buffer.from(`GET /_ping HTTP/1.1\r\nHost: d\r\nX-Registry-Auth: ${'A'.repeat(70_000 + i * 1000)}\r\n\r\n`)]));
  add('many headers', 50, (i) => () =>
    send(sock, [Buffer.from(`GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n${Array.from({ length: 3000 }, (_, j) => `X-H${j}: ${i}`).join('\r\n')}\r\n\r\n`)]));
  add('bad JSON', 150, (i) => () => {
    const body = ['{"Image": ', '{"image": "busybox",,}', 'nul', '[1,2', '{"Cmd": ["sh" "x"]}'][i % 5]!;
    const path = ['/v4.3.1/libpod/containers/create', '/v1.41/containers/create', '/libpod/images/load', '/_ping'][i % 4]!;
    return send(sock, [Buffer.from(`POST ${path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)]);
  });
  add('bad framing', 100, (i) => () => {
    const variants = [
      'POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: abc\r\n\r\n',
      'POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n',
      'POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello',
      'GET /_ping HTTP/1.1\r\nHost: d\r\nBad Header Name: x\r\n\r\n',
    ];
    return send(sock, [Buffer.from(variants[i % variants.length]!)]);
  });
  add('oversized body', 50, () => () =>
    send(sock, [Buffer.from(`POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\n\r\n{"a":"`), Buffer.alloc(256 * 1024, 0x61)], { vanish: false }));
  add('vanishing client', 100, (i) => () =>
    send(sock, [Buffer.from(`POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"Image":"${'x'.repeat(i)}`)], { vanish: true }));
  add('slowloris', 100, (i) => () =>
    send(sock, ['GET /_ping HTTP/1.1\r\n', ...Array.from({ length: 40 }, (_, j) => `X-Slow-${i}-${j}: z\r\n`)].map((s) => Buffer.from(s)), { pauseMs: 250 }));
  return list;
}

async function pingLatencies(sock: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const res = await request(sock, 'GET', '/_ping');
    if (res.status !== 200) throw new Error(`_ping answered ${res.status}`);
    times.push(performance.now() - started);
  }
  return times;
}

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

t.test('1,000 bad requests leave the daemon answering and its memory where it was', async (t) => {
  const dir = mkdtempSync('/tmp/psb-');
  const sock = join(dir, 'p.sock');
  const daemon = spawn(
    process.execPath,
    ['--expose-gc', FIXTURE, '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--log-level', 'debug', 'service', '--time', '0', `unix://${sock}`],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PODSERVE_TEST_LIMITS: JSON.stringify({ headersTimeoutMs: HEADERS_TIMEOUT_MS, timeoutCheckIntervalMs: 250 }) } },
  );
  let stderr = '';
  daemon.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  t.teardown(() => {
    daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitForPing(sock);
  // One line of memory figures, after a full collection (SIGUSR2 to the fixture).
  const memory = async (): Promise<{ rss: number; heapUsed: number }> => {
    const before = stderr.length;
    daemon.kill('SIGUSR2');
    for (let i = 0; i < 100 && !/MEMORY .*\n/.test(stderr.slice(before)); i++) await sleep(20);
    return JSON.parse(/MEMORY (.*)\n/.exec(stderr.slice(before))![1]!) as { rss: number; heapUsed: number };
  };

  // Warm up (JIT, buffers, one round of every kind of refusal, which also compiles the route schemas they reach:
  // those compile on first use and stay), then take the baseline.
  await pingLatencies(sock, 200);
  const warmup = attacks(sock).filter((_, i) => i % 20 === 0 && _.kind !== 'slowloris');
  await Promise.all(warmup.map((a) => a.run()));
  await sleep(1000);
  const baselinePing = await pingLatencies(sock, 50);
  const baseline = await memory();

  // The flood: 50 at a time, while a watcher pings every 50 ms.
  const list = attacks(sock);
  t.equal(list.length, 1000, '1,000 bad requests');
  let flooding = true;
  const duringFlood: number[] = [];
  const watcher = (async () => {
    while (flooding) {
      duringFlood.push(...(await pingLatencies(sock, 1)));
      await sleep(50);
    }
  })();
  const outcomes: (Outcome & { kind: string })[] = [];
  let next = 0;
  let peakRss = baseline.rss / 1024;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < list.length) {
        const attack = list[next++]!;
        outcomes.push({ kind: attack.kind, ...(await attack.run()) });
        peakRss = Math.max(peakRss, rssKiB(daemon.pid!));
      }
    }),
  );
  flooding = false;
  await watcher;
  const floodMs = Date.now() - started;

  const serverErrors = outcomes.filter((o) => o.status !== undefined && o.status >= 500);
  const hung = outcomes.filter((o) => !o.closed && o.status === undefined);
  const byKind = new Map<string, Map<string, number>>();
  for (const o of outcomes) {
    const counts = byKind.get(o.kind) ?? new Map<string, number>();
    const key = o.status === undefined ? 'closed' : String(o.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
    byKind.set(o.kind, counts);
  }
  for (const [kind, counts] of byKind) {
    const ms = outcomes.filter((o) => o.kind === kind).map((o) => o.ms);
    t.comment(`${kind}: ${[...counts].map(([k, n]) => `${k}×${n}`).join(' ')}, median ${percentile(ms, 0.5)} ms, max ${Math.max(...ms)} ms`);
  }
  t.equal(serverErrors.length, 0, 'no 5xx answers');
  t.equal(hung.length, 0, 'no connection left hanging');
  // The daemon answers an oversized head once it has read 64 KiB; a client still writing the rest may then fail
  // its write and close before reading the 431.
  const huge = outcomes.filter((o) => o.kind === 'huge head');
  t.ok(huge.every((o) => o.status === 431 || o.status === undefined), 'huge head: 431 (or closed)');
  t.ok(huge.some((o) => o.status === 431), 'huge head: the 431 answer is sent');
  t.same([...byKind.get('many headers')!.keys()], ['200'], 'many small headers within the size limit: answered (Node keeps the first 2,000)');
  // A slowloris client whose timer fires before its loop has read the 408 writes its next line into a closed
  // connection and closes without reading the answer (more often on a busy machine). Either way it is cut on time.
  const slowloris = outcomes.filter((o) => o.kind === 'slowloris');
  t.ok(slowloris.every((o) => (o.status === 408 || o.status === undefined) && o.ms < HEADERS_TIMEOUT_MS + 3000), 'slowloris: cut after the head timeout');
  // (limits.test.ts checks the 408 answer itself on a single slow client.)
  t.ok(slowloris.some((o) => o.status === 408), 'slowloris: the 408 answer is sent');
  t.ok(outcomes.filter((o) => o.kind === 'garbage bytes').every((o) => o.status === 400 || o.status === undefined), 'garbage: 400 or closed');
  t.ok(outcomes.filter((o) => o.kind === 'bad JSON').every((o) => o.status !== undefined && o.status >= 400 && o.status < 500), 'bad JSON: 4xx');

  t.equal(daemon.exitCode, null, 'the daemon is still running');
  t.ok(duringFlood.length > 10, `pinged ${duringFlood.length} times during the ${floodMs} ms flood`);
  t.ok(percentile(duringFlood, 0.95) < 500, `_ping p95 during the flood: ${percentile(duringFlood, 0.95).toFixed(1)} ms`);

  await sleep(1500);
  const afterPing = await pingLatencies(sock, 50);
  const base50 = percentile(baselinePing, 0.5);
  const after50 = percentile(afterPing, 0.5);
  t.comment(`_ping median: ${base50.toFixed(2)} ms before, ${after50.toFixed(2)} ms after; p95 during flood ${percentile(duringFlood, 0.95).toFixed(1)} ms`);
  t.ok(after50 < base50 * 3 + 2, `_ping back to its normal latency (${after50.toFixed(2)} ms vs ${base50.toFixed(2)} ms)`);

  // Memory, each time after a full collection (the fixture runs with --expose-gc): what the flood left behind.
  const after = await memory();
  const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
  t.comment(
    `daemon memory after GC: RSS ${mib(baseline.rss)} MiB before, ${mib(after.rss)} MiB after (peak during the flood ` +
      `${(peakRss / 1024).toFixed(1)} MiB); JS heap in use ${mib(baseline.heapUsed)} MiB before, ${mib(after.heapUsed)} MiB after`,
  );
  t.ok(after.heapUsed < baseline.heapUsed + 2 * 1024 * 1024, 'no JS objects retained by the flood (heap in use within 2 MiB)');
  t.ok(after.rss < baseline.rss + 16 * 1024 * 1024, 'RSS back within 16 MiB of where it was (allocator caches)');
  t.notMatch(stderr, /"level":(50|60)/, 'no error logged for client mistakes');
});
