import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CLI, startDaemon } from '../../helpers/daemon.js';

function runCli(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

t.test('SIGTERM: exit 0 and the socket is removed', async (t) => {
  const d = await startDaemon(t);
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0);
  t.notOk(existsSync(d.socket), 'socket removed');
});

t.test('idle exit after --time seconds, kept alive by requests', async (t) => {
  const d = await startDaemon(t, { time: 1 });
  const started = Date.now();
  // Requests every 300 ms for 2 s keep it alive past its 1 s idle limit.
  while (Date.now() - started < 2000) {
    t.equal((await d.request('GET', '/_ping')).status, 200);
    await new Promise((r) => setTimeout(r, 300));
  }
  const code = await d.exited;
  t.equal(code, 0, 'exits 0 once idle');
  t.ok(Date.now() - started >= 2500, 'stayed up while used');
  t.notOk(existsSync(d.socket));
});

t.test('--time 0 never exits for idleness', async (t) => {
  const d = await startDaemon(t, { time: 0 });
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(d.proc.exitCode, null);
  t.equal((await d.request('GET', '/_ping')).status, 200);
});

t.test('a stale socket from a crashed daemon is replaced', async (t) => {
  const dir = mkdtempSync('/tmp/psd-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const d1 = await startDaemon(t, { dir });
  d1.proc.kill('SIGKILL');
  await d1.exited;
  t.ok(existsSync(d1.socket), 'kill -9 leaves the socket file');
  const d2 = await startDaemon(t, { dir });
  t.equal((await d2.request('GET', '/_ping')).status, 200);
});

t.test('a live socket is not stolen', async (t) => {
  const d = await startDaemon(t);
  const second = await runCli(['--root', join(d.dir, 'r2'), '--runroot', join(d.dir, 'rr2'), 'service', '--time', '0', `unix://${d.socket}`]);
  t.not(second.code, 0);
  t.match(second.stderr, /already listening/);
  t.equal((await d.request('GET', '/_ping')).status, 200, 'the first daemon still serves');
});

t.test('a path that is not a socket is not replaced', async (t) => {
  const dir = mkdtempSync('/tmp/psd-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'p.sock');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, 'precious');
  const res = await runCli(['--root', join(dir, 'r'), '--runroot', join(dir, 'rr'), 'service', '--time', '0', `unix://${file}`]);
  t.not(res.code, 0);
  t.match(res.stderr, /not a socket/);
});

t.test('bad command lines are refused with a usage message', async (t) => {
  const cases: [string[], RegExp][] = [
    [['service', '--time', '-3'], /--time must be/],
    [['--log-level', 'loud', 'service'], /--log-level must be/],
    [['service', 'http://x'], /unsupported URI/],
    [['frobnicate'], /unknown command/],
    [['--bogus', 'service'], /unknown flag/],
  ];
  for (const [args, message] of cases) {
    const res = await runCli(args);
    t.equal(res.code, 125, args.join(' '));
    t.match(res.stderr, message);
  }
});

t.test('tcp:// is served only when asked, with a loud warning', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const dir = mkdtempSync('/tmp/psd-');
  const p = spawn(process.execPath, [CLI, '--root', join(dir, 'r'), '--runroot', join(dir, 'rr'), 'service', '--time', '0', `tcp://127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => {
    p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let stderr = '';
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const deadline = Date.now() + 10_000;
  let status = 0;
  while (Date.now() < deadline) {
    try {
      status = (await fetch(`http://127.0.0.1:${port}/_ping`)).status;
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  t.equal(status, 200);
  t.match(stderr, /WARNING: serving the API on tcp:\/\/127\.0\.0\.1/);
});
