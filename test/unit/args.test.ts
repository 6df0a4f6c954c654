import t from 'tap';
import { parseCommandLine } from '../../src/args.js';

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
