import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { removeAllContainers, startDaemon, unmountUnder } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';

const L = '/v4.3.1/libpod';

t.test('containers outlive a kill -9 of the daemon; exits meanwhile are recorded', async (t) => {
  const dir = mkdtempSync('/tmp/psd-');
  let socket = '';
  t.teardown(async () => {
    if (socket) await removeAllContainers(socket).catch(() => undefined);
  });
  t.teardown(() => {
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  const d1 = await startDaemon(t, { dir });
  socket = d1.socket;
  await loadBusybox(d1.socket);
  const make = async (name: string, command: string[]) => {
    const res = await d1.request('POST', `${L}/containers/create`, { image: 'busybox', name, command });
    t.equal(res.status, 201);
    t.equal((await d1.request('POST', `${L}/containers/${name}/start`)).status, 204);
  };
  await make('longrun', ['sh', '-c', 'echo started; sleep 1000']);
  await make('shortrun', ['sh', '-c', 'echo bye; sleep 1; exit 5']);
  // These exit while no daemon runs: conmon's exit command (podserve container cleanup) handles them.
  const autoRm = await d1.request('POST', `${L}/containers/create`, { image: 'busybox', name: 'autorm', remove: true, command: ['sleep', '1'] });
  t.equal(autoRm.status, 201);
  t.equal((await d1.request('POST', `${L}/containers/autorm/start`)).status, 204);
  const retry = await d1.request('POST', `${L}/containers/create`, {
    image: 'busybox',
    name: 'retry',
    restart_policy: 'on-failure',
    restart_tries: 1,
    command: ['sh', '-c', 'sleep 1; exit 1'],
  });
  t.equal(retry.status, 201);
  t.equal((await d1.request('POST', `${L}/containers/retry/start`)).status, 204);
  const pidBefore = (await d1.request('GET', `${L}/containers/longrun/json`)).json().State.Pid;

  d1.proc.kill('SIGKILL');
  await d1.exited;
  await new Promise((r) => setTimeout(r, 4000)); // shortrun, autorm and retry (twice) exit while no daemon runs

  const d2 = await startDaemon(t, { dir });
  const long = (await d2.request('GET', `${L}/containers/longrun/json`)).json();
  t.equal(long.State.Status, 'running', 'still running after the daemon died');
  t.equal(long.State.Pid, pidBefore, 'same process');
  const short = (await d2.request('GET', `${L}/containers/shortrun/json`)).json();
  t.equal(short.State.Status, 'exited');
  t.equal(short.State.ExitCode, 5);
  t.not(short.State.FinishedAt, '0001-01-01T00:00:00Z');
  t.match(readFileSync(short.HostConfig.LogConfig.Path, 'utf8'), /stdout F bye/);

  t.equal((await d2.request('GET', `${L}/containers/autorm/exists`)).status, 404, '--rm container removed with no daemon up');
  // Its second run may still be going on a busy machine: wait for it (the wait endpoint is event driven).
  await d2.request('POST', `${L}/containers/retry/wait`);
  const retried = (await d2.request('GET', `${L}/containers/retry/json`)).json();
  t.equal(retried.RestartCount, 1, 'restart policy applied with no daemon up');
  t.equal(retried.State.Status, 'exited');
  t.equal(retried.State.ExitCode, 1);

  // The recovered daemon manages the survivor fully.
  t.equal((await d2.request('POST', `${L}/containers/longrun/stop?timeout=0`)).status, 204);
  t.equal((await d2.request('GET', `${L}/containers/longrun/json`)).json().State.ExitCode, 137);
});
