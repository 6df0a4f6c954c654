import t from 'tap';
import { appendFileSync, mkdtempSync, openSync, closeSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync, ftruncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  encodeLogRecord,
  encodeLogRecords,
  parseLogLine,
  parseTime,
  readLogBatches,
  readLogs,
  type LogRecord,
  type ReadLogsOptions,
} from '../../../src/engine/logs.js';
import { BadRequestError } from '../../../src/errors.js';

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync('/tmp/pslog-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function opts(over: Partial<ReadLogsOptions> = {}): ReadLogsOptions {
  return {
    follow: false,
    stdout: true,
    stderr: true,
    isRunning: () => false,
    waitExit: () => Promise.resolve(),
    signal: new AbortController().signal,
    ...over,
  };
}

async function collect(path: string, o: ReadLogsOptions): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const rec of readLogs(path, o)) out.push(rec);
  return out;
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;

/** "1F:text" / "2P:text": compact view of records for assertions. */
const show = (recs: LogRecord[]): string[] => recs.map((r) => `${r.stream}${r.partial ? 'P' : 'F'}:${r.data.toString()}`);

const TS = (sec: number, nanos = 0, zone = '+00:00'): string =>
  `2024-03-05T10:00:${String(sec).padStart(2, '0')}.${String(nanos).padStart(9, '0')}${zone}`;

t.test('parseLogLine', async (t) => {
  const a = parseLogLine('2024-03-05T10:00:01.123456789+02:00 stdout F hello  world ');
  t.ok(a);
  t.equal(a!.stream, 1);
  t.equal(a!.partial, false);
  t.equal(a!.text, 'hello  world ', 'spaces after the third field are kept');
  t.equal(a!.timestamp, '2024-03-05T10:00:01.123456789+02:00');
  t.equal(a!.time.toISOString(), '2024-03-05T08:00:01.123Z');

  const b = parseLogLine('2024-03-05T10:00:01.000000000Z stderr P part\n');
  t.same([b!.stream, b!.partial, b!.text], [2, true, 'part']);
  t.equal(parseLogLine('2024-03-05T10:00:01.000000000+00:00 stdout F ')!.text, '', 'empty line');
  t.equal(parseLogLine('2024-03-05T10:00:01.000000000+00:00 stdout F')!.text, '', 'empty line without its space');
  t.equal(parseLogLine('2024-03-05T10:00:01.000000000+00:00 stdout F é')!.text, 'é', 'utf-8 text');

  for (const bad of [
    '',
    'garbage',
    '2024-03-05T10:00:01.000000000+00:00 stdin F x',
    '2024-03-05T10:00:01.000000000+00:00 stdout X x',
    '2024-03-05T10:00:01.000000000+00:00 stdout Fx',
    '2024-13-05T10:00:01.000000000+00:00 stdout F x',
    '2024-03-05 10:00:01.000000000+00:00 stdout F x',
    '2024-03-05T10:00:01.000000000 stdout F x',
  ]) {
    t.equal(parseLogLine(bad), undefined, `malformed: ${JSON.stringify(bad)}`);
  }
});

t.test('parseTime follows util.ParseInputTime', async (t) => {
  const now = new Date('2024-03-05T12:00:00.000Z');
  t.equal(parseTime('2024-03-05T10:00:01.5+02:00')!.toISOString(), '2024-03-05T08:00:01.500Z', 'RFC3339Nano');
  t.equal(parseTime('2024-03-05T10:00:01Z')!.toISOString(), '2024-03-05T10:00:01.000Z', 'RFC3339');
  t.equal(parseTime('2024-03-05T10:00:01')!.toISOString(), '2024-03-05T10:00:01.000Z', 'no zone = UTC');
  t.equal(parseTime('2024-03-05T10:00:01.25')!.toISOString(), '2024-03-05T10:00:01.250Z', 'fraction, no zone');
  t.equal(parseTime('2024-03-05')!.toISOString(), '2024-03-05T00:00:00.000Z', 'date only');
  t.equal(parseTime('2024-03-05+01:00')!.toISOString(), '2024-03-04T23:00:00.000Z', 'date with zone');
  t.equal(parseTime('1709632801')!.toISOString(), '2024-03-05T10:00:01.000Z', 'unix seconds');
  t.equal(parseTime('1709632801.25')!.toISOString(), '2024-03-05T10:00:01.250Z', 'unix seconds with fraction');
  t.equal(parseTime('0')!.getTime(), 0, '"0" is the epoch');
  t.equal(parseTime('10m', 'since', now)!.toISOString(), '2024-03-05T11:50:00.000Z', 'duration since = now - d');
  t.equal(parseTime('1h30m', 'until', now)!.toISOString(), '2024-03-05T13:30:00.000Z', 'duration until = now + d');
  t.equal(parseTime('1.5s', 'since', now)!.toISOString(), '2024-03-05T11:59:58.500Z');
  t.equal(parseTime('0001-01-01T00:00:00Z'), undefined, "Go's zero time = unset");
  for (const bad of ['', 'yesterday', '10x', '2024-02-30T00:00:00Z', 'NaN']) {
    t.throws(() => parseTime(bad), BadRequestError, `rejects ${JSON.stringify(bad)}`);
  }
  try {
    parseTime('nope');
  } catch (err) {
    t.equal((err as BadRequestError).status, 400);
    t.match((err as Error).message, /unable to interpret time value/);
  }
});

