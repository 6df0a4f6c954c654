import t from 'tap';
import { isLoopbackHost, parseCommandLine } from '../../src/args.js';

t.test('podman-shaped command lines', async (t) => {
  const cmd = parseCommandLine(['--root', '/tmp/a/root', '--runroot=/tmp/a/run', 'service', '--time', '0', 'unix:///tmp/a/podserve.sock']);
  t.equal(cmd.kind, 'service');
  if (cmd.kind !== 'service') return;
  t.equal(cmd.config.root, '/tmp/a/root');
  t.equal(cmd.config.runRoot, '/tmp/a/run');
  t.equal(cmd.config.idleTimeoutSec, 0);
  t.equal(cmd.config.uri, 'unix:///tmp/a/podserve.sock');

  const dflt = parseCommandLine(['system', 'service']);
  if (dflt.kind !== 'service') throw new Error('expected service');
  t.equal(dflt.config.root, '/var/lib/podserve');
  t.equal(dflt.config.runRoot, '/run/podserve');
  t.equal(dflt.config.uri, 'unix:///run/podserve/podserve.sock');
  t.equal(dflt.config.idleTimeoutSec, 5, 'podman system service default');
  t.match(dflt.config.runtimePath, /runc$/);

  const short = parseCommandLine(['service', '-t', '7', 'tcp://127.0.0.1:8080']);
  if (short.kind !== 'service') throw new Error('expected service');
  t.equal(short.config.idleTimeoutSec, 7);
  t.equal(short.config.uri, 'tcp://127.0.0.1:8080');

  t.equal(parseCommandLine(['--help']).kind, 'help');
  t.equal(parseCommandLine([]).kind, 'help');
  t.equal(parseCommandLine(['--version']).kind, 'version');
});

t.test('refusals', async (t) => {
  const bad: string[][] = [
    ['service', '--time'],
    ['service', '--time', 'x'],
    ['service', 'unix:///a', 'unix:///b'],
    ['service', '--tls-cert', 'c'],
    ['--runtime'],
    ['nope'],
  ];
  for (const args of bad) t.throws(() => parseCommandLine(args), { name: 'UsageError' }, args.join(' '));
});

t.test('plain tcp:// only on loopback; elsewhere TLS with client certificates', async (t) => {
  for (const uri of ['tcp://127.0.0.1:2375', 'tcp://127.8.9.1:2375', 'tcp://localhost:2375', 'tcp://[::1]:2375']) {
    const cmd = parseCommandLine(['service', uri]);
    t.equal(cmd.kind === 'service' && cmd.config.uri, uri, `${uri} accepted without TLS`);
  }
  for (const uri of ['tcp://0.0.0.0:2375', 'tcp://192.0.2.7:2375', 'tcp://[::]:2375', 'tcp://example.test:2375']) {
    t.throws(() => parseCommandLine(['service', uri]), { name: 'UsageError', message: /not a loopback address.*--tls-cert/ }, uri);
  }
  const tls = parseCommandLine(['service', '--tls-cert', '/c.pem', '--tls-key=/k.pem', '--tls-ca', '/ca.pem', 'tcp://0.0.0.0:2376']);
  if (tls.kind !== 'service') throw new Error('expected service');
  t.same(tls.config.tls, { cert: '/c.pem', key: '/k.pem', ca: '/ca.pem' });
  t.equal(tls.config.uri, 'tcp://0.0.0.0:2376');
  t.throws(() => parseCommandLine(['service', '--tls-cert', '/c', '--tls-key', '/k', 'tcp://0.0.0.0:1']), {
    message: /go together/,
  });
});

t.test('isLoopbackHost', async (t) => {
  for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.255.0.3', '::1', '[::1]', '::ffff:127.0.0.1']) {
    t.ok(isLoopbackHost(host), host);
  }
  for (const host of ['0.0.0.0', '::', '[::]', '10.0.0.1', '128.0.0.1', 'localhost.example', '127.0.0.1.nip', '::ffff:10.0.0.1', '']) {
    t.notOk(isLoopbackHost(host), host);
  }
});
