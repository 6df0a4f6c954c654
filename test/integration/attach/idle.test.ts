/**
 * The idle exit counts hijacked connections (podman #7826 / #7905): a daemon with a 1 s idle timeout stays up
 * while an attach and an exec session are open for longer than that, and exits once they are closed.
 */
import t from 'tap';
import { loadBusybox } from '../../helpers/fixtures.js';
import { startDaemon } from '../../helpers/daemon.js';
import { createContainer, decodeFrames, hijackRequest, quiesce, startContainer, streamText } from './helpers.js';

t.test('hijacked streams keep an idle-timing daemon alive, and release it when they close', async (t) => {
  const d = await startDaemon(t, { time: 1 });
  t.teardown(() => quiesce(d));
  await loadBusybox(d.socket);
  const exitedEarly = (): boolean => d.proc.exitCode !== null || d.proc.signalCode !== null;

  // Ends by itself a little after the test: once the daemon is gone, its exit command records the exit.
  const id = await createContainer(d, { command: ['sh', '-c', 'read x; echo got-$x; sleep 3'], stdin: true });
  await startContainer(d, id);
  const attach = hijackRequest(d, { path: `/v4.3.1/libpod/containers/${id}/attach?stdin=true&stdout=true`, upgrade: true });
  await attach.head;
  await new Promise((r) => setTimeout(r, 1800));
  t.notOk(exitedEarly(), 'alive after 1.8 s with an attach open');

  const execCreate = await d.request('POST', `/v4.3.1/libpod/containers/${id}/exec`, { Cmd: ['sh', '-c', 'sleep 1.8; echo exec-done'], AttachStdout: true });
  const exec = hijackRequest(d, { path: `/v4.3.1/libpod/exec/${execCreate.json().Id}/start`, body: { Detach: false } });
  await exec.head;
  attach.write('x\n');
  await attach.waitForText('got-x');
  attach.destroy();
  t.equal(streamText(decodeFrames(await exec.done()), 1), 'exec-done\n');
  t.notOk(exitedEarly(), 'alive while the exec session streamed, after the attach was closed');

  const started = Date.now();
  const code = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
  t.equal(code, 0, 'exited by itself once the streams were closed');
  t.ok(Date.now() - started < 4000, 'soon after');
});