t.test('read: partial chunks merged, malformed and empty lines skipped, streams selected', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(
    path,
    [
      `${TS(1)} stdout F one`,
      `${TS(2)} stdout P tw`,
      `${TS(2)} stderr F err one`,
      `${TS(3)} stdout P o`,
      `${TS(3)} stdout F  and more`,
      '',
      'not a log line',
      `${TS(4)} stdout Q bad flag`,
      `${TS(4)} stderr F `,
      `${TS(5)} stdout P unfinished`,
      '',
    ].join('\n'),
  );
  const all = await collect(path, opts());
  t.same(show(all), ['1F:one', '2F:err one', '1F:two and more', '2F:', '1P:unfinished']);
  t.equal(all[2]!.timestamp, TS(3), 'a merged record carries the time of its completing chunk');
  t.same(show(await collect(path, opts({ stderr: false }))), ['1F:one', '1F:two and more', '1P:unfinished']);
  t.same(show(await collect(path, opts({ stdout: false }))), ['2F:err one', '2F:']);
  t.same(await collect(join(dir, 'missing.log'), opts()), [], 'missing log = no records');
});

t.test('read: since/until', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(path, [1, 2, 3, 4, 5].map((s) => `${TS(s, s === 3 ? 500 : 0)} stdout F l${s}\n`).join(''));
  const at = (s: number): Date => new Date(`2024-03-05T10:00:0${s}.000Z`);
  t.same(show(await collect(path, opts({ since: at(2) }))), ['1F:l3', '1F:l4', '1F:l5'], 'since is strictly after');
  t.same(show(await collect(path, opts({ since: at(3) }))), ['1F:l3', '1F:l4', '1F:l5'], 'sub-millisecond nanos count as after');
  t.same(show(await collect(path, opts({ until: at(4) }))), ['1F:l1', '1F:l2', '1F:l3'], 'until is strictly before');
  t.same(show(await collect(path, opts({ since: at(1), until: at(3) }))), ['1F:l2']);
  t.same(show(await collect(path, opts({ tail: 2, since: at(1) }))), ['1F:l4', '1F:l5'], 'tail, then since');
  t.same(show(await collect(path, opts({ tail: 4, until: at(3) }))), ['1F:l2'], 'tail, then until');
});

/** Reference semantics for tail: read everything, keep the last n complete records and trailing
 *  partials; tail=0 means nothing from the past (podman seeks to the end). */
function naiveTail(all: LogRecord[], n: number): string[] {
  const complete = all.filter((r) => !r.partial);
  const partials = all.filter((r) => r.partial);
  return n === 0 ? [] : show([...complete.slice(-n), ...partials]);
}

