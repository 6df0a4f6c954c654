import t from 'tap';
import { conmonLogLevel, containerConmonArgs, execConmonArgs, parsePipeMessage } from '../../../src/oci/conmon-process.js';
import {
  buildRuntimeEnv,
  classifyRuntimeMessage,
  OciRuntimeError,
  parseRuntimeJsonLog,
  parseRuntimeTextLog,
  parseRuntimeVersion,
} from '../../../src/oci/runtime-cli.js';
import { RuntimeError } from '../../../src/errors.js';

const shared = {
  ctrId: 'c1',
  uuid: 'c1',
  runtimePath: '/usr/sbin/runc',
  bundleDir: '/b',
  pidFile: '/r/pidfile',
  name: 'web',
  exitDir: '/x',
  runtimeFlags: ['--root', '/rr'],
  logDriver: 'k8s-file:/l/ctr.log',
  logLevel: 'warning',
  ociLog: '/r/oci-log',
  conmonPidFile: '/r/conmon.pid',
};

t.test('container command line follows Podman\'s order', async (t) => {
  t.same(
    containerConmonArgs({ ...shared, terminal: false, stdin: true, logSizeMax: 1000, exitCommand: ['/bin/podserve', 'container', 'cleanup', 'c1'], exitDelay: 0 }),
    [
      '--api-version', '1', '-c', 'c1', '-u', 'c1', '-r', '/usr/sbin/runc', '-b', '/b', '-p', '/r/pidfile', '-n', 'web',
      '--exit-dir', '/x', '--full-attach', '--runtime-arg', '--root', '--runtime-arg', '/rr',
      '-l', 'k8s-file:/l/ctr.log', '--log-level', 'warning', '--log-size-max', '1000',
      '--runtime-arg', '--log-format=json', '--runtime-arg', '--log', '--runtime-arg=/r/oci-log',
      '-i', '--conmon-pidfile', '/r/conmon.pid',
      '--exit-command', '/bin/podserve', '--exit-command-arg', 'container', '--exit-command-arg', 'cleanup', '--exit-command-arg', 'c1',
    ],
  );
  const tty = containerConmonArgs({ ...shared, terminal: true, stdin: true, exitCommand: ['/e'], exitDelay: 5 });
  t.ok(tty.includes('-t') && !tty.includes('-i'), 'a terminal replaces -i');
  t.same(tty.slice(-4), ['--exit-command', '/e', '--exit-delay', '5']);
  const plain = containerConmonArgs({ ...shared, terminal: false, stdin: false });
  t.notOk(plain.includes('-t') || plain.includes('-i') || plain.includes('--exit-command'), 'no stdio or exit flags');
});

t.test('exec command line', async (t) => {
  const args = execConmonArgs({
    ...shared,
    uuid: 'sess',
    logDriver: 'none',
    terminal: true,
    attachStdin: true,
    processSpec: '/b/exec-process-1',
    exitCommand: ['/bin/podserve', 'exec-cleanup'],
    exitDelay: 300,
  });
  t.same(args.slice(0, 6), ['--api-version', '1', '-c', 'c1', '-u', 'sess']);
  const tail = args.slice(args.indexOf('-t'));
  t.same(tail, [
    '-t', '-i', '-e', '--exec-attach', '--exec-process-spec', '/b/exec-process-1', '--conmon-pidfile', '/r/conmon.pid',
    '--exit-command', '/bin/podserve', '--exit-command-arg', 'exec-cleanup', '--exit-delay', '300',
  ]);
  t.ok(args.includes('none'), 'exec sessions do not log');
});

t.test('log levels and pipe messages', async (t) => {
  t.equal(conmonLogLevel('debug'), 'debug');
  t.equal(conmonLogLevel('warn'), 'warning');
  t.equal(conmonLogLevel('silent'), 'error');
  t.same(parsePipeMessage('{"data": 4242}'), { data: 4242 });
  t.same(parsePipeMessage('{"data": -1, "message": "boom"}'), { data: -1, message: 'boom' });
  t.throws(() => parsePipeMessage('{"pid": 1}'), RuntimeError);
  t.throws(() => parsePipeMessage('not json'), RuntimeError);
});

t.test('runtime error text', async (t) => {
  const log = [
    '{"level":"warning","msg":"something minor","time":"t"}',
    '{"level":"error","msg":"runc create failed: unable to start container process: error setting rlimits: operation not permitted","time":"t"}',
    '',
  ].join('\n');
  t.match(parseRuntimeJsonLog(log), /^runc create failed: .*operation not permitted$/);
  t.equal(parseRuntimeJsonLog('garbage\n'), undefined);
  t.equal(parseRuntimeJsonLog('{"level":"info","msg":"only info"}'), 'only info');
  t.equal(parseRuntimeTextLog('time="2026" level=error msg="container \\"x\\" does not exist"\n'), 'container "x" does not exist');
  t.equal(parseRuntimeTextLog('time="2026" level=warning msg="meh"\n'), undefined);

  t.equal(classifyRuntimeMessage('exec: "nope": executable file not found in $PATH'), 'command-not-found');
  t.equal(classifyRuntimeMessage('stat /x: no such file or directory'), 'command-not-found');
  t.equal(classifyRuntimeMessage('open /dev/x: Permission denied'), 'permission-denied');
  t.equal(classifyRuntimeMessage('something else'), 'generic');

  const err = new OciRuntimeError('runc', 'container not running\n');
  t.ok(err instanceof RuntimeError);
  t.equal(err.message, 'runc: container not running: OCI runtime error');
  t.equal(err.causeText, 'container not running');
  t.equal(err.status, 500);
  t.equal(err.kind, 'generic');
});

t.test('runtime --version output', async (t) => {
  t.same(parseRuntimeVersion('runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\n'), {
    version: '1.1.5+ds1',
    commit: '1.1.5+ds1-1+deb12u1',
    spec: '1.0.2-dev',
  });
  t.same(parseRuntimeVersion('crun version 1.8\ncommit: abc\nrundir: /run/crun\nspec: 1.0.0\n+SYSTEMD'), {
    version: '1.8',
    commit: 'abc',
    spec: '1.0.0',
  });
});

t.test('the runtime environment is an allow-list', async (t) => {
  const env = buildRuntimeEnv({
    PATH: '/p',
    HOME: '/root',
    LC_ALL: 'C',
    LISTEN_FDS: '1',
    LISTEN_PID: '5',
    LISTEN_FDNAMES: 'x',
    NOTIFY_SOCKET: '/run/notify',
    SECRET: 'nope',
  });
  t.same(env, { PATH: '/p', XDG_RUNTIME_DIR: process.getuid?.() === 0 ? '/run' : `/run/user/${process.getuid?.()}`, HOME: '/root', LC_ALL: 'C' });
  t.equal(buildRuntimeEnv({ XDG_RUNTIME_DIR: '/xdg' }).XDG_RUNTIME_DIR, '/xdg');
  t.match(buildRuntimeEnv({}).PATH, /\/usr\/sbin/);
});
