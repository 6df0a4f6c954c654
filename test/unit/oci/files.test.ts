import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, renameSync, rmSync, writeFileSync, constants } from 'node:fs';
import { join } from 'node:path';
import {
  isPidAlive,
  processExited,
  readExitFile,
  readPidFile,
  waitExitFile,
  waitPidExit,
  writeCtlMessage,
} from '../../../src/oci/files.js';

const dir = mkdtempSync('/tmp/po-fi-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('readExitFile', async (t) => {
  t.equal(await readExitFile(dir, 'none'), null, 'missing → null');
  writeFileSync(join(dir, 'a'), '137');
  const info = await readExitFile(dir, 'a');
  t.equal(info?.exitCode, 137);
  t.ok(info?.finishedAt instanceof Date);
  writeFileSync(join(dir, 'neg'), '-1\n');
  t.equal((await readExitFile(dir, 'neg'))?.exitCode, -1);
  writeFileSync(join(dir, 'bad'), 'oops');
  await t.rejects(readExitFile(dir, 'bad'), { status: 500, message: /invalid exit file/ });
});

t.test('waitExitFile wakes on the rename conmon does', async (t) => {
  const exits = join(dir, 'exits');
  const started = Date.now();
  setTimeout(() => {
    writeFileSync(join(exits, 'other'), '1');
    writeFileSync(join(exits, 'c1.tmp'), '42');
    renameSync(join(exits, 'c1.tmp'), join(exits, 'c1'));
  }, 50);
  const info = await waitExitFile(exits, 'c1', 5000);
  t.equal(info?.exitCode, 42);
  t.ok(Date.now() - started < 1000, 'woken by the event, not the timeout');
  t.equal((await waitExitFile(exits, 'c1', 5000))?.exitCode, 42, 'an existing file resolves at once');
  t.equal(await waitExitFile(exits, 'never', 30), null, 'timeout → null');
  t.equal(await waitExitFile(exits, 'never', 0), null, 'zero timeout just looks');
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 20);
  t.equal(await waitExitFile(exits, 'never', 10_000, abort.signal), null, 'abort → null');
});

t.test('writeCtlMessage writes "<type> <h> <w>\\n" to the FIFO', async (t) => {
  const ctl = join(dir, 'ctl');
  execFileSync('mkfifo', [ctl]);
  const reader = openSync(ctl, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    await writeCtlMessage(ctl, 1, 24.7, 80);
    const buf = Buffer.alloc(64);
    const n = readSync(reader, buf, 0, 64, null);
    t.equal(buf.subarray(0, n).toString(), '1 24 80\n');
  } finally {
    closeSync(reader);
  }
  const started = Date.now();
  await t.rejects(writeCtlMessage(ctl, 1, 1, 1), { status: 500, message: /ctl/ }, 'no reader (conmon gone) fails');
  t.ok(Date.now() - started < 3000, 'after a short retry');
  await t.rejects(writeCtlMessage(join(dir, 'missing'), 1, 1, 1), { message: /ENOENT/ });
});

t.test('pid helpers', async (t) => {
  writeFileSync(join(dir, 'pid'), '1234\n');
  t.equal(await readPidFile(join(dir, 'pid')), 1234);
  t.equal(await readPidFile(join(dir, 'nopid')), null);
  writeFileSync(join(dir, 'badpid'), 'x');
  t.equal(await readPidFile(join(dir, 'badpid')), null);

  t.ok(isPidAlive(process.pid));
  t.notOk(isPidAlive(0));
  t.notOk(isPidAlive(-5));
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid as number;
  t.notOk(await processExited(pid), 'running');
  t.equal(await waitPidExit(pid, 50, 10), false, 'times out while running');
  setTimeout(() => child.kill('SIGKILL'), 30);
  t.equal(await waitPidExit(pid, 5000, 10), true, 'sees the exit');
});