t.test('tail reads backwards across block boundaries', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  // ~400 KiB: lines of varying length (some > 64 KiB block), P chunks interleaved with the other stream.
  const lines: string[] = [];
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 3000; i++) {
    const stream = rnd(4) === 0 ? 'stderr' : 'stdout';
    const len = rnd(50) === 0 ? 70_000 + rnd(1000) : rnd(120);
    const text = `${i}:${'abcdefghij'.repeat(Math.ceil(len / 10)).slice(0, len)}`;
    if (rnd(6) === 0) {
      lines.push(`${TS(i % 60, i)} ${stream} P ${text.slice(0, 3)}`);
      if (rnd(2) === 0) lines.push(`${TS(i % 60, i)} ${stream === 'stdout' ? 'stderr' : 'stdout'} F other${i}`);
      lines.push(`${TS(i % 60, i)} ${stream} F ${text.slice(3)}`);
    } else {
      lines.push(`${TS(i % 60, i)} ${stream} F ${text}`);
    }
  }
  lines.push(`${TS(59)} stdout P trailing`);
  writeFileSync(path, lines.join('\n') + '\n');
  const all = await collect(path, opts());
  t.ok(all.length > 3000, `full read gives ${all.length} records`);
  for (const n of [0, 1, 2, 3, 5, 10, 57, 100, 333, 1000, 2999, all.length, all.length + 10]) {
    t.same(show(await collect(path, opts({ tail: n }))), naiveTail(all, n), `tail=${n}`);
  }
  t.same(show(await collect(path, opts({ tail: -1 }))), show(all), 'tail=-1 is everything');

  // A file with no newline at all, and a file whose last line lacks its newline.
  writeFileSync(path, `${TS(1)} stdout F no newline`);
  t.same(show(await collect(path, opts({ tail: 1 }))), ['1F:no newline']);
  writeFileSync(path, `${TS(1)} stdout F a\n${TS(2)} stdout F b`);
  t.same(show(await collect(path, opts({ tail: 1 }))), ['1F:b'], 'unterminated last line parsed at EOF');
  t.same(show(await collect(path, opts({ tail: 5 }))), ['1F:a', '1F:b']);
});

t.test('tail never reads the whole file (1 GiB sparse log)', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  const fd = openSync(path, 'w');
  ftruncateSync(fd, 1024 * 1024 * 1024); // a gigabyte of zero bytes without a single newline
  writeSync(fd, `\n${TS(1)} stdout F a\n${TS(2)} stdout F b\n${TS(3)} stderr F c\n`, 1024 * 1024 * 1024);
  closeSync(fd);
  const started = Date.now();
  t.same(show(await collect(path, opts({ tail: 2 }))), ['1F:b', '2F:c']);
  t.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

t.test('an over-long non-log line is skipped, not buffered', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  const huge = 'z'.repeat(20 * 1024 * 1024);
  writeFileSync(path, `${TS(1)} stdout F a\n${TS(2)} stdout F ${huge}\n${TS(3)} stdout F b\n`);
  t.same(show(await collect(path, opts())), ['1F:a', '1F:b']);
  t.same(show(await collect(path, opts({ tail: 1 }))), ['1F:b']);
  t.same(show(await collect(path, opts({ tail: 2 }))), ['1F:a', '1F:b']);
});

t.test('batches, large volume', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  const count = 100_000;
  const body: string[] = [];
  for (let i = 0; i < count; i++) body.push(`${TS(i % 60, i)} ${i % 3 ? 'stdout' : 'stderr'} F line ${i}\n`);
  writeFileSync(path, body.join(''));
  let seen = 0;
  let batches = 0;
  let ok = true;
  for await (const batch of readLogBatches(path, opts())) {
    batches++;
    for (const rec of batch) {
      if (rec.data.toString() !== `line ${seen}` || rec.stream !== (seen % 3 ? 1 : 2)) ok = false;
      seen++;
    }
  }
  t.equal(seen, count);
  t.ok(ok, 'every record in order with the right stream');
  t.ok(batches < count / 100, `records come in batches (${batches})`);
});

t.test('encodeLogRecord / encodeLogRecords', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(path, `${TS(1, 123456789)} stdout F hi\n${TS(2, 5, '-05:30')} stderr F oops\n${TS(3)} stdout P part\n`);
  const recs = await collect(path, opts());
  const mux = encodeLogRecord(recs[0]!, { timestamps: false, multiplexed: true });
  t.same([...mux.subarray(0, 8)], [1, 0, 0, 0, 0, 0, 0, 3]);
  t.equal(mux.subarray(8).toString(), 'hi\n');
  t.equal(encodeLogRecord(recs[0]!, { timestamps: true, multiplexed: false }).toString(), '2024-03-05T10:00:01Z hi\n', 'seconds precision, +00:00 → Z');
  t.equal(encodeLogRecord(recs[1]!, { timestamps: true, multiplexed: false }).toString(), '2024-03-05T10:00:02-05:30 oops\n', 'offset kept');
  const errFrame = encodeLogRecord(recs[1]!, { timestamps: true, multiplexed: true });
  t.equal(errFrame[0], 2, 'stderr stream byte');
  t.equal(errFrame.readUInt32BE(4), errFrame.length - 8, 'length covers timestamp + text + newline');
  t.equal(encodeLogRecord(recs[2]!, { timestamps: false, multiplexed: false }).toString(), 'part', 'partial: no newline');
  for (const o of [
    { timestamps: true, multiplexed: true },
    { timestamps: false, multiplexed: false },
  ]) {
    t.same(encodeLogRecords(recs, o), Buffer.concat(recs.map((r) => encodeLogRecord(r, o))), 'batch = concatenated records');
  }
  // Records built by hand (not by the reader) are encoded from their timestamp string.
  const manual: LogRecord = { time: new Date(0), timestamp: TS(9, 1, '+01:00'), stream: 1, partial: false, data: Buffer.from('x') };
  t.equal(encodeLogRecord(manual, { timestamps: true, multiplexed: false }).toString(), '2024-03-05T10:00:09+01:00 x\n');
});

