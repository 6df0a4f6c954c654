/** The exit command's /bin/sh gate: it stops only for a live daemon's mark, and runs the command otherwise. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatedExitCommand, processStartTime, removeServingMark, servingMarkPath, writeServingMark } from '../../src/serving-mark.js';

const dir = mkdtempSync('/tmp/psm-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ran = join(dir, 'ran');

/** Runs the gated command `touch ran`; true when the command ran. */
function gateRuns(): boolean {
  rmSync(ran, { force: true });
  const [file, ...args] = gatedExitCommand(dir, ['/usr/bin/touch', ran]);
  const result = spawnSync(file!, args, { encoding: 'utf8' });
  t.equal(result.status, 0, `gate exit status (stderr: ${result.stderr})`);
  t.equal(result.stderr, '', 'nothing on stderr');
  return existsSync(ran);
}

t.test('start time of this process', async (t) => {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(' ');
  t.match(processStartTime(), /^\d+$/);
  // This process's command name has no spaces, so the plain split agrees.
  t.equal(processStartTime(), fields[21]);
});

t.test('a live daemon mark stops the command; anything else runs it', async (t) => {
  t.ok(gateRuns(), 'no mark: the command runs');

  await writeServingMark(dir);
  t.equal(readFileSync(servingMarkPath(dir), 'utf8'), `${process.pid} ${processStartTime()}\n`);
  t.notOk(gateRuns(), 'our own mark: the command does not run');

  writeFileSync(servingMarkPath(dir), `${process.pid} 1\n`);
  t.ok(gateRuns(), 'same pid, other start time (a reused pid): the command runs');

  writeFileSync(servingMarkPath(dir), '4194303 1\n');
  t.ok(gateRuns(), 'a pid that is not running: the command runs');

  writeFileSync(servingMarkPath(dir), '');
  t.ok(gateRuns(), 'an empty mark: the command runs');
});

t.test('removeServingMark only removes our own mark', async (t) => {
  writeFileSync(servingMarkPath(dir), '1 1\n');
  await removeServingMark(dir);
  t.ok(existsSync(servingMarkPath(dir)), "another process's mark stays");
  await writeServingMark(dir);
  await removeServingMark(dir);
  t.notOk(existsSync(servingMarkPath(dir)), 'ours is removed');
  await removeServingMark(dir);
  t.pass('removing an absent mark is fine');
});
