/**
 * Exec sessions over the raw HTTP API: create / start (hijacked and detached) / inspect / resize on both trees,
 * exit codes stored before the connection closes, runtime failures, detaching and disconnecting, sessions stopped
 * with their container, events.
 */
import t from 'tap';
import { loadBusybox } from '../../helpers/fixtures.js';
import { startDaemon, type Response } from '../../helpers/daemon.js';
import {
  OK_HEAD,
  UPGRADED_HEAD,
  createContainer,
  decodeFrames,
  hijackRequest,
  journalEvents,
  quiesce,
  startContainer,
  streamText,
  waitStatus,
} from '../attach/helpers.js';

const d = await startDaemon(t);
t.teardown(() => quiesce(d));
await loadBusybox(d.socket);

const ctr = await createContainer(d, { command: ['sleep', '1000'], name: 'execbox' });
await startContainer(d, ctr);

async function execCreate(body: Record<string, unknown>, container = ctr, prefix = '/v4.3.1/libpod'): Promise<string> {
  const res = await d.request('POST', `${prefix}/containers/${container}/exec`, body);
  if (res.status !== 201) throw new Error(`exec create: ${res.status} ${res.text}`);
  return res.json<{ Id: string }>().Id;
}

async function execJson(id: string): Promise<Record<string, any>> {
  const res = await d.request('GET', `/v4.3.1/libpod/exec/${id}/json`);
  if (res.status !== 200) throw new Error(`exec inspect: ${res.status} ${res.text}`);
  return res.json();
}

async function waitExecStopped(id: string, timeoutMs = 10_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await execJson(id);
    // CanRemove: stopped (a session not started yet is not running either).
    if (info.CanRemove) return info;
    if (Date.now() > deadline) throw new Error(`exec session ${id} still running`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('create → 201 {Id}; inspect has Podman\'s shape and field order', async (t) => {
  const id = await execCreate({ Cmd: ['sh', '-c', 'exit 3'], AttachStdout: true, AttachStderr: true, User: 'root', DetachKeys: 'ctrl-a' });
  t.match(id, /^[0-9a-f]{64}$/);
  const res = await d.request('GET', `/v4.3.1/libpod/exec/${id}/json`);
  t.equal(res.status, 200);
  t.same(Object.keys(res.json()), ['CanRemove', 'ContainerID', 'DetachKeys', 'ExitCode', 'ID', 'OpenStderr', 'OpenStdin', 'OpenStdout', 'Running', 'Pid', 'ProcessConfig']);
  t.same(res.json(), {
    CanRemove: false,
    ContainerID: ctr,
    DetachKeys: 'ctrl-a',
    ExitCode: 0,
    ID: id,
    OpenStderr: true,
    OpenStdin: false,
    OpenStdout: true,
    Running: false,
    Pid: 0,
    ProcessConfig: { arguments: ['-c', 'exit 3'], entrypoint: 'sh', privileged: false, tty: false, user: 'root' },
  });
  const single = await execJson(await execCreate({ Cmd: ['true'] }));
  t.same(single.ProcessConfig, { arguments: null, entrypoint: 'true', privileged: false, tty: false, user: '' });
  const inspect = await d.request('GET', `/v4.3.1/libpod/containers/${ctr}/json`);
  t.ok((inspect.json().ExecIDs as string[]).includes(id), 'listed in the container inspect');
});

t.test('attached start: 200 head, frames apart, the exit code is stored before the connection closes', async (t) => {
  const id = await execCreate({ Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], AttachStdout: true, AttachStderr: true });
  const client = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${id}/start`, body: { Detach: false, Tty: false } });
  t.equal(await client.head, OK_HEAD);
  const frames = decodeFrames(await client.done());
  t.equal(streamText(frames, 1), 'out\n');
  t.equal(streamText(frames, 2), 'err\n');
  // Right after EOF, no polling.
  const info = await execJson(id);
  t.match(info, { Running: false, ExitCode: 3, CanRemove: true, Pid: 0 });

  const again = await d.request('POST', `/v4.3.1/libpod/exec/${id}/start`, { Detach: false });
  t.equal(again.status, 500);
  t.match(again.json(), { cause: 'exec session state improper', message: /can only start created exec sessions, while container .* state is "stopped"/ });
});

t.test('Upgrade: tcp → 101; stdin to the process, half-close ends it', async (t) => {
  const id = await execCreate({ Cmd: ['sh', '-c', 'cat; echo bye'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
  const client = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${id}/start`, upgrade: true, body: { Detach: false }, pipelined: 'early\n' });
  t.equal(await client.head, UPGRADED_HEAD);
  client.write('later\n');
  await client.waitForText('later');
  client.end();
  t.equal(streamText(decodeFrames(await client.done()), 1), 'early\nlater\nbye\n');
  t.match(await execJson(id), { Running: false, ExitCode: 0 });
});