/** A fake container whose log a test writes to, with the engine-side hooks readLogs needs. */
function fakeContainer() {
  let running = true;
  let exit!: () => void;
  const exited = new Promise<void>((resolve) => (exit = resolve));
  let listeners = 0;
  return {
    isRunning: () => running,
    waitExit: (signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        listeners++;
        const done = (): void => {
          listeners--;
          signal.removeEventListener('abort', done);
          resolve();
        };
        signal.addEventListener('abort', done, { once: true });
        void exited.then(done);
      }),
    die: () => {
      running = false;
      exit();
    },
    listeners: () => listeners,
  };
}

t.test('follow: reads appended lines, stops after the final read when the container dies', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(path, `${TS(1)} stdout F before\n`);
  const ctr = fakeContainer();
  const got: string[] = [];
  let ended = false;
  const reading = (async () => {
    for await (const rec of readLogs(path, opts({ follow: true, isRunning: ctr.isRunning, waitExit: ctr.waitExit }))) {
      got.push(`${rec.stream}${rec.partial ? 'P' : 'F'}:${rec.data.toString()}`);
    }
    ended = true;
  })();
  await waitFor(() => got.length === 1);
  appendFileSync(path, `${TS(2)} stdout P hel`);
  await sleep(30);
  appendFileSync(path, `lo\n${TS(2)} stdout F  world\n`); // a file line written in two appends
  await waitFor(() => got.length === 2);
  appendFileSync(path, `${TS(3)} stderr F e\n`);
  await waitFor(() => got.length === 3);
  t.notOk(ended, 'still following while the container runs');
  // The container writes its last line and dies at once: the final read must still see it.
  appendFileSync(path, `${TS(4)} stdout F last words\n${TS(4)} stdout P no newline`);
  ctr.die();
  await reading;
  t.same(got, ['1F:before', '1F:hello world', '2F:e', '1F:last words', '1P:no newline']);
  t.equal(ctr.listeners(), 0, 'exit listener released');
});

t.test('follow: tail=0 skips history; a consumer that breaks out releases everything', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(path, `${TS(1)} stdout F old 1\n${TS(1)} stdout F old 2\n`);
  const ctr = fakeContainer();
  await sleep(20);
  const fdsBefore = fdCount();
  const got: string[] = [];
  const reading = (async () => {
    for await (const rec of readLogs(path, opts({ follow: true, tail: 0, isRunning: ctr.isRunning, waitExit: ctr.waitExit }))) {
      got.push(rec.data.toString());
      if (got.length === 2) break;
    }
  })();
  await sleep(50);
  t.same(got, [], 'nothing from before');
  appendFileSync(path, `${TS(2)} stdout F new 1\n`);
  await waitFor(() => got.length === 1);
  appendFileSync(path, `${TS(3)} stdout F new 2\n${TS(3)} stdout F new 3\n`);
  await reading;
  t.same(got, ['new 1', 'new 2']);
  await waitFor(() => fdCount() === fdsBefore && ctr.listeners() === 0).catch(() => undefined);
  t.equal(fdCount(), fdsBefore, 'file closed after break');
  t.equal(ctr.listeners(), 0, 'exit listener released after break');
});

t.test('follow on a stopped container ends at EOF', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(path, `${TS(1)} stdout F a\n${TS(2)} stdout F b\n`);
  const started = Date.now();
  t.same(show(await collect(path, opts({ follow: true, isRunning: () => false, waitExit: () => new Promise(() => undefined) }))), ['1F:a', '1F:b']);
  t.ok(Date.now() - started < 1000);
  t.same(show(await collect(join(dir, 'none.log'), opts({ follow: true }))), [], 'no log, not running: empty');
});

