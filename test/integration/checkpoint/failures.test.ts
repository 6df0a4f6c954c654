/**
 * Checkpoint/restore failures are clean: a 500 carrying CRIU's (or the state machine's) reason, the container
 * exactly as it was (still running, still counting), and no file of the attempt left behind. Also: archives
 * compressed with gzip or zstd (Podman's default) import; corrupt ones are refused without a trace.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, truncateSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';
import {
  L,
  containerDirs,
  continuous,
  inspect,
  pidAlive,
  postForBuffer,
  runCounter,
  scratchEntries,
  waitForValue,
} from './helpers.js';

const d = await startDaemon(t);
const bogus = await startDaemon(t, { extraGlobalArgs: ['--criu', '/nonexistent/criu'] });
await Promise.all([loadBusybox(d.socket), loadBusybox(bogus.socket)]);

/** Files a checkpoint or restore attempt writes into the bundle. */
function attemptFiles(daemon: Daemon, id: string): string[] {
  const bundle = join(daemon.root, 'containers', id, 'userdata');
  const names = ['checkpoint', 'checkpoint.new', 'pre-checkpoint', 'pre-checkpoint.new', 'dump.log', 'restore.log', 'stats-dump', 'stats-restore', 'config.dump', 'spec.dump'];
  return readdirSync(bundle).filter((f) => names.includes(f));
}

/** The container runs with the same process and keeps counting. */
async function stillRunning(t: Test, daemon: Daemon, name: string, pid: number): Promise<void> {
  const info = await inspect(daemon, name);
  t.equal(info.State.Status, 'running', `${name} still running`);
  t.equal(info.State.Pid, pid, 'same process');
  t.ok(pidAlive(pid));
  t.notOk(info.State.Checkpointed);
  const values = await waitForValue(daemon, name, 2);
  t.ok(continuous(values), `still counting: ${values.join(',')}`);
}

t.test('CRIU missing: /info says so, checkpoint is a 500 naming it, the container runs on', async (t) => {
  const info = (await bogus.request('GET', `${L}/info`)).json();
  t.equal(info.host.criu.path, '/nonexistent/criu');
  t.equal(info.host.criu.available, false);
  t.match(info.host.criu.error, /\/nonexistent\/criu/);

  const id = await runCounter(bogus, 'nocriu');
  await waitForValue(bogus, 'nocriu', 0);
  const pid = (await inspect(bogus, 'nocriu')).State.Pid as number;
  const res = await bogus.request('POST', `${L}/containers/nocriu/checkpoint`);
  t.equal(res.status, 500);
  t.match(res.json().message, /cannot run CRIU \(\/nonexistent\/criu\)/);
  await stillRunning(t, bogus, 'nocriu', pid);
  t.same(attemptFiles(bogus, id), []);
  const exp = await postForBuffer(bogus, `${L}/containers/nocriu/checkpoint?export=true`);
  t.equal(exp.status, 500, 'export fails before any archive byte');
  t.match(JSON.parse(exp.body.toString()).message, /nonexistent/);
  t.same(scratchEntries(bogus), []);
});

t.test('CRIU fails (an established TCP connection): its own error in the 500, nothing changed', async (t) => {
  const script = 'nc -l -p 5000 -e cat & sleep 0.3; nc 127.0.0.1 5000 </dev/zero >/dev/null & i=0; while true; do echo $i; i=$((i+1)); sleep 1; done';
  const id = await runCounter(d, 'tcp', ['sh', '-c', script]);
  await waitForValue(d, 'tcp', 1);
  const pid = (await inspect(d, 'tcp')).State.Pid as number;
  const res = await d.request('POST', `${L}/containers/tcp/checkpoint`);
  t.equal(res.status, 500);
  const body = res.json();
  t.match(body.message, /^runc checkpoint failed: .*CRIU: .*Connected TCP socket, consider using --tcp-established option/);
  t.match(body.cause, /Error \(criu\/sk-inet\.c:\d+\): inet: Connected TCP socket/);
  await stillRunning(t, d, 'tcp', pid);
  t.same(attemptFiles(d, id), [], 'no images, logs or dumps left');

  // Same through export: the archive never starts, nothing is staged.
  const exp = await postForBuffer(d, `${L}/containers/tcp/checkpoint?export=true`);
  t.equal(exp.status, 500);
  t.match(JSON.parse(exp.body.toString()).message, /Connected TCP socket/);
  t.same(scratchEntries(d), []);
  t.same(attemptFiles(d, id), []);
  await d.request('DELETE', `${L}/containers/tcp?force=true&timeout=0`);
});