t.test('Detach: true answers 200 text/plain "\\n"; the exit is recorded when it comes', async (t) => {
  const id = await execCreate({ Cmd: ['sh', '-c', 'sleep 0.3; exit 4'] });
  const res = await d.request('POST', `/v4.3.1/libpod/exec/${id}/start`, { Detach: true });
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'text/plain; charset=us-ascii');
  t.equal(res.text, '\n');
  const running = await execJson(id);
  t.equal(running.Running, true);
  t.ok(running.Pid > 0);
  const done = await waitExecStopped(id);
  t.match(done, { ExitCode: 4, Pid: 0, CanRemove: true });
  const died = journalEvents(d).filter((e) => e.Status === 'exec_died' && e.ID === ctr && e.ContainerExitCode === 4);
  t.equal(died.length, 1, 'one exec_died event with the exit code');
});

t.test('TTY exec: raw output, initial size from h/w, resize while running', async (t) => {
  const sized = await execCreate({ Cmd: ['stty', 'size'], Tty: true, AttachStdout: true });
  const first = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${sized}/start`, body: { Detach: false, Tty: true, h: 25, w: 91 } });
  await first.head;
  t.equal((await first.done()).toString(), '25 91\r\n', 'raw, no headers, size applied before the process ran');

  const resized = await execCreate({ Cmd: ['sh', '-c', 'read x; stty size'], Tty: true, AttachStdin: true, AttachStdout: true });
  const second = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${resized}/start`, upgrade: true, body: { Detach: false, Tty: true } });
  await second.head;
  const resize = await d.request('POST', `/v4.3.1/libpod/exec/${resized}/resize?h=40&w=132&running=true`);
  t.equal(resize.status, 201, 'resize right after the start answered');
  t.equal(resize.body.length, 0);
  second.write('go\r');
  t.match((await second.done()).toString(), /40 132\r\n$/);

  const stopped = await d.request('POST', `/v4.3.1/libpod/exec/${resized}/resize?h=10&w=10`);
  t.equal(stopped.status, 500, 'a stopped session cannot be resized');
  t.match(stopped.json().message, /cannot resize session/);
  t.equal((await d.request('POST', `/v4.3.1/libpod/exec/${resized}/resize?h=10&w=10&running=true`)).status, 201, 'unless running=true');
});

t.test('a command the runtime cannot run: the error on the stream, exit code 127', async (t) => {
  const id = await execCreate({ Cmd: ['no-such-command'], AttachStdout: true, AttachStderr: true });
  const client = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${id}/start`, body: { Detach: false } });
  await client.head;
  const frames = decodeFrames(await client.done());
  t.match(streamText(frames, 2), /^Error: .*executable file not found/);
  t.match(await execJson(id), { Running: false, ExitCode: 127 });
});

t.test('detach keys and disconnects leave the session running; its exit is still recorded', async (t) => {
  const id = await execCreate({ Cmd: ['sh', '-c', 'read x; exit 9'], Tty: true, AttachStdin: true, AttachStdout: true });
  const client = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${id}/start`, body: { Detach: false, Tty: true } });
  await client.head;
  client.write('\x10\x11');
  t.ok((await client.done()).toString().endsWith('Error: detached from container\n'), 'detached (raw error line)');
  t.equal((await execJson(id)).Running, true, 'the process goes on');

  const custom = await execCreate({ Cmd: ['sh', '-c', 'sleep 0.4; exit 8'], AttachStdin: true, AttachStdout: true, DetachKeys: 'ctrl-e' });
  const detaching = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${custom}/start`, body: { Detach: false } });
  await detaching.head;
  detaching.write('\x05');
  t.same(
    decodeFrames(await detaching.done()).map((f) => [f.stream, f.payload.toString()]),
    [[2, 'Error: detached from container\n']],
    'custom keys; a stderr frame without a terminal',
  );
  t.match(await waitExecStopped(custom), { ExitCode: 8 }, 'exit recorded by the exit-file watch');

  const gone = await execCreate({ Cmd: ['sh', '-c', 'sleep 0.3; exit 6'], AttachStdout: true });
  const vanishing = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${gone}/start`, body: { Detach: false } });
  await vanishing.head;
  vanishing.destroy();
  t.match(await waitExecStopped(gone), { ExitCode: 6 }, 'a client that went away did not stop it');
  t.equal((await d.request('GET', '/_ping')).status, 200);
});

