/**
 * Cold start: how long a daemon takes from nothing to its first answer, two ways.
 * - spawn → first answered `GET /_ping`: the process is spawned and its socket is tried every millisecond.
 * - socket activation: `systemd-socket-activate -l SOCKET` holds the socket and starts the daemon on the first
 *   connection (as systemd's podman.socket / podserve.socket do); measured from connect to the first response byte.
 * Each daemon starts on a state directory prepared by one start before the timed ones (empty state: no image, no
 * container), so neither pays for creating its database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { podmanArgs, podserveArgs, stopProcess, unmountUnder, waitForPing, type PodserveOptions } from './daemons.js';

export interface ColdStartTarget {
  name: string;
  dir: string;
  /** The command line serving `socket` (undefined: the socket systemd passes). */
  command(socket: string | undefined): { file: string; args: string[] };
}

export function podserveTarget(dir: string, opts: PodserveOptions = {}): ColdStartTarget {
  return { name: opts.name ?? 'podserve', dir, command: (socket) => ({ file: process.execPath, args: podserveArgs(dir, socket, opts) }) };
}

/**
 * The floor for any Node.js daemon: a bare `node:http` server answering every request with OK, nothing else
 * loaded. Its start-up and memory bound what podserve could reach without leaving Node.
 */
export function nodeFloorTarget(dir: string): ColdStartTarget {
  const script = join(dir, 'floor.mjs');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    script,
    "import { createServer } from 'node:http';\n" +
      "createServer((req, res) => { res.setHeader('Content-Type', 'text/plain; charset=utf-8'); res.end('OK'); }).listen(process.argv[2]);\n",
  );
  return { name: 'node floor', dir, command: (socket) => ({ file: process.execPath, args: [script, socket ?? ''] }) };
}

export function podmanTarget(dir: string): ColdStartTarget {
  return { name: 'podman', dir, command: (socket) => ({ file: 'podman', args: podmanArgs(dir, socket) }) };
}

const PING = 'GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n';

/**
 * Connects (retrying every millisecond while nothing listens), sends one _ping and resolves at the first byte
 * of the answer (`firstByte`) or once the whole "OK" answer is in.
 */
function pingWhenUp(socket: string, deadline: number, untilFirstByte: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect(socket);
      let answer = '';
      s.once('connect', () => s.write(PING));
      s.on('data', (chunk: Buffer) => {
        answer += chunk.toString('latin1');
        if (untilFirstByte || /\r\n\r\n[\s\S]*OK/.test(answer)) {
          s.destroy();
          if (!answer.startsWith('HTTP/1.1 200') && !untilFirstByte) reject(new Error(`_ping answered ${answer.split('\r\n')[0]}`));
          else resolve();
        }
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        s.destroy();
        if (performance.now() > deadline) reject(new Error(`nothing answered on ${socket}: ${err.code}`));
        else if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') setTimeout(attempt, 1);
        else reject(err);
      });
    };
    attempt();
  });
}

function spawned(file: string, args: string[]): ChildProcess {
  const child = spawn(file, args, { stdio: 'ignore' });
  child.on('error', () => undefined);
  return child;
}

/** Prepares the state directory with one untimed start. */
export async function prepare(target: ColdStartTarget): Promise<void> {
  mkdirSync(target.dir, { recursive: true });
  const socket = join(target.dir, 'prep.sock');
  const { file, args } = target.command(socket);
  const child = spawned(file, args);
  try {
    await waitForPing(socket, 60_000);
  } finally {
    await stopProcess(child);
  }
}

/** Starts a target on its own socket and leaves it running (memory of an idle process). */
export async function startIdle(target: ColdStartTarget): Promise<{ pid: number | undefined; stop: () => Promise<void> }> {
  mkdirSync(target.dir, { recursive: true });
  const socket = join(target.dir, 'idle.sock');
  rmSync(socket, { force: true });
  const { file, args } = target.command(socket);
  const child = spawned(file, args);
  await waitForPing(socket, 60_000);
  return { pid: child.pid, stop: () => stopProcess(child) };
}

/** ms from spawn to the first answered _ping. */
export async function spawnToPing(target: ColdStartTarget): Promise<number> {
  const socket = join(target.dir, 'c.sock');
  rmSync(socket, { force: true });
  const { file, args } = target.command(socket);
  const start = performance.now();
  const child = spawned(file, args);
  try {
    await pingWhenUp(socket, start + 60_000, false);
    return performance.now() - start;
  } finally {
    await stopProcess(child);
  }
}

/** ms from connecting to a socket held by systemd-socket-activate to the first byte of the answer. */
export async function activationToFirstByte(target: ColdStartTarget): Promise<number> {
  const socket = join(target.dir, 'a.sock');
  rmSync(socket, { force: true });
  const { file, args } = target.command(undefined);
  const child = spawned('systemd-socket-activate', ['-l', socket, file, ...args]);
  try {
    const ready = performance.now() + 10_000;
    while (!existsSync(socket)) {
      if (performance.now() > ready) throw new Error('systemd-socket-activate did not create its socket');
      await delay(5);
    }
    // bind() creates the file just before listen(): give it a moment, never connect before it listens.
    await delay(50);
    const start = performance.now();
    await pingWhenUp(socket, start + 60_000, true);
    return performance.now() - start;
  } finally {
    // systemd-socket-activate execs the daemon in its own process: the child is the daemon now.
    await stopProcess(child);
  }
}

export function removeColdStartDir(target: ColdStartTarget): void {
  unmountUnder(target.dir);
  rmSync(target.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}