t.test('pre-checkpoint: works where the kernel tracks dirty memory, else a clean 500', async (t) => {
  const id = await runCounter(d, 'pre');
  await waitForValue(d, 'pre', 0);
  const pid = (await inspect(d, 'pre')).State.Pid as number;
  const res = await d.request('POST', `${L}/containers/pre/checkpoint?preCheckpoint=true`);
  if (res.status === 200) {
    t.ok(existsSync(join(d.root, 'containers', id, 'userdata', 'pre-checkpoint', 'inventory.img')));
    const full = await d.request('POST', `${L}/containers/pre/checkpoint?withPrevious=true`);
    t.equal(full.status, 200, full.text.slice(0, 500));
    t.equal((await d.request('POST', `${L}/containers/pre/restore`)).status, 200);
  } else {
    t.equal(res.status, 500);
    t.match(res.json().message, /runc pre-checkpoint failed: /);
    t.same(attemptFiles(d, id), []);
    await stillRunning(t, d, 'pre', pid);
    const prev = await d.request('POST', `${L}/containers/pre/checkpoint?withPrevious=true`);
    t.equal(prev.status, 500, 'withPrevious needs a pre-checkpoint');
    t.match(prev.json().message, /pre-checkpoint: no such file or directory/);
  }
  const both = await d.request('POST', `${L}/containers/pre/checkpoint?withPrevious=true&preCheckpoint=true`);
  t.equal(both.status, 400);
  await d.request('DELETE', `${L}/containers/pre?force=true&timeout=0`);
});

t.test('state errors: stopped, running, never checkpointed, --rm, unknown', async (t) => {
  const created = await d.request('POST', `${L}/containers/create`, { image: 'localhost/busybox:latest', name: 'done', command: ['true'] });
  const doneId = created.json().Id as string;
  await d.request('POST', `${L}/containers/done/start`);
  await d.request('POST', `${L}/containers/done/wait?condition=exited`);
  let res = await d.request('POST', `${L}/containers/done/checkpoint`);
  t.equal(res.status, 500);
  t.match(res.json().message, /^"exited" is not running, cannot checkpoint: container state improper$/);
  t.same(attemptFiles(d, doneId), []);

  res = await d.request('POST', `${L}/containers/done/restore`);
  t.equal(res.status, 500);
  t.match(res.json().message, /a complete checkpoint for this container cannot be found, cannot restore/);
  t.equal((await inspect(d, 'done')).State.Status, 'exited');
  t.notOk((await inspect(d, 'done')).State.Mountpoint, 'the rootfs mount of the attempt was released');

  const runningId = await runCounter(d, 'runs');
  await waitForValue(d, 'runs', 0);
  const pid = (await inspect(d, 'runs')).State.Pid as number;
  res = await d.request('POST', `${L}/containers/runs/restore`);
  t.equal(res.status, 500);
  t.match(res.json().message, new RegExp(`^container ${runningId} is running or paused, cannot restore: container state improper$`));
  await stillRunning(t, d, 'runs', pid);

  await runCounter(d, 'autorm', undefined, { remove: true });
  res = await d.request('POST', `${L}/containers/autorm/checkpoint`);
  t.equal(res.status, 500);
  t.match(res.json().message, /cannot checkpoint containers that have been started with '--rm' unless '--export' is used/);
  t.equal((await inspect(d, 'autorm')).State.Status, 'running');

  t.equal((await d.request('POST', `${L}/containers/nosuch/checkpoint`)).status, 404);
  t.equal((await d.request('POST', `${L}/containers/nosuch/restore`)).status, 404);
  await Promise.all(['done', 'runs', 'autorm'].map((n) => d.request('DELETE', `${L}/containers/${n}?force=true&timeout=0`)));
});

