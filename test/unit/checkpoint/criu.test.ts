/** Pure parts of src/oci/checkpoint.ts: command lines, CRIU's log and stats files, versions. */
import t from 'tap';
import {
  checkpointArgs,
  criuVersionNumber,
  parseCriuLogErrors,
  parseCriuStatistics,
  restoreConmonArgs,
  runcErrorText,
} from '../../../src/oci/checkpoint.js';

t.test('runc checkpoint argv: Podman order, CRIU path as a global flag', async (t) => {
  const ctx = { runtimeFlags: ['--root', '/run/x'], criuPath: '/opt/c/criu' };
  t.same(checkpointArgs(ctx, 'ID', { bundleDir: '/b', imagePath: '/b/checkpoint.new' }), [
    '--root', '/run/x', '--criu', '/opt/c/criu', 'checkpoint', '--image-path', '/b/checkpoint.new', '--work-path', '/b', 'ID',
  ]);
  t.same(
    checkpointArgs(ctx, 'ID', { bundleDir: '/b', imagePath: '/i', leaveRunning: true, tcpEstablished: true, fileLocks: true, parentPath: '../pre-checkpoint' }).slice(4),
    ['checkpoint', '--image-path', '/i', '--work-path', '/b', '--leave-running', '--tcp-established', '--file-locks', '--parent-path', '../pre-checkpoint', 'ID'],
  );
  // A pre-dump leaves the container running by itself and has no parent.
  t.same(checkpointArgs(ctx, 'ID', { bundleDir: '/b', imagePath: '/i', preDump: true, leaveRunning: true, parentPath: '../x' }).slice(9), ['--pre-dump', 'ID']);
});

t.test('conmon restore arguments', async (t) => {
  t.same(restoreConmonArgs({ imagePath: '/b/checkpoint' }, '/c'), ['--runtime-arg', '--criu', '--runtime-arg', '/c', '--restore', '/b/checkpoint']);
  t.same(restoreConmonArgs({ imagePath: '/i', tcpEstablished: true, fileLocks: true }, '/c').slice(6), [
    '--runtime-opt', '--tcp-established', '--runtime-opt', '--file-locks',
  ]);
});

t.test("CRIU's errors from its log, without the benign rlimit line", async (t) => {
  const log = [
    '(00.000000) Version: 4.1.1 (gitid 0)',
    "(00.001234) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
    '(00.020000) Warn  (criu/cr-check.c:824): Dirty tracking is OFF.',
    '(00.123456) Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.',
    '(00.123500) Error (criu/cr-dump.c:2111): Dumping FAILED.',
  ].join('\n');
  t.same(parseCriuLogErrors(log), [
    'Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.',
    'Error (criu/cr-dump.c:2111): Dumping FAILED.',
  ]);
  // `criu check` prints them without timestamps.
  t.same(parseCriuLogErrors('Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n'), ['Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds']);
  const many = Array.from({ length: 9 }, (_, i) => `(0.1) Error (x.c:${i}): e${i}`).join('\n');
  t.equal(parseCriuLogErrors(many).length, 5, 'the last five');
});

t.test("runc's error text from its logrus stderr", async (t) => {
  t.equal(runcErrorText('time="2026-01-01T00:00:00Z" level=error msg="criu failed: type DUMP errno 0\\nlog file: /b/dump.log"\n'), 'criu failed: type DUMP errno 0\nlog file: /b/dump.log');
  t.equal(runcErrorText('{"level":"error","msg":"CRIU is missing features","time":"x"}'), 'CRIU is missing features');
  t.equal(runcErrorText('plain failure\n'), 'plain failure');
});

t.test('stats-dump and stats-restore (a real stats-dump from CRIU 4.1.1)', async (t) => {
  const dump = Buffer.from('4059105506330957240000000a2208859306' + '10edae0b18b805209701282f3000382140004800500858086000680070 00'.replace(/ /g, ''), 'hex');
  t.same(parseCriuStatistics(dump), { freezing_time: 100741, frozen_time: 186221, memdump_time: 696, memwrite_time: 151, pages_scanned: 47, pages_written: 33 });
  // stats_entry { restore = 2 { pages_compared=1: 9, pages_skipped_cow=2: 2, forking_time=3: 793, restore_time=4: 375319, pages_restored=5: 33 } }
  const inner = Buffer.from([0x08, 9, 0x10, 2, 0x18, 0x99, 0x06, 0x20, 0x97, 0xf4, 0x16, 0x28, 33]);
  const entry = Buffer.concat([Buffer.from([0x12, inner.length]), inner]);
  const header = Buffer.alloc(12);
  header.writeUInt32LE(0x55105940, 0);
  header.writeUInt32LE(0x57093306, 4);
  header.writeUInt32LE(entry.length, 8);
  t.same(parseCriuStatistics(Buffer.concat([header, entry])), { pages_compared: 9, pages_skipped_cow: 2, forking_time: 793, restore_time: 375319, pages_restored: 33 });
  t.equal(parseCriuStatistics(Buffer.from('not a stats file')), null);
  const truncated = Buffer.concat([header, entry.subarray(0, 4)]);
  t.equal(parseCriuStatistics(truncated), null, 'size beyond the file');
});

t.test('CRIU version numbers as Podman compares them', async (t) => {
  t.equal(criuVersionNumber('4.1.1'), 40101);
  t.equal(criuVersionNumber('3.16'), 31600);
  t.equal(criuVersionNumber('3.17.1'), 31701);
  t.equal(criuVersionNumber('garbage'), 0);
});
