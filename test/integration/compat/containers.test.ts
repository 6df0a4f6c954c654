/**
 * Docker-compatible container endpoints through the real docker CLI and raw requests. Expected statuses and
 * bodies are those of Podman 4.3.1's compat API on the same requests (checked side by side against
 * `podman system service`), except where Docker's 409 for state conflicts is asked for (Podman answers 500).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { startDaemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';

const run = promisify(execFile);
const V = '/v1.41';

const d = await startDaemon(t);
await loadBusybox(d.socket);
const docker = async (...args: string[]): Promise<string> =>
  (await run('docker', ['-H', `unix://${d.socket}`, ...args], { timeout: 60_000 })).stdout.trim();
const dockerFails = async (...args: string[]): Promise<string> => {
  try {
    await docker(...args);
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
  throw new Error(`docker ${args.join(' ')} succeeded`);
};
const inspect = async (name: string) => (await d.request('GET', `${V}/containers/${name}/json`)).json();

/** POST …/wait, reporting when the headers and when the body arrived. */
function waitRequest(path: string): Promise<{ status: number; contentType: string; headersAt: number; body: string; bodyAt: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: d.socket, method: 'POST', path }, (res) => {
      const headersAt = Date.now() - started;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), headersAt, body, bodyAt: Date.now() - started }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('docker run -d, ps, inspect, pause/unpause, rename, kill, wait, rm', async (t) => {
  const id = await docker('run', '-d', '--name', 'web', '--label', 'role=test', '-e', 'A=1', 'busybox', 'sleep', '1000');
  t.match(id, /^[0-9a-f]{64}$/);
  t.match(await docker('ps', '--format', '{{.Names}}|{{.Status}}|{{.Command}}'), /^web\|Up .*\|"sleep 1000"$/m);
  const info = JSON.parse(await docker('inspect', 'web'))[0];
  t.equal(info.Id, id);
  t.equal(info.Name, '/web');
  t.equal(info.State.Status, 'running');
  t.equal(info.State.Running, true);
  t.ok(info.State.Pid > 0);
  t.equal(info.Config.Labels.role, 'test');
  t.ok(info.Config.Env.includes('A=1'));
  t.equal(info.HostConfig.LogConfig.Type, 'json-file', 'k8s-file is json-file to Docker, as in Podman');
  t.same(info.ExecIDs, []);
  t.match(info.Image, /^sha256:[0-9a-f]{64}$/);

  await docker('pause', 'web');
  t.match(await docker('ps', '--format', '{{.Names}} {{.Status}}'), /web Up .* \(Paused\)/);
  t.equal((await inspect('web')).State.Running, true, 'Docker counts paused as running');
  await docker('unpause', 'web');
  await docker('rename', 'web', 'web2');
  t.equal((await inspect(id)).Name, '/web2');

  const started = Date.now();
  await docker('kill', 'web2');
  t.equal((await inspect(id)).State.Status, 'exited', 'kill with SIGKILL answers once the container is gone');
  t.ok(Date.now() - started < 5000);
  t.equal(await docker('wait', 'web2'), '137');
  await docker('rm', 'web2');
  t.equal((await d.request('GET', `${V}/containers/${id}/json`)).status, 404);
});