t.test('archives: gzip and zstd import; corrupt, foreign and truncated ones leave nothing behind', async (t) => {
  await runCounter(d, 'src');
  await waitForValue(d, 'src', 1);
  const exp = await postForBuffer(d, `${L}/containers/src/checkpoint?export=true&ignoreRootFS=true`);
  t.equal(exp.status, 200);
  const archive = exp.body;

  const dirs = containerDirs(d);
  const refused = async (body: Buffer, what: string, status: number | number[], message: RegExp): Promise<void> => {
    const res = await postForBuffer(d, `${L}/containers/import/restore?import=true&name=bad`, body);
    t.ok(Array.isArray(status) ? status.includes(res.status) : res.status === status, `${what}: status ${res.status}`);
    t.match(JSON.parse(res.body.toString()).message, message, what);
    t.same(containerDirs(d), dirs, `${what}: no container made`);
    t.same(scratchEntries(d), [], `${what}: staging removed`);
    t.equal((await d.request('GET', `${L}/containers/bad/exists`)).status, 404);
  };
  await refused(Buffer.alloc(65536, 0x5a), 'random bytes', 400, /invalid checkpoint archive|not a tar archive/);
  await refused(gzipSync(Buffer.from('not a tar')), 'gzip of garbage', 400, /invalid checkpoint archive|not a tar/);
  await refused(archive.subarray(0, Math.floor(archive.length / 2)), 'truncated archive', [400, 500], /./);
  const foreign = execFileSync('tar', ['-c', '-C', '/etc', 'hostname']);
  await refused(foreign, 'a tar without dumps', 400, /config\.dump and spec\.dump are needed/);
  t.notOk(existsSync(join(d.root, 'containers', 'bad')));

  const gz = await postForBuffer(d, `${L}/containers/import/restore?import=true&name=fromgzip`, gzipSync(archive));
  t.equal(gz.status, 200, gz.body.toString().slice(0, 500));
  t.equal((await inspect(d, 'fromgzip')).State.Status, 'running');
  const zst = execFileSync('zstd', ['-q', '-c'], { input: archive });
  const zs = await postForBuffer(d, `${L}/containers/import/restore?import=true&name=fromzstd`, zst);
  t.equal(zs.status, 200, zs.body.toString().slice(0, 500));
  const values = await waitForValue(d, 'fromzstd', 3);
  t.ok(continuous(values), values.join(','));
  t.same(scratchEntries(d), []);
  await Promise.all(['src', 'fromgzip', 'fromzstd'].map((n) => d.request('DELETE', `${L}/containers/${n}?force=true&timeout=0`)));
});

t.test('a damaged checkpoint image: the restore fails in time and CRIU leaves nothing behind', async (t) => {
  // CRIU 4.1 can hang on a truncated pages image: a short restore timeout, then the cleanup is what counts.
  const short = await startDaemon(t, { env: { PODSERVE_RESTORE_TIMEOUT_MS: '6000' } });
  await loadBusybox(short.socket);
  const id = await runCounter(short, 'damaged');
  await waitForValue(short, 'damaged', 0);
  t.equal((await short.request('POST', `${L}/containers/damaged/checkpoint`)).status, 200);
  const images = join(short.root, 'containers', id, 'userdata', 'checkpoint');
  const pages = readdirSync(images).filter((f) => /^pages-\d+\.img$/.test(f));
  for (const f of pages) truncateSync(join(images, f), 100);
  const res = await short.request('POST', `${L}/containers/damaged/restore`);
  t.equal(res.status, 500);
  t.match(res.json().message, /^runc restore failed: /);
  const info = await inspect(short, 'damaged');
  t.equal(info.State.Status, 'exited', 'still exited');
  t.equal(info.State.Checkpointed, true, 'still checkpointed');
  t.notOk(readFileSync('/proc/self/mounts', 'utf8').includes(id), 'no mount of the container or of CRIU left');
  t.notOk(existsSync(join('/run/runc', id)), "no runc state directory");
  t.notOk(existsSync(join('/sys/fs/cgroup/pids/podserve', id)), 'no cgroup (and so no process) left');
  t.same(readdirSync(join(short.root, 'containers', id, 'userdata')).filter((f) => f.startsWith('.criu') || f === 'restore.log'), []);
});
