/**
 * Checkpoint and restore with the real CRIU (scripts/criu.sh): a container counting seconds is checkpointed and
 * restored in place and keeps counting; moved through an exported archive into a second daemon under a new name;
 * and the same with podman-remote (`container checkpoint/restore`, `--export`/`--import`).
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { startDaemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';
import {
  L,
  containerDirs,
  continuous,
  counterValues,
  eventsOf,
  inspect,
  listTar,
  pidAlive,
  podman,
  postForBuffer,
  runCounter,
  scratchEntries,
  timed,
  waitForValue,
} from './helpers.js';

const ZERO = '0001-01-01T00:00:00Z';
const d = await startDaemon(t);
const d2 = await startDaemon(t);
await Promise.all([loadBusybox(d.socket), loadBusybox(d2.socket)]);
const scratch = mkdtempSync('/tmp/psck-');
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

t.test('/info reports the CRIU in use', async (t) => {
  const info = (await d.request('GET', `${L}/info`)).json();
  t.match(info.host.criu, { path: String, version: /^\d+\.\d+/, available: true });
  t.notOk(info.host.criu.error);
});

t.test('in place: the counter stops at the checkpoint and continues after the restore', async (t) => {
  const id = await runCounter(d, 'counter');
  await waitForValue(d, 'counter', 2);
  const pid = (await inspect(d, 'counter')).State.Pid as number;

  const cp = await timed(() => d.request('POST', `${L}/containers/counter/checkpoint?printStats=true`));
  t.equal(cp.value.status, 200, cp.value.text.slice(0, 500));
  const report = cp.value.json();
  t.equal(report.Id, id);
  t.equal(report.RawInput, 'counter');
  t.ok(report.runtime_checkpoint_duration > 0, 'runtime duration with printStats');
  t.match(report.criu_statistics, { freezing_time: Number, frozen_time: Number, pages_written: Number });

  let info = await inspect(d, 'counter');
  t.equal(info.State.Status, 'exited');
  t.equal(info.State.Checkpointed, true);
  t.not(info.State.CheckpointedAt, ZERO);
  t.equal(info.State.CheckpointPath, join(d.root, 'containers', id, 'userdata', 'checkpoint'));
  t.equal(info.State.CheckpointLog, '', 'dump.log removed without keep');
  t.ok(existsSync(join(info.State.CheckpointPath, 'inventory.img')), 'CRIU images on disk');
  t.equal(info.State.Pid, 0);
  t.notOk(pidAlive(pid), 'the dumped process is gone');

  const frozen = await counterValues(d, 'counter');
  await new Promise((r) => setTimeout(r, 1500));
  t.same(await counterValues(d, 'counter'), frozen, 'nothing counts while checkpointed');

  const rs = await timed(() => d.request('POST', `${L}/containers/counter/restore?printStats=true`));
  t.equal(rs.value.status, 200, rs.value.text.slice(0, 500));
  const restored = rs.value.json();
  t.equal(restored.Id, id);
  t.equal(restored.RawInput, 'counter');
  t.ok(restored.runtime_restore_duration > 0);
  t.type(restored.criu_statistics, 'object');
  info = await inspect(d, 'counter');
  t.equal(info.State.Status, 'running');
  t.equal(info.State.Restored, true);
  t.not(info.State.RestoredAt, ZERO);
  t.notOk(info.State.Checkpointed);
  t.equal(info.State.CheckpointedAt, ZERO);
  t.notOk(existsSync(join(d.root, 'containers', id, 'userdata', 'checkpoint')), 'checkpoint removed without keep');

  const last = frozen[frozen.length - 1]!;
  const values = await waitForValue(d, 'counter', last + 2);
  t.ok(continuous(values), `one count, no restart: ${values.join(',')}`);
  t.comment(`podserve in place: checkpoint ${cp.ms.toFixed(0)} ms, restore ${rs.ms.toFixed(0)} ms (runc: ${(report.runtime_checkpoint_duration / 1000).toFixed(0)} / ${(restored.runtime_restore_duration / 1000).toFixed(0)} ms)`);

  const events = await eventsOf(d, id);
  t.ok(events.includes('checkpoint') && events.includes('restore'), `events: ${events.join(',')}`);
  t.notOk(events.includes('died'), 'a checkpoint is no death');
  t.equal((await d.request('DELETE', `${L}/containers/counter?force=true&timeout=0`)).status, 200);
});

t.test('leaveRunning + keep: the container runs on, the files stay, a later restore is refused while it runs', async (t) => {
  const id = await runCounter(d, 'stays');
  await waitForValue(d, 'stays', 1);
  const res = await d.request('POST', `${L}/containers/stays/checkpoint?leaveRunning=true&keep=true`);
  t.equal(res.status, 200, res.text.slice(0, 500));
  t.same(res.json(), { Id: id, RawInput: 'stays', runtime_checkpoint_duration: 0, criu_statistics: null });
  const info = await inspect(d, 'stays');
  t.equal(info.State.Status, 'running');
  t.ok(pidAlive(info.State.Pid));
  const bundle = join(d.root, 'containers', id, 'userdata');
  t.ok(existsSync(join(bundle, 'checkpoint', 'inventory.img')));
  t.ok(existsSync(join(bundle, 'dump.log')), 'keep leaves dump.log');
  const again = await d.request('POST', `${L}/containers/stays/restore`);
  t.equal(again.status, 500);
  t.match(again.json().message, /is running or paused, cannot restore: container state improper/);
  const values = await waitForValue(d, 'stays', 3);
  t.ok(continuous(values));
  await d.request('DELETE', `${L}/containers/stays?force=true&timeout=0`);
});

t.test('export to a second daemon, restored there under a new name with its file-system changes', async (t) => {
  const command = ['sh', '-c', 'echo kept > /tmp/state; rm /etc/group; i=0; while true; do echo $i; i=$((i+1)); sleep 1; done'];
  const id = await runCounter(d, 'mover', command);
  await waitForValue(d, 'mover', 1);

  const exp = await timed(() => postForBuffer(d, `${L}/containers/mover/checkpoint?export=true`));
  t.equal(exp.value.status, 200, exp.value.status === 200 ? 'exported' : exp.value.body.toString().slice(0, 500));
  t.equal(exp.value.headers['content-type'], 'application/octet; charset=us-ascii');
  const archive = exp.value.body;
  const members = await listTar(archive);
  for (const name of ['artifacts/', 'config.dump', 'spec.dump', 'network.status', 'stats-dump', 'ctr.log', 'checkpoint/', 'checkpoint/inventory.img', 'rootfs-diff.tar', 'deleted.files']) {
    t.ok(members.has(name), `archive has ${name}`);
  }
  t.same(JSON.parse(members.get('deleted.files')!.toString()), ['etc/group']);
  const diff = await listTar(members.get('rootfs-diff.tar')!);
  t.equal(diff.get('tmp/state')?.toString(), 'kept\n', 'the new file is in rootfs-diff.tar');
  t.equal(JSON.parse(members.get('config.dump')!.toString()).id, id);
  t.equal((await inspect(d, 'mover')).State.Checkpointed, true, 'the source is checkpointed');
  t.same(scratchEntries(d), [], 'the export staging directory is gone');
  const before = await counterValues(d, 'mover');

  const imp = await timed(() => postForBuffer(d2, `${L}/containers/import/restore?import=true&name=moved`, archive));
  t.equal(imp.value.status, 200, imp.value.body.toString().slice(0, 500));
  const report = JSON.parse(imp.value.body.toString());
  t.not(report.Id, id, 'a new name means a new ID');
  t.equal(report.RawInput, '');
  const info = await inspect(d2, 'moved');
  t.equal(info.Id, report.Id);
  t.equal(info.State.Status, 'running');
  t.equal(info.State.Restored, true);
  const merged = join(d2.root, 'containers', report.Id, 'merged');
  t.equal(readFileSync(join(merged, 'tmp/state'), 'utf8'), 'kept\n', 'file-system change carried over');
  t.notOk(existsSync(join(merged, 'etc/group')), 'deletion carried over');
  const values = await waitForValue(d2, 'moved', before[before.length - 1]! + 2);
  t.ok(continuous(values), `counts on from where it stopped: ${values.join(',')}`);
  t.same(scratchEntries(d2), [], 'the import staging directory is gone');
  t.comment(`podserve export ${exp.ms.toFixed(0)} ms (${archive.length} bytes), import+restore ${imp.ms.toFixed(0)} ms`);

  const dirs = containerDirs(d2);
  const dup = await postForBuffer(d2, `${L}/containers/import/restore?import=true&name=moved`, archive);
  t.equal(dup.status, 409, 'the name is taken');
  t.match(JSON.parse(dup.body.toString()).message, /already in use/);
  t.same(containerDirs(d2), dirs, 'nothing written for the refused import');
  t.same(scratchEntries(d2), []);

  // The source can still be restored in place from its own checkpoint.
  const back = await d.request('POST', `${L}/containers/mover/restore`);
  t.equal(back.status, 200, back.text.slice(0, 500));
  t.equal((await inspect(d, 'mover')).State.Status, 'running');
  // Both daemons share runc's state directory on this one host: the ID must be free there for the next import.
  t.equal((await d.request('DELETE', `${L}/containers/mover?force=true&timeout=0`)).status, 200);

  // Without a name the container keeps its ID and name.
  const same = await postForBuffer(d2, `${L}/containers/import/restore?import=true`, archive);
  t.equal(same.status, 200, same.body.toString().slice(0, 500));
  t.equal(JSON.parse(same.body.toString()).Id, id);
  t.equal((await inspect(d2, id)).Name, 'mover');
  t.equal((await inspect(d2, id)).State.Status, 'running');
  await Promise.all([
    d2.request('DELETE', `${L}/containers/moved?force=true&timeout=0`),
    d2.request('DELETE', `${L}/containers/${id}?force=true&timeout=0`),
  ]);
});

t.test('export: a reader that leaves mid-archive leaves no staging behind; the checkpoint stays restorable', async (t) => {
  // 24 MB of file-system changes make an archive far larger than any socket buffer.
  await runCounter(d, 'large', ['sh', '-c', 'head -c 24000000 /dev/urandom > /tmp/blob; i=0; while true; do echo $i; i=$((i+1)); sleep 1; done']);
  await waitForValue(d, 'large', 1);
  const received = await new Promise<number>((resolve, reject) => {
    const req = httpRequest({ socketPath: d.socket, method: 'POST', path: `${L}/containers/large/checkpoint?export=true` }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > 1_000_000 && !req.destroyed) {
          req.destroy();
          resolve(n);
        }
      });
      res.on('end', () => resolve(n));
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end();
  });
  t.ok(received < 24_000_000, `stopped reading after ${received} bytes`);
  const deadline = Date.now() + 10_000;
  while (scratchEntries(d).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.same(scratchEntries(d), [], 'staging removed after the reader left');
  t.equal((await inspect(d, 'large')).State.Checkpointed, true);
  const back = await d.request('POST', `${L}/containers/large/restore`);
  t.equal(back.status, 200, back.text.slice(0, 500));
  const values = await waitForValue(d, 'large', 3);
  t.ok(continuous(values), values.join(','));
  await d.request('DELETE', `${L}/containers/large?force=true&timeout=0`);
});

t.test('podman-remote: container checkpoint/restore, --export and --import', async (t) => {
  const id = await runCounter(d, 'viacli');
  await waitForValue(d, 'viacli', 1);
  let r = await podman(d, ['container', 'checkpoint', 'viacli']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), 'viacli');
  t.equal((await inspect(d, 'viacli')).State.Checkpointed, true);
  r = await podman(d, ['container', 'restore', 'viacli']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), 'viacli');
  t.equal((await inspect(d, 'viacli')).State.Status, 'running');

  const file = join(scratch, 'viacli.tar');
  r = await podman(d, ['container', 'checkpoint', '--export', file, 'viacli']);
  t.equal(r.code, 0, r.stderr);
  t.ok(existsSync(file) && readFileSync(file).length > 10_000, 'archive written by the client');
  const before = await counterValues(d, 'viacli');
  r = await podman(d2, ['container', 'restore', '--import', file, '--name', 'viacli2']);
  t.equal(r.code, 0, r.stderr);
  const newId = r.stdout.trim();
  t.match(newId, /^[0-9a-f]{64}$/);
  t.not(newId, id);
  const ps = await podman(d2, ['ps', '--format', '{{.Names}} {{.Status}}']);
  t.match(ps.stdout, /^viacli2 Up /m);
  const values = await waitForValue(d2, 'viacli2', before[before.length - 1]! + 1);
  t.ok(continuous(values), values.join(','));
  await Promise.all([
    d.request('DELETE', `${L}/containers/viacli?force=true&timeout=0`),
    d2.request('DELETE', `${L}/containers/viacli2?force=true&timeout=0`),
  ]);
});
