/** sd_notify: messages reach a filesystem NOTIFY_SOCKET and an abstract one, and the variable is not inherited. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { pino } from 'pino';
import { SystemdNotifier, takeNotifySocket } from '../../../src/notify.js';

const quiet = pino({ level: 'silent' });

t.test('takeNotifySocket reads NOTIFY_SOCKET once and removes it', async (t) => {
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify', OTHER: 'x' };
  t.equal(takeNotifySocket(env), '/run/systemd/notify');
  t.notOk('NOTIFY_SOCKET' in env, 'children will not see it');
  t.equal(env.OTHER, 'x');
  t.equal(takeNotifySocket(env), undefined);
  t.equal(takeNotifySocket({ NOTIFY_SOCKET: '' }), undefined);
});

t.test('without NOTIFY_SOCKET nothing is sent', async (t) => {
  const notifier = new SystemdNotifier(undefined, quiet);
  t.equal(notifier.enabled, false);
  t.equal(await notifier.ready('x'), false);
});

t.test('READY, STATUS and STOPPING reach a filesystem socket, one datagram each', async (t) => {
  const dir = mkdtempSync('/tmp/psn-');
  const path = join(dir, 'notify');
  const receiver = new DgramSocket();
  t.teardown(() => {
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const got: string[] = [];
  receiver.on('data', (buf: Buffer) => got.push(buf.toString()));
  receiver.bind(path);

  const notifier = new SystemdNotifier(path, quiet);
  t.equal(await notifier.ready('Serving on unix:///x'), true);
  t.equal(await notifier.status('two\nlines'), true);
  t.equal(await notifier.stopping('Stopping: idle timeout'), true);
  const deadline = Date.now() + 2000;
  while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.same(got, ['READY=1\nSTATUS=Serving on unix:///x', 'STATUS=two lines', 'STOPPING=1\nSTATUS=Stopping: idle timeout']);
});

t.test('a missing socket is reported, not thrown', async (t) => {
  const notifier = new SystemdNotifier('/tmp/psn-nonexistent/notify', quiet);
  t.equal(await notifier.ready('x'), false);
});

t.test('an abstract socket (@name) receives the message with our pid as sender', async (t) => {
  // systemd-socket-activate binds the abstract name exactly as systemd does and hands the datagram to dd.
  const name = `@podserve-notify-test-${process.pid}-${Date.now()}`;
  const receiver = spawn('systemd-socket-activate', ['--datagram', '-l', name, 'sh', '-c', 'dd bs=65536 count=1 status=none <&3'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  receiver.stdout.on('data', (c: Buffer) => (out += c.toString()));
  receiver.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((resolve) => receiver.once('exit', () => resolve()));
  t.teardown(() => {
    receiver.kill('SIGKILL');
  });
  const deadline = Date.now() + 5000;
  while (!/Listening on/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.match(err, /Listening on @podserve-notify-test/);

  const notifier = new SystemdNotifier(name, quiet);
  t.equal(await notifier.ready('Serving'), true);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
  t.match(out, /^MAINPID=(\d+)\nREADY=1\nSTATUS=Serving/);
  t.equal(Number(/^MAINPID=(\d+)/.exec(out)?.[1]), process.pid, 'sent on behalf of this process');
});
