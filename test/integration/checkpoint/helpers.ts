/** Shared by the checkpoint tests: counter containers, their logs, archives as buffers, leftovers. */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import type { Daemon } from '../../helpers/daemon.js';

const exec = promisify(execFile);

export const L = '/v4.3.1/libpod';

/** The brief's counter: one number a second, from 0. */
export const COUNTER = ['sh', '-c', 'i=0; while true; do echo $i; i=$((i+1)); sleep 1; done'];

export async function runCounter(d: Daemon, name: string, command: string[] = COUNTER, spec: Record<string, unknown> = {}): Promise<string> {
  const created = await d.request('POST', `${L}/containers/create`, { image: 'localhost/busybox:latest', name, command, ...spec });
  if (created.status !== 201) throw new Error(`create ${name}: ${created.status} ${created.text}`);
  const id = created.json<{ Id: string }>().Id;
  const started = await d.request('POST', `${L}/containers/${id}/start`);
  if (started.status !== 204) throw new Error(`start ${name}: ${started.status} ${started.text}`);
  return id;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function inspect(d: Daemon, name: string): Promise<any> {
  const res = await d.request('GET', `${L}/containers/${name}/json`);
  if (res.status !== 200) throw new Error(`inspect ${name}: ${res.status} ${res.text}`);
  return res.json();
}

/** The numbers the container printed, in log order (k8s-file lines `<ts> stdout F <n>`). */
export async function counterValues(d: Daemon, name: string): Promise<number[]> {
  const info = await inspect(d, name);
  const path = info.HostConfig.LogConfig.Path as string;
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => /^\S+ stdout F (\d+)$/.exec(line)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
}

/** Waits until the counter printed `value` (or more). */
export async function waitForValue(d: Daemon, name: string, value: number, timeoutMs = 20_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const values = await counterValues(d, name);
    if (values.length > 0 && values[values.length - 1]! >= value) return values;
    if (Date.now() > deadline) throw new Error(`${name} did not count to ${value} in time: ${values.join(',')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when the values are exactly 0, 1, 2, … : the counter never restarted and lost nothing. */
export function continuous(values: number[]): boolean {
  return values.every((v, i) => v === i);
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A POST whose reply body is kept whole as bytes (exported archives). */
export function postForBuffer(d: Daemon, path: string, body?: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath: d.socket, method: 'POST', path, headers: body ? { 'Content-Type': 'application/x-tar', 'Content-Length': String(body.length) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Member names and small contents of a tar held in memory. */
export async function listTar(archive: Buffer): Promise<Map<string, Buffer>> {
  const members = new Map<string, Buffer>();
  const extract = tar.extract();
  Readable.from([archive]).pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
    members.set(entry.header.name, Buffer.concat(chunks));
  }
  return members;
}

/** Entries of a daemon's scratch dir (checkpoint exports/imports stage there and must leave nothing). */
export function scratchEntries(d: Daemon): string[] {
  const dir = join(d.root, 'tmp');
  return existsSync(dir) ? readdirSync(dir) : [];
}

export function containerDirs(d: Daemon): string[] {
  const dir = join(d.root, 'containers');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

export async function podman(d: Daemon, args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec('podman', ['--url', `unix://${d.socket}`, ...args], { timeout: 120_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : -1 };
  }
}

/** Events of one container from the journal (libpod /events, not streamed). */
export async function eventsOf(d: Daemon, id: string): Promise<string[]> {
  const res = await d.request('GET', `${L}/events?stream=false&filters=${encodeURIComponent(JSON.stringify({ container: [id] }))}`);
  if (res.status !== 200) throw new Error(`events: ${res.status} ${res.text}`);
  return res.text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { Action?: string; status?: string }).Action ?? '');
}

/** Milliseconds a call takes. */
export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = process.hrtime.bigint();
  const value = await work();
  return { value, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}