t.test('follow: log that appears later, log-size-max rotation, truncation', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  const ctr = fakeContainer();
  const got: string[] = [];
  const reading = (async () => {
    for await (const rec of readLogs(path, opts({ follow: true, tail: 0, isRunning: ctr.isRunning, waitExit: ctr.waitExit }))) {
      got.push(rec.data.toString());
    }
  })();
  await sleep(50);
  writeFileSync(path, `${TS(1)} stdout F first\n${TS(1)} stdout F second\n`);
  await waitFor(() => got.length === 2);
  t.same(got, ['first', 'second'], 'a log created after the start is read from its beginning, tail notwithstanding');
  // conmon's log-size-max: write <path>.tmp, rename over the log.
  writeFileSync(`${path}.tmp`, `${TS(2)} stdout F after rotation\n`);
  renameSync(`${path}.tmp`, path);
  await waitFor(() => got.length === 3);
  appendFileSync(path, `${TS(3)} stdout F appended\n`);
  await waitFor(() => got.length === 4);
  truncateSync(path, 0);
  await sleep(50);
  appendFileSync(path, `${TS(4)} stdout F after truncate\n`);
  await waitFor(() => got.length === 5);
  ctr.die();
  await reading;
  t.same(got, ['first', 'second', 'after rotation', 'appended', 'after truncate']);
});

t.test('follow with until ends when the time passes', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(path, '');
  const ctr = fakeContainer();
  const started = Date.now();
  const recs = await collect(path, opts({ follow: true, until: new Date(Date.now() + 150), isRunning: ctr.isRunning, waitExit: ctr.waitExit }));
  t.same(recs, []);
  t.ok(Date.now() - started >= 140, 'waited for until');
  t.equal(ctr.listeners(), 0);
});

const resourceCount = (): number => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'Timeout').length;

t.test('2000 aborted follows leak neither fds, watchers nor listeners', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(path, `${TS(1)} stdout F hello\n`);
  const ctr = fakeContainer();
  // Warm up lazily created handles (libuv's inotify fd, the fs thread pool) before the baseline.
  {
    const ac = new AbortController();
    const it = readLogs(path, opts({ follow: true, signal: ac.signal, isRunning: ctr.isRunning, waitExit: ctr.waitExit }));
    await it.next();
    const pending = it.next();
    ac.abort();
    await pending;
  }
  await sleep(20);
  const fdsBefore = fdCount();
  const resourcesBefore = resourceCount();
  let allEnded = true;
  for (let round = 0; round < 10; round++) {
    const sessions = Array.from({ length: 200 }, (_, i) => {
      const ac = new AbortController();
      const it = readLogs(path, opts({ follow: true, tail: i % 2 ? 1 : -1, signal: ac.signal, isRunning: ctr.isRunning, waitExit: ctr.waitExit }));
      return { ac, it };
    });
    // Half are aborted while waiting for new data, half while the consumer sits on a record.
    const firsts = await Promise.all(sessions.map((s) => s.it.next()));
    if (!firsts.every((r) => !r.done && r.value.data.toString() === 'hello')) allEnded = false;
    const waits = sessions.map((s, i) => (i % 2 ? s.it.next() : undefined));
    if (round === 0) t.ok(fdCount() >= fdsBefore + 200, 'each follow holds its file open');
    for (const s of sessions) s.ac.abort();
    for (const w of waits) if (w && !(await w).done) allEnded = false;
    for (const [i, s] of sessions.entries()) if (i % 2 === 0 && !(await s.it.next()).done) allEnded = false;
  }
  t.ok(allEnded, 'every aborted iterator ends');
  await waitFor(() => fdCount() === fdsBefore && resourceCount() === resourcesBefore, 5000).catch(() => undefined);
  t.equal(fdCount(), fdsBefore, 'open fds back to the baseline');
  t.equal(resourceCount(), resourcesBefore, 'active handles back to the baseline');
  t.equal(ctr.listeners(), 0, 'no exit listener left');
});

t.test('abort before the first read, and abort while the consumer never pulls again', async (t) => {
  const dir = tmpDir(t);
  const path = join(dir, 'ctr.log');
  writeFileSync(path, `${TS(1)} stdout F a\n`);
  const ctr = fakeContainer();
  const pre = new AbortController();
  pre.abort();
  t.same(await collect(path, opts({ follow: true, signal: pre.signal, isRunning: ctr.isRunning, waitExit: ctr.waitExit })), []);
  await sleep(20);
  const before = fdCount();
  const ac = new AbortController();
  const it = readLogs(path, opts({ follow: true, signal: ac.signal, isRunning: ctr.isRunning, waitExit: ctr.waitExit }));
  await it.next(); // suspended at a yield; the consumer walks away
  t.equal(fdCount(), before + 1);
  ac.abort();
  await waitFor(() => fdCount() === before);
  t.equal(fdCount(), before, 'released on abort without the consumer pulling');
  t.equal(ctr.listeners(), 0);
});

async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for condition');
    await sleep(5);
  }
}
