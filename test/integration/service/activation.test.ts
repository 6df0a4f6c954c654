/**
 * Socket activation as systemd does it: the socket outlives podserve, podserve exits when idle, and the next
 * connection is served by a fresh start without the client seeing an error. Also measures cold start
 * (connection to first byte) for podserve and for `podman system service` under systemd-socket-activate.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { CLI, request } from '../../helpers/daemon.js';
import { takeActivationFds } from '../../../src/service.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * What systemd does between socket and service, in a few lines of bash under systemd-socket-activate (which
 * binds the socket and holds it): start podserve with the socket as fd 3 and LISTEN_PID set to podserve's own pid,
 * and when it exits, start it again only once a connection waits in the socket's queue.
 */
const SUPERVISOR = `
sock="$1"; shift
while :; do
  ( export LISTEN_PID=$BASHPID; echo "supervisor: start $BASHPID" >&2; exec "$@" )
  echo "supervisor: exit $?" >&2
  until [ "$(ss -Hxl src "$sock" | awk '{print $3; exit}')" -gt 0 ] 2>/dev/null; do sleep 0.02; done
done`;

interface Activated {
  proc: ChildProcess;
  stderr: () => string;
  starts: () => number[];
  exits: () => string[];
}

async function startActivated(
  t: { teardown: (fn: () => unknown) => void },
  dir: string,
  sock: string,
  serviceArgs: string[],
  supervised: boolean,
  command: string[] = [process.execPath, CLI, '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--log-level', 'info'],
): Promise<Activated> {
  const argv = supervised
    ? ['-l', sock, '--fdname=podserve', 'bash', '-c', SUPERVISOR, 'supervisor', sock, ...command, ...serviceArgs]
    : ['-l', sock, '--fdname=podserve', ...command, ...serviceArgs];
  const proc = spawn('systemd-socket-activate', argv, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  t.teardown(() => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  await waitFor('systemd-socket-activate to listen', () => /Listening on/.test(stderr) && existsSync(sock), 5000);
  return {
    proc,
    stderr: () => stderr,
    starts: () => [...stderr.matchAll(/supervisor: start (\d+)/g)].map((m) => Number(m[1])),
    exits: () => [...stderr.matchAll(/supervisor: exit (\d+)/g)].map((m) => m[1]!),
  };
}

t.test('takeActivationFds: only for our pid, and the variables are gone either way', async (t) => {
  const ours: NodeJS.ProcessEnv = { LISTEN_PID: String(process.pid), LISTEN_FDS: '2', LISTEN_FDNAMES: 'podserve:extra' };
  t.same(takeActivationFds(ours), [3, 4]);
  t.same(Object.keys(ours), [], 'children will not see LISTEN_*');
  const theirs: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '1' };
  t.same(takeActivationFds(theirs), [], 'passed to another process: ignored');
  t.same(Object.keys(theirs), []);
  t.same(takeActivationFds({}), []);
});

t.test('two requests separated by an idle exit under systemd-socket-activate both succeed', async (t) => {
  const dir = mkdtempSync('/tmp/psa-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'p.sock');
  const sa = await startActivated(t, dir, sock, ['service', '--time', '2'], true);
  t.same(sa.starts(), [], 'nothing runs before the first connection');

  const first = await request(sock, 'GET', '/_ping');
  t.equal(first.status, 200);
  t.equal(first.text, 'OK');
  t.equal((await request(sock, 'GET', '/libpod/info')).status, 200);
  t.equal(sa.starts().length, 1, 'the first connection started podserve');

  await waitFor('the idle exit', () => sa.exits().length === 1, 10_000);
  t.same(sa.exits(), ['0'], 'idle exit is a clean exit');
  await sleep(300);
  t.equal(sa.starts().length, 1, 'not started again until a client connects');
  t.notOk(/LISTEN_FDS|error/i.test(sa.stderr().replace(/"level":\d+/g, '')), 'no errors logged');

  const second = await request(sock, 'GET', '/_ping');
  t.equal(second.status, 200, 'the connection after the exit is served by a fresh start');
  const info = await request(sock, 'GET', '/libpod/info');
  t.equal(info.status, 200);
  t.ok(info.json().host, 'info from the second instance');
  const starts = sa.starts();
  t.equal(starts.length, 2);
  t.not(starts[0], starts[1], 'a new process');
});

t.test('clients arriving around the idle exit never see an error', async (t) => {
  const dir = mkdtempSync('/tmp/psa-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'p.sock');
  const sa = await startActivated(t, dir, sock, ['service', '--time', '1'], true);
  // Gaps around the 1 s idle limit: some requests reach a daemon about to exit, some queue while none runs.
  const gaps = [950, 1000, 1050, 980, 1020, 1100, 900, 1000];
  for (const gap of gaps) {
    const res = await request(sock, 'GET', '/_ping');
    t.equal(res.status, 200, `request after ${gap} ms of quiet`);
    await sleep(gap);
  }
  t.ok(sa.starts().length >= 2, `restarted along the way (${sa.starts().length} starts)`);
  t.ok(sa.exits().every((code) => code === '0'), 'every exit clean');
});

/** Connection to first response byte on a socket that systemd-socket-activate holds, with nothing running yet. */
async function timeToFirstByte(sock: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const client = connect(sock);
    client.once('connect', () => client.write('GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n'));
    client.once('data', (chunk: Buffer) => {
      const elapsed = performance.now() - started;
      client.destroy();
      if (!chunk.toString().startsWith('HTTP/1.1 200')) reject(new Error(`unexpected answer: ${chunk.toString().slice(0, 80)}`));
      else resolve(elapsed);
    });
    client.once('error', reject);
  });
}

function unmountBelow(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined && m.startsWith(dir))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawn('umount', ['-l', m], { stdio: 'ignore' });
}

t.test('cold start under systemd-socket-activate: podserve, and podman system service for comparison', async (t) => {
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const measure = async (name: string, command: (dir: string) => string[], serviceArgs: string[]): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync('/tmp/psc-');
      try {
        const sock = join(dir, 's.sock');
        const sa = await startActivated(t, dir, sock, serviceArgs, false, command(dir));
        times.push(await timeToFirstByte(sock));
        // Idle exit ends the run (systemd-socket-activate exec'd the service).
        await waitFor(`${name} to exit`, () => sa.proc.exitCode !== null || sa.proc.signalCode !== null, 15_000);
      } finally {
        unmountBelow(dir);
        rmSync(dir, { recursive: true, force: true });
      }
    }
    t.comment(`${name} cold start, connection to first byte: ${times.map((x) => x.toFixed(0)).join(', ')} ms (median ${median(times).toFixed(0)} ms)`);
    return times;
  };
  const ours = await measure(
    'podserve',
    (dir) => [process.execPath, CLI, '--root', join(dir, 'root'), '--runroot', join(dir, 'run')],
    ['service', '--time', '1'],
  );
  t.ok(median(ours) < 5000, `podserve answers a cold connection (median ${median(ours).toFixed(0)} ms)`);
  const podman = await measure(
    'podman system service',
    (dir) => ['podman', '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--log-level=error'],
    ['system', 'service', '--time', '1'],
  );
  t.ok(podman.length === 3, 'podman measured the same way');
});
