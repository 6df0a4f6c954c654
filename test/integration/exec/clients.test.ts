/**
 * Exec with the real clients: podman-remote `exec` (exit codes, stdin, -it in a pseudo-terminal with typing and
 * resizing, detached) and `docker exec`.
 */
import t from 'tap';
import { loadBusybox } from '../../helpers/fixtures.js';
import { startDaemon } from '../../helpers/daemon.js';
import { DOCKER, PODMAN, PtySession, dockerArgs, podmanArgs, quiesce, runCli } from '../attach/helpers.js';

const d = await startDaemon(t);
t.teardown(() => quiesce(d));
await loadBusybox(d.socket);

const started = await runCli(PODMAN, podmanArgs(d, 'run', '-d', '--name', 'box', 'localhost/busybox', 'sleep', '1000'));
if (started.code !== 0) throw new Error(`podman run -d: ${started.stderr}`);

t.test('podman exec: output, stderr apart, exit code', async (t) => {
  const res = await runCli(PODMAN, podmanArgs(d, 'exec', 'box', 'sh', '-c', 'echo exec-out; echo exec-err >&2; exit 3'));
  t.equal(res.code, 3);
  t.equal(res.stdout.toString(), 'exec-out\n');
  t.equal(res.stderr, 'exec-err\n');
  const missing = await runCli(PODMAN, podmanArgs(d, 'exec', 'box', 'no-such-command'));
  t.equal(missing.code, 127, 'command not found');
  t.match(missing.stderr, /executable file not found/);
});

t.test('podman exec -i: stdin in, EOF ends the process; env, workdir, user', async (t) => {
  const res = await runCli(PODMAN, podmanArgs(d, 'exec', '-i', 'box', 'sh', '-c', 'cat; echo done'), { input: 'line one\nline two\n' });
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout.toString(), 'line one\nline two\ndone\n');
  const opts = await runCli(PODMAN, podmanArgs(d, 'exec', '-e', 'GREETING=hello', '-w', '/tmp', '-u', 'nobody', 'box', 'sh', '-c', 'echo $GREETING $(pwd) $(id -u)'));
  t.equal(opts.stdout.toString(), 'hello /tmp 65534\n', opts.stderr);
});

t.test('podman exec -it: a shell in a terminal, typed into, resized', async (t) => {
  const sh = new PtySession(PODMAN, podmanArgs(d, 'exec', '-it', 'box', 'sh'), { cols: 97, rows: 27 });
  t.teardown(() => sh.kill());
  await sh.expect('/ # ');
  await sh.type('stty size\r');
  await sh.expect('27 97');
  sh.pty.resize(133, 44);
  await new Promise((r) => setTimeout(r, 300));
  const mark = sh.output.length;
  await sh.type('stty size\r');
  await sh.expect('44 133', 15_000, mark);
  await sh.type('exit 4\r');
  t.equal(await sh.waitExit(), 4, 'exit code of the exec session');
});

t.test('podman exec -d returns at once; the session runs on', async (t) => {
  const res = await runCli(PODMAN, podmanArgs(d, 'exec', '-d', 'box', 'sh', '-c', 'sleep 0.2; touch /tmp/detached-ran'));
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout.toString(), /^[0-9a-f]{64}\n$/, 'prints the session id');
  await new Promise((r) => setTimeout(r, 600));
  t.equal((await runCli(PODMAN, podmanArgs(d, 'exec', 'box', 'test', '-e', '/tmp/detached-ran'))).code, 0);
});

t.test('docker exec: exit code, stdin, terminal', async (t) => {
  const res = await runCli(DOCKER, dockerArgs(d, 'exec', 'box', 'sh', '-c', 'echo via-docker; exit 5'));
  t.equal(res.stdout.toString(), 'via-docker\n');
  t.equal(res.code, 5, res.stderr);
  const piped = await runCli(DOCKER, dockerArgs(d, 'exec', '-i', 'box', 'cat'), { input: 'docker stdin\n' });
  t.equal(piped.stdout.toString(), 'docker stdin\n');
  t.equal(piped.code, 0, piped.stderr);
  const it = new PtySession(DOCKER, dockerArgs(d, 'exec', '-it', 'box', 'sh'), { cols: 88, rows: 22 });
  t.teardown(() => it.kill());
  await it.expect('/ # ');
  await it.type('stty size\r');
  await it.expect('22 88');
  await it.type('exit 2\r');
  t.equal(await it.waitExit(), 2);
  const detached = await runCli(DOCKER, dockerArgs(d, 'exec', '-d', 'box', 'true'));
  t.equal(detached.code, 0, detached.stderr);
});
