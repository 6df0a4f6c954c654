/**
 * Attach with the real clients: podman-remote (`run -i`, `run -it` in a pseudo-terminal with typing, resize,
 * detach and reattach, custom detach keys, `start -a`) and the docker CLI (`run -it`, `run --rm` exit codes),
 * plus a 50 MiB random payload through stdin and back, checked by sha256.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { loadBusybox } from '../../helpers/fixtures.js';
import { startDaemon } from '../../helpers/daemon.js';
import { DOCKER, PODMAN, PtySession, dockerArgs, inspectState, podmanArgs, quiesce, runCli, waitStatus } from './helpers.js';

const d = await startDaemon(t);
t.teardown(() => quiesce(d));
await loadBusybox(d.socket);

const IMAGE = 'localhost/busybox';

t.test('echo hi | podman run -i --rm cat: stdin EOF ends the container', async (t) => {
  const res = await runCli(PODMAN, podmanArgs(d, 'run', '-i', '--rm', IMAGE, 'cat'), { input: 'hi\n' });
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout.toString(), 'hi\n');
});

t.test('podman run --rm: stdout and stderr kept apart, exit code passed on', async (t) => {
  const res = await runCli(PODMAN, podmanArgs(d, 'run', '--rm', IMAGE, 'sh', '-c', 'echo to-out; echo to-err >&2; exit 3'));
  t.equal(res.code, 3);
  t.equal(res.stdout.toString(), 'to-out\n');
  t.equal(res.stderr, 'to-err\n');
});

t.test('50 MiB of random bytes through stdin and back out, sha256 equal', async (t) => {
  const payload = randomBytes(50 * 1024 * 1024);
  const started = Date.now();
  const res = await runCli(PODMAN, podmanArgs(d, 'run', '-i', '--rm', IMAGE, 'cat'), { input: payload, timeoutMs: 60_000 });
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout.length, payload.length, 'every byte came back');
  t.equal(createHash('sha256').update(res.stdout).digest('hex'), createHash('sha256').update(payload).digest('hex'));
  t.comment(`50 MiB round trip in ${Date.now() - started} ms`);
});

t.test('podman run -it: type and read, resize, detach with ctrl-p ctrl-q, reattach, custom detach keys', async (t) => {
  const run = new PtySession(PODMAN, podmanArgs(d, 'run', '-it', '--name', 'ptyshell', IMAGE, 'sh'), { cols: 100, rows: 30 });
  t.teardown(() => run.kill());
  await run.expect('/ # ');
  await run.type('stty size\r');
  await run.expect('30 100');
  run.pty.resize(120, 40);
  await new Promise((r) => setTimeout(r, 300));
  let mark = run.output.length;
  await run.type('stty size\r');
  await run.expect('40 120', 15_000, mark);
  mark = run.output.length;
  await run.type('echo answer-$((6*7))\r');
  await run.expect('answer-42', 15_000, mark);
  // One key per read, as typed: podman-remote itself recognises the sequence and closes the connection.
  await run.type('\x10\x11', 100);
  t.equal(await run.waitExit(), 0, 'podman exits 0 on detach');
  t.equal((await inspectState(d, 'ptyshell')).Status, 'running', 'the container keeps running');

  const again = new PtySession(PODMAN, podmanArgs(d, 'attach', 'ptyshell'), { cols: 90, rows: 20 });
  t.teardown(() => again.kill());
  await new Promise((r) => setTimeout(r, 500));
  await again.type('echo back-$((1+1))\r');
  await again.expect('back-2');
  await again.type('\x10\x11', 100);
  // podman attach (remote) reports the detach as an error, exit 125, as against podman system service.
  t.equal(await again.waitExit(), 125, 'reattached session detached again');
  t.match(again.output, /Error: detached from container/);

  const custom = new PtySession(PODMAN, podmanArgs(d, 'attach', '--detach-keys', 'ctrl-x,d', 'ptyshell'));
  t.teardown(() => custom.kill());
  await new Promise((r) => setTimeout(r, 500));
  await custom.type('echo custom-$((2+2))\r');
  await custom.expect('custom-4');
  await custom.type('\x18d', 100);
  t.equal(await custom.waitExit(), 125, 'custom keys detach');
  t.equal((await inspectState(d, 'ptyshell')).Status, 'running');

  const last = new PtySession(PODMAN, podmanArgs(d, 'attach', 'ptyshell'));
  t.teardown(() => last.kill());
  await new Promise((r) => setTimeout(r, 500));
  await last.type('exit 5\r');
  await last.waitExit();
  await waitStatus(d, 'ptyshell', 'exited');
  t.equal((await inspectState(d, 'ptyshell')).ExitCode, 5);
});

t.test('podman start -a prints the output of a created container', async (t) => {
  const created = await runCli(PODMAN, podmanArgs(d, 'create', '--name', 'startattach', IMAGE, 'sh', '-c', 'echo started-output; exit 2'));
  t.equal(created.code, 0, created.stderr);
  const res = await runCli(PODMAN, podmanArgs(d, 'start', '-a', 'startattach'));
  t.equal(res.stdout.toString(), 'started-output\n');
  t.equal(res.code, 2, 'exit code of the container');
});

t.test('docker run --rm passes the exit code on; docker run -it works in a terminal', async (t) => {
  const res = await runCli(DOCKER, dockerArgs(d, 'run', '--rm', IMAGE, 'sh', '-c', 'echo docker-out; exit 7'));
  t.equal(res.stdout.toString(), 'docker-out\n');
  t.equal(res.code, 7, res.stderr);

  const piped = await runCli(DOCKER, dockerArgs(d, 'run', '-i', '--rm', IMAGE, 'cat'), { input: 'through docker\n' });
  t.equal(piped.stdout.toString(), 'through docker\n');
  t.equal(piped.code, 0, piped.stderr);

  const it = new PtySession(DOCKER, dockerArgs(d, 'run', '-it', '--rm', IMAGE, 'sh'), { cols: 101, rows: 31 });
  t.teardown(() => it.kill());
  await it.expect('/ # ');
  await it.type('stty size\r');
  await it.expect('31 101');
  await it.type('exit 6\r');
  t.equal(await it.waitExit(), 6, 'docker run -it exit code');
});
