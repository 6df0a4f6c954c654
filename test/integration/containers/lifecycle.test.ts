import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { startDaemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';

const run = promisify(execFile);
const L = '/v4.3.1/libpod';

const d = await startDaemon(t);
await loadBusybox(d.socket);
const podman = (...args: string[]) => run('podman', ['--url', `unix://${d.socket}`, ...args], { timeout: 60_000 });

async function create(body: Record<string, unknown>): Promise<string> {
  const res = await d.request('POST', `${L}/containers/create`, { image: 'busybox', ...body });
  if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`);
  return res.json().Id;
}

const inspect = async (id: string) => (await d.request('GET', `${L}/containers/${id}/json`)).json();

/** conmon processes monitoring containers of this daemon (their argv carries its state dir). */
function conmonCount(): number {
  try {
    // The monitor's argv[0] is conmon; the exit command's argv merely mentions it.
    return Number(execFileSync('pgrep', ['-fc', `^[^ ]*conmon .*${d.dir}`]).toString().trim());
  } catch {
    return 0; // pgrep exits 1 when nothing matches
  }
}

/** conmon monitors end a moment after their container (they run the exit command first). */
async function conmonsGone(timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (conmonCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return conmonCount();
}

t.test('create, start, wait: exit code and output in the log', async (t) => {
  const id = await create({ command: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
  t.match(id, /^[0-9a-f]{64}$/);
  let info = await inspect(id);
  t.equal(info.State.Status, 'created');
  t.equal(info.Config.Image, 'localhost/busybox:latest');

  t.equal((await d.request('POST', `${L}/containers/${id}/start`)).status, 204);
  const wait = await d.request('POST', `${L}/containers/${id}/wait`);
  t.equal(wait.status, 200);
  t.equal(wait.text, '3\n');
  info = await inspect(id);
  t.equal(info.State.Status, 'exited');
  t.equal(info.State.ExitCode, 3);
  t.not(info.State.FinishedAt, '0001-01-01T00:00:00Z');
  const log = readFileSync(info.HostConfig.LogConfig.Path, 'utf8');
  t.match(log, / stdout F out\n/);
  t.match(log, / stderr F err\n/);

  t.equal((await d.request('POST', `${L}/containers/${id}/stop`)).status, 304, 'stopping a stopped container');
  const removed = await d.request('DELETE', `${L}/containers/${id}`);
  t.equal(removed.status, 200);
  t.same(removed.json(), [{ Id: id, RawInput: id }]);
  t.equal((await d.request('GET', `${L}/containers/${id}/exists`)).status, 404);
});

t.test('podman --url run -d, ps, inspect, pause, unpause, stop, rm', async (t) => {
  const { stdout } = await podman('run', '-d', '--name', 'sleeper', '--label', 'role=test', 'busybox', 'sleep', '1000');
  const id = stdout.trim();
  t.match(id, /^[0-9a-f]{64}$/);
  const ps = await podman('ps', '--format', '{{.Names}} {{.Status}}');
  t.match(ps.stdout, /sleeper Up/);
  const info = JSON.parse((await podman('inspect', 'sleeper')).stdout)[0];
  t.equal(info.State.Running, true);
  t.ok(info.State.Pid > 0);
  t.equal(info.Config.Labels.role, 'test');

  await podman('pause', 'sleeper');
  t.equal((await inspect(id)).State.Status, 'paused');
  const freezer = readFileSync(`/sys/fs/cgroup/freezer/podserve/${id}/freezer.state`, 'utf8').trim();
  t.equal(freezer, 'FROZEN', 'the freezer cgroup holds it');
  await podman('unpause', 'sleeper');
  t.equal((await inspect(id)).State.Status, 'running');

  // busybox sleep as PID 1 ignores SIGTERM: stop must fall back to SIGKILL after the timeout.
  const started = Date.now();
  await podman('stop', '-t', '1', 'sleeper');
  t.ok(Date.now() - started >= 900, 'waited for the timeout');
  const stopped = await inspect(id);
  t.equal(stopped.State.Status, 'exited');
  t.equal(stopped.State.ExitCode, 137);

  await podman('rm', 'sleeper');
  t.equal((await d.request('GET', `${L}/containers/sleeper/exists`)).status, 404);
});

t.test('kill with names and numbers, restart, rename', async (t) => {
  const id = await create({ name: 'k1', command: ['sh', '-c', 'trap "exit 42" USR1; while true; do sleep 0.1; done'] });
  t.equal((await d.request('POST', `${L}/containers/k1/start`)).status, 204);
  t.equal((await d.request('POST', `${L}/containers/k1/start`)).status, 304, 'already running');
  t.equal((await d.request('POST', `${L}/containers/k1/kill?signal=USR1`)).status, 204);
  t.equal((await d.request('POST', `${L}/containers/k1/wait`)).text, '42\n');

  t.equal((await d.request('POST', `${L}/containers/k1/restart`)).status, 204);
  t.equal((await inspect(id)).State.Status, 'running');
  t.equal((await d.request('POST', `${L}/containers/k1/kill?signal=9`)).status, 204);
  t.equal((await d.request('POST', `${L}/containers/k1/wait`)).text, '137\n');

  const bad = await d.request('POST', `${L}/containers/k1/kill?signal=NOPE`);
  t.equal(bad.status, 400);
  const notRunning = await d.request('POST', `${L}/containers/k1/kill`);
  t.equal(notRunning.status, 500, 'Podman 4.3.1 answers 500 for state errors on libpod paths');
  t.match(notRunning.json().cause, 'container state improper');

  t.equal((await d.request('POST', `${L}/containers/k1/rename?name=k2`)).status, 204);
  t.equal((await inspect(id)).Name, 'k2');
  t.equal((await d.request('DELETE', `${L}/containers/k2`)).status, 200);
});

t.test('bad input: clear errors, nothing half-created', async (t) => {
  const before = (await d.request('GET', `${L}/containers/json?all=true`)).json().length;
  const wrongType = await d.request('POST', `${L}/containers/create`, { image: 'busybox', command: 'not-a-list' });
  t.equal(wrongType.status, 400);
  t.match(wrongType.json().message, /command/);
  const noImage = await d.request('POST', `${L}/containers/create`, { image: 'nonexistent', command: ['true'] });
  t.equal(noImage.status, 404);
  t.match(noImage.json().message, /image not known/);
  const noCommand = await d.request('POST', `${L}/containers/create`, { image: 'busybox' });
  t.equal(noCommand.status, 400);
  t.match(noCommand.json().message, /no command or entrypoint/);
  const badName = await d.request('POST', `${L}/containers/create`, { image: 'busybox', command: ['true'], name: 'bad name' });
  t.equal(badName.status, 400);
  const unknownField = await d.request('POST', `${L}/containers/create`, { image: 'busybox', command: ['true'], name: 'u1', someday: 1 });
  t.equal(unknownField.status, 201, 'unknown fields are ignored, as Podman');
  const dup = await d.request('POST', `${L}/containers/create`, { image: 'busybox', command: ['true'], name: 'u1' });
  t.equal(dup.status, 409);
  t.match(dup.json().message, /already in use/);
  const missing = await d.request('POST', `${L}/containers/nope/start`);
  t.equal(missing.status, 404);
  t.equal(missing.json().cause, 'no such container');
  t.equal((await d.request('GET', `${L}/containers/json?all=true`)).json().length, before + 1);
  await d.request('DELETE', `${L}/containers/u1`);
});

t.test('running containers are only removed with force', async (t) => {
  const id = await create({ command: ['sleep', '1000'] });
  await d.request('POST', `${L}/containers/${id}/start`);
  const refused = await d.request('DELETE', `${L}/containers/${id}`);
  t.equal(refused.status, 500);
  t.match(refused.json().message, /cannot remove container .* as it is running/);
  const forced = await d.request('DELETE', `${L}/containers/${id}?force=true&timeout=0`);
  t.equal(forced.status, 200);
  t.equal((await d.request('GET', `${L}/containers/${id}/exists`)).status, 404);
});

t.test('list filters', async (t) => {
  const a = await create({ name: 'fa', labels: { tier: 'front' }, command: ['sleep', '1000'] });
  const b = await create({ name: 'fb', labels: { tier: 'back' }, command: ['sh', '-c', 'exit 2'] });
  await d.request('POST', `${L}/containers/${a}/start`);
  await d.request('POST', `${L}/containers/${b}/start`);
  await d.request('POST', `${L}/containers/${b}/wait`);
  const q = async (filters: Record<string, string[]>, all = true) =>
    (await d.request('GET', `${L}/containers/json?all=${all}&filters=${encodeURIComponent(JSON.stringify(filters))}`))
      .json()
      .map((c: { Names: string[] }) => c.Names[0])
      .sort();
  t.same(await q({ label: ['tier=front'] }), ['fa']);
  t.same(await q({ status: ['exited'] }), ['fb']);
  t.same(await q({ exited: ['2'] }), ['fb']);
  t.same(await q({ name: ['^f'] }), ['fa', 'fb']);
  t.same(await q({ id: [a.slice(0, 12)] }), ['fa']);
  t.same(await q({ ancestor: ['busybox'] }), ['fa', 'fb']);
  t.same(await q({}, false), ['fa'], 'only running ones without all');
  const bad = await d.request('GET', `${L}/containers/json?filters=${encodeURIComponent('{"bogus":["x"]}')}`);
  t.equal(bad.status, 400);
  await d.request('DELETE', `${L}/containers/${a}?force=true&timeout=0`);
  await d.request('DELETE', `${L}/containers/${b}`);
});

t.test('restart policy on-failure and auto-removal', async (t) => {
  const id = await create({ command: ['sh', '-c', 'exit 1'], restart_policy: 'on-failure', restart_tries: 2 });
  await d.request('POST', `${L}/containers/${id}/start`);
  // Two restarts, then it stays exited.
  for (let i = 0; i < 100; i++) {
    const info = await inspect(id);
    if (info.RestartCount === 2 && info.State.Status === 'exited') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = await inspect(id);
  t.equal(info.RestartCount, 2);
  t.equal(info.State.ExitCode, 1);
  await d.request('DELETE', `${L}/containers/${id}`);

  const rm = await create({ command: ['true'], remove: true });
  await d.request('POST', `${L}/containers/${rm}/start`);
  const waited = await d.request('POST', `${L}/containers/${rm}/wait?condition=removing&condition=exited`);
  t.equal(waited.status, 200);
  for (let i = 0; i < 50 && (await d.request('GET', `${L}/containers/${rm}/exists`)).status !== 404; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal((await d.request('GET', `${L}/containers/${rm}/exists`)).status, 404, '--rm container removed with nobody waiting');
});

t.test('100 concurrent clients creating, starting and removing leave nothing behind', async (t) => {
  const n = 100; // the figure: 100 clients at once
  const ids = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const id = await create({ name: `par${i}`, command: ['sleep', '1000'] });
      const started = await d.request('POST', `${L}/containers/${id}/start`);
      if (started.status !== 204) throw new Error(`start ${started.status} ${started.text}`);
      return id;
    }),
  );
  const running = (await d.request('GET', `${L}/containers/json?filters=${encodeURIComponent('{"name":["^par"]}')}`)).json();
  t.equal(running.length, n);
  await Promise.all(ids.map((id) => d.request('DELETE', `${L}/containers/${id}?force=true&timeout=0`)));
  t.equal((await d.request('GET', `${L}/containers/json?all=true&filters=${encodeURIComponent('{"name":["^par"]}')}`)).json().length, 0);
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(d.dir)).length;
  t.equal(mounts, 0, 'no overlay mount left');
  t.equal(await conmonsGone(), 0, 'no conmon left');
});

t.test('podman --url events can read every event podserve wrote (unknown statuses crash podman-remote)', async (t) => {
  const id = await create({ command: ['true'] });
  await d.request('POST', `${L}/containers/${id}/update`, { pids: { limit: 100 } });
  await d.request('POST', `${L}/containers/${id}/start`);
  await d.request('POST', `${L}/containers/${id}/wait`);
  const { stdout } = await podman('events', '--since', '10m', '--stream=false');
  t.match(stdout, /image loadfromarchive/);
  t.match(stdout, new RegExp(`container died ${id}`));
  await d.request('DELETE', `${L}/containers/${id}`);
});