t.test('state rules: running container required, paused is 409, bad bodies', async (t) => {
  const emptyCmd = await d.request('POST', `/v4.3.1/libpod/containers/${ctr}/exec`, { Cmd: [] });
  t.equal(emptyCmd.status, 500);
  t.match(emptyCmd.json(), { cause: 'invalid argument', message: 'must provide a non-empty command to start an exec session: invalid argument' });
  const badEnv = await d.request('POST', `/v4.3.1/libpod/containers/${ctr}/exec`, { Cmd: ['true'], Env: ['NOEQUALS'] });
  t.equal(badEnv.status, 400);
  t.match(badEnv.json().message, 'environment variable "NOEQUALS" badly formed, must be key=value');
  const badKeys = await d.request('POST', `/v4.3.1/libpod/containers/${ctr}/exec`, { Cmd: ['true'], DetachKeys: 'ctrl-zz' });
  t.equal(badKeys.status, 400);
  t.equal((await d.request('POST', '/v4.3.1/libpod/containers/nonesuch/exec', { Cmd: ['true'] })).status, 404);
  for (const [method, path] of [
    ['GET', '/v4.3.1/libpod/exec/feed/json'],
    ['POST', '/v4.3.1/libpod/exec/feed/resize?h=1&w=1'],
    ['POST', '/v4.3.1/exec/feed/start'],
  ] as const) {
    const res: Response = await d.request(method, path, method === 'POST' && path.endsWith('start') ? { Detach: false } : undefined);
    t.equal(res.status, 404, `${method} ${path}`);
    t.match(res.json(), { cause: 'no such exec session', message: 'no exec session with ID feed found: no such exec session' });
  }
  const noBody = await d.request('POST', `/v4.3.1/libpod/exec/${await execCreate({ Cmd: ['true'] })}/start`);
  t.equal(noBody.status, 400, 'a start without body');

  const other = await createContainer(d, { command: ['sleep', '1000'] });
  const created = await d.request('POST', `/v4.3.1/libpod/containers/${other}/exec`, { Cmd: ['true'] });
  t.equal(created.status, 500, 'libpod: not running');
  t.match(created.json().message, /can only create exec sessions on running containers/);
  t.equal((await d.request('POST', `/v1.41/containers/${other}/exec`, { Cmd: ['true'] })).status, 409, 'compat: 409');
  await startContainer(d, other);
  const pending = await execCreate({ Cmd: ['true'] }, other);
  await d.request('POST', `/v4.3.1/libpod/containers/${other}/pause`);
  const paused = await d.request('POST', `/v4.3.1/libpod/containers/${other}/exec`, { Cmd: ['true'] });
  t.equal(paused.status, 409);
  t.match(paused.json().message, /cannot create exec session as container .* is paused/);
  const startPaused = await d.request('POST', `/v4.3.1/libpod/exec/${pending}/start`, { Detach: false });
  t.equal(startPaused.status, 409);
  t.match(startPaused.json().message, /cannot exec in a container that is not running; container .* is paused/);
  await d.request('POST', `/v4.3.1/libpod/containers/${other}/unpause`);
});

t.test('stopping the container stops its sessions and records their exits', async (t) => {
  const other = await createContainer(d, { command: ['sleep', '1000'] });
  await startContainer(d, other);
  const detached = await execCreate({ Cmd: ['sleep', '1000'] }, other);
  t.equal((await d.request('POST', `/v4.3.1/libpod/exec/${detached}/start`, { Detach: true })).status, 200);
  const attachedId = await execCreate({ Cmd: ['sleep', '1000'], AttachStdout: true }, other);
  const attached = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${attachedId}/start`, body: { Detach: false } });
  await attached.head;
  const stop = await d.request('POST', `/v4.3.1/libpod/containers/${other}/stop?timeout=2`);
  t.equal(stop.status, 204);
  await attached.done();
  for (const id of [detached, attachedId]) {
    const info = await execJson(id);
    t.equal(info.Running, false, 'stopped with the container');
    t.ok(info.ExitCode === 143 || info.ExitCode === 137, `killed by a signal (${info.ExitCode})`);
  }
  await waitStatus(d, other, 'exited');
  const removed = await d.request('DELETE', `/v4.3.1/libpod/containers/${other}`);
  t.equal(removed.status, 200);
  t.equal((await d.request('GET', `/v4.3.1/libpod/exec/${detached}/json`)).status, 404, 'sessions go with their container');
});

t.test('compat twins: 101 for docker, ConsoleSize, inspect and resize', async (t) => {
  const id = await execCreate({ Cmd: ['stty', 'size'], Tty: true, AttachStdout: true, AttachStderr: true, AttachStdin: false }, 'execbox', '/v1.41');
  const client = hijackRequest(d, { path: `/v1.41/exec/${id}/start`, upgrade: true, body: { Detach: false, Tty: true, ConsoleSize: [17, 77] } });
  t.equal(await client.head, UPGRADED_HEAD);
  t.equal((await client.done()).toString(), '17 77\r\n');
  const info = await d.request('GET', `/v1.41/exec/${id}/json`);
  t.match(info.json(), { ExitCode: 0, Running: false, ProcessConfig: { tty: true } });
  t.equal((await d.request('POST', `/v1.41/exec/${id}/resize?h=5&w=5`)).status, 500);
});

t.test('exec and exec_died events', async (t) => {
  const events = journalEvents(d).filter((e) => e.ID === ctr);
  t.ok(events.filter((e) => e.Status === 'exec').length >= 8, 'one exec event per started session');
  t.ok(events.filter((e) => e.Status === 'exec_died').length >= 6, 'exec_died for each recorded exit');
});