t.test('docker create with HostConfig options, start, update, stop, restart, rm -f', async (t) => {
  await docker(
    'create', '--name', 'limited', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '50', '--ulimit', 'nofile=1000:1000',
    '--cap-add', 'SYS_ADMIN', '--read-only', '--network', 'none', '--restart', 'on-failure:2', 'busybox', 'sleep', '1000',
  );
  let info = await inspect('limited');
  t.equal(info.State.Status, 'created');
  t.equal(info.HostConfig.Memory, 64 * 1024 * 1024);
  t.equal(info.HostConfig.NanoCpus, 500_000_000);
  t.equal(info.HostConfig.PidsLimit, 50);
  t.equal(info.HostConfig.ReadonlyRootfs, true);
  t.equal(info.HostConfig.NetworkMode, 'none');
  t.same(info.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
  t.same(info.HostConfig.CapAdd, ['SYS_ADMIN']);
  t.match(info.HostConfig.Ulimits, [{ Name: 'RLIMIT_NOFILE', Soft: 1000, Hard: 1000 }]);

  await docker('start', 'limited');
  info = await inspect('limited');
  const cgroup = (controller: string, file: string): string =>
    readFileSync(`/sys/fs/cgroup/${controller}/podserve/${info.Id}/${file}`, 'utf8').trim();
  t.equal(cgroup('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
  t.equal(cgroup('pids', 'pids.max'), '50');

  await docker('update', '--memory', '128m', '--pids-limit', '60', 'limited');
  t.equal(cgroup('memory', 'memory.limit_in_bytes'), String(128 * 1024 * 1024), 'runc update applied the new limit');
  t.equal(cgroup('pids', 'pids.max'), '60');
  info = await inspect('limited');
  t.equal(info.HostConfig.Memory, 128 * 1024 * 1024);
  t.equal(info.HostConfig.PidsLimit, 60);

  await docker('stop', '-t', '0', 'limited');
  t.equal((await inspect('limited')).State.Status, 'exited');
  await docker('restart', '-t', '0', 'limited');
  t.equal((await inspect('limited')).State.Status, 'running');
  await docker('rm', '-f', 'limited');
  t.equal((await d.request('GET', `${V}/containers/limited/json`)).status, 404);
});

t.test('status codes and bodies of the lifecycle endpoints', async (t) => {
  const missing = await d.request('POST', `${V}/containers/create?name=x`, { Image: 'nope' });
  t.equal(missing.status, 404, 'an unknown image is a 404, which makes the docker CLI pull');
  t.match(missing.json(), { cause: 'image not known', message: 'No such image: nope', response: 404 });

  const created = await d.request('POST', `${V}/containers/create?name=codes`, { Image: 'busybox', Cmd: ['sleep', '1000'] });
  t.equal(created.status, 201);
  t.same(Object.keys(created.json()).sort(), ['Id', 'Warnings']);
  t.same(created.json().Warnings, []);
  const again = await d.request('POST', `${V}/containers/create?name=codes`, { Image: 'busybox', Cmd: ['true'] });
  t.equal(again.status, 409, 'a name in use is a conflict');

  // A JSON body labelled otherwise (curl -d) is still decoded, as Podman does.
  const unlabelled = await d.request('POST', `${V}/containers/create`, JSON.stringify({ Image: 'busybox', Cmd: ['true'] }), {
    'Content-Type': 'application/x-www-form-urlencoded',
  });
  t.equal(unlabelled.status, 201);
  const update = await d.request('POST', `${V}/containers/${unlabelled.json().Id}/update`, { Memory: 32 * 1024 * 1024, RestartPolicy: { Name: 'always' } });
  t.equal(update.status, 200);
  t.match(update.json(), { Warnings: [/restart policy/] });
  t.equal((await d.request('DELETE', `${V}/containers/${unlabelled.json().Id}`)).status, 204);

  const noSuch = await d.request('POST', `${V}/containers/nope/start`);
  t.equal(noSuch.status, 404);
  t.same(noSuch.json(), { cause: 'no such container', message: 'no container with name or ID "nope" found: no such container', response: 404 });

  const expect = async (method: string, path: string, status: number, cause?: string) => {
    const res = await d.request(method, `${V}/containers/codes${path}`);
    t.equal(res.status, status, `${method} ${path} → ${status}`);
    if (cause) t.equal(res.json().cause, cause);
    else t.equal(res.text, '', 'no body');
  };
  await expect('POST', '/stop', 304);
  await expect('POST', '/kill', 409, 'container state improper');
  await expect('POST', '/pause', 409, 'container state improper');
  await expect('POST', '/unpause', 409, 'container state improper');
  await expect('POST', '/start', 204);
  await expect('POST', '/start', 304);
  await expect('POST', '/pause', 204);
  await expect('POST', '/pause', 409, 'container state improper');
  await expect('POST', '/unpause', 204);
  await expect('DELETE', '', 409, 'container state improper');
  await expect('POST', '/wait?condition=bogus', 400, 'not a valid docker condition');
  await expect('DELETE', '?link=1', 400, 'link is not supported');
  await expect('POST', '/kill?signal=BOGUS', 400, 'invalid argument');
  await expect('POST', '/rename?name=codes2', 204);
  const stop = await d.request('POST', `${V}/containers/codes2/stop?t=0`);
  t.equal(stop.status, 204);
  await expect('POST', '/stop', 404, 'no such container');
  const removed = await d.request('DELETE', `${V}/containers/codes2?v=1`);
  t.equal(removed.status, 204);
  t.equal(removed.text, '');
});

t.test('wait: headers at once, then next-exit, removed and not-running bodies', async (t) => {
  const create = async (body: Record<string, unknown>): Promise<string> => {
    const res = await d.request('POST', `${V}/containers/create`, { Image: 'busybox', ...body });
    t.equal(res.status, 201);
    return res.json().Id;
  };

  const id = await create({ Cmd: ['sh', '-c', 'sleep 1; exit 3'] });
  // docker calls wait before start: the subscription must not miss the exit.
  const waiting = waitRequest(`${V}/containers/${id}/wait?condition=next-exit`);
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await d.request('POST', `${V}/containers/${id}/start`)).status, 204);
  const next = await waiting;
  t.equal(next.status, 200);
  t.equal(next.contentType, 'application/json');
  t.ok(next.headersAt < 500, `headers flushed before the exit (${next.headersAt} ms)`);
  t.ok(next.bodyAt >= 900, `body after the exit (${next.bodyAt} ms)`);
  t.equal(next.body, '{"StatusCode":3,"Error":null}\n');

  const notRunning = await d.request('POST', `${V}/containers/${id}/wait`);
  t.equal(notRunning.text, '{"StatusCode":3,"Error":null}\n', 'not-running of an exited container answers at once');

  const fresh = await create({ Cmd: ['true'] });
  t.equal((await d.request('POST', `${V}/containers/${fresh}/wait?condition=not-running`)).text, '{"StatusCode":0,"Error":null}\n');

  const auto = await create({ Cmd: ['sh', '-c', 'exit 5'], HostConfig: { AutoRemove: true } });
  const removed = waitRequest(`${V}/containers/${auto}/wait?condition=removed`);
  await new Promise((r) => setTimeout(r, 50));
  await d.request('POST', `${V}/containers/${auto}/start`);
  t.equal((await removed).body, '{"StatusCode":5,"Error":null}\n', 'removed works with AutoRemove and keeps the exit code');
  t.equal((await d.request('GET', `${V}/containers/${auto}/json`)).status, 404);

  t.equal((await d.request('POST', `${V}/containers/nope/wait`)).status, 404);
  await d.request('DELETE', `${V}/containers/${id}`);
  await d.request('DELETE', `${V}/containers/${fresh}`);
});

t.test('list: all, limit, size, filters; prune', async (t) => {
  await docker('create', '--name', 'old', '--label', 'tier=a', 'busybox', 'true');
  await docker('run', '-d', '--name', 'live', '--label', 'tier=b', 'busybox', 'sleep', '1000');
  await docker('create', '--name', 'newest', 'busybox', 'true');

  const names = async (query: string) =>
    ((await d.request('GET', `${V}/containers/json${query}`)).json() as { Names: string[] }[]).map((c) => c.Names[0]);
  t.same(await names(''), ['/live'], 'running ones by default');
  t.same(await names('?all=1'), ['/newest', '/live', '/old'], 'newest first');
  t.same(await names('?limit=2'), ['/newest', '/live'], 'a limit lists stopped ones too');
  t.same(await names(`?all=1&filters=${encodeURIComponent('{"label":["tier=a"]}')}`), ['/old']);
  t.same(await names(`?filters=${encodeURIComponent('{"status":["created"]}')}`), ['/newest', '/old']);
  t.same(await names(`?filters=${encodeURIComponent('{"name":["liv"]}')}`), ['/live']);
  t.same((await docker('ps', '-a', '--filter', 'label=tier=b', '--format', '{{.Names}}')).split('\n'), ['live']);

  const [entry] = (await d.request('GET', `${V}/containers/json?size=1&filters=${encodeURIComponent('{"name":["live"]}')}`)).json();
  t.match(entry, {
    Names: ['/live'], Image: 'localhost/busybox:latest', Command: 'sleep 1000', State: 'running', Labels: { tier: 'b' },
    Ports: [], HostConfig: { NetworkMode: 'bridge' },
  });
  t.type(entry.SizeRw, 'number');
  t.ok(entry.SizeRootFs > 1_000_000, 'the image counts in SizeRootFs');
  t.notOk('SizeRw' in (await d.request('GET', `${V}/containers/json`)).json()[0], 'sizes only when asked');

  const pruned = await d.request('POST', `${V}/containers/prune?filters=${encodeURIComponent('{}')}`);
  t.equal(pruned.status, 200);
  t.same(pruned.json().ContainersDeleted.length, 2);
  t.type(pruned.json().SpaceReclaimed, 'number');
  t.same((await d.request('POST', `${V}/containers/prune`)).json(), { ContainersDeleted: null, SpaceReclaimed: 0 }, 'as Podman: null when none');
  t.match(await docker('container', 'prune', '-f'), /Total reclaimed space/);
  t.same(await names('?all=1'), ['/live']);
  await docker('rm', '-f', 'live');
});

t.test('unversioned compat paths work like versioned ones', async (t) => {
  const res = await d.request('GET', '/containers/json?all=true');
  t.equal(res.status, 200);
  t.ok(Array.isArray(res.json()));
});
