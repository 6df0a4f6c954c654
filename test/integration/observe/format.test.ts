/**
 * The Go-compatible formatting the observe endpoints rely on (no daemon needed): time.Duration strings,
 * strconv.ParseInt base 0, shlex splitting of ps arguments, json.Encoder output, and Podman's top body.
 */
import t from 'tap';
import { formatGoDuration, shellSplit, translateDescriptors } from '../../../src/engine/top.js';
import { goJson } from '../../../src/engine/stats.js';
import { parseGoInt, topBody } from '../../../routes/libpod/observe.js';
import type { PodserveError } from '../../../src/errors.js';

t.test('Go durations', async (t) => {
  const cases: [bigint, string][] = [
    [0n, '0s'],
    [1n, '1ns'],
    [1500n, '1.5µs'],
    [2_000_000n, '2ms'],
    [1_234_567n, '1.234567ms'],
    [1_000_000_000n, '1s'],
    [42_524_337_119n, '42.524337119s'],
    [60_000_000_000n, '1m0s'],
    [732_721_993_771n, '12m12.721993771s'],
    [3_600_000_000_000n, '1h0m0s'],
    [90_061_000_000_000n, '25h1m1s'],
    [-1_500_000_000n, '-1.5s'],
  ];
  for (const [ns, text] of cases) t.equal(formatGoDuration(ns), text, text);
});

t.test('strconv.ParseInt(s, 0, 64)', async (t) => {
  t.equal(parseGoInt('10'), 10);
  t.equal(parseGoInt('-1'), -1);
  t.equal(parseGoInt('+7'), 7);
  t.equal(parseGoInt('0x1f'), 31);
  t.equal(parseGoInt('017'), 15, 'a leading zero is octal');
  t.equal(parseGoInt('0o17'), 15);
  t.equal(parseGoInt('0b101'), 5);
  t.equal(parseGoInt('1_000'), 1000);
  t.equal(parseGoInt('0'), 0);
  const failure = (text: string): PodserveError | undefined => {
    try {
      parseGoInt(text);
    } catch (err) {
      return err as PodserveError;
    }
    return undefined;
  };
  for (const bad of ['', 'abc', '1.5', '08', '1__0', '_1', '0x', ' 1']) {
    t.same([failure(bad)?.status, failure(bad)?.causeText], [400, 'invalid syntax'], JSON.stringify(bad));
  }
  t.equal(failure('9223372036854775808')?.causeText, 'value out of range');
});

t.test('ps arguments split like a shell', async (t) => {
  t.same(shellSplit('-ef'), ['-ef']);
  t.same(shellSplit('  -o  pid,args '), ['-o', 'pid,args']);
  t.same(shellSplit(`-o "pid args" 'a b' c\\ d`), ['-o', 'pid args', 'a b', 'c d']);
  t.same(shellSplit('""'), ['']);
  t.throws(() => shellSplit('"open'), /closing quote/);
});

t.test('descriptors: normal names and AIX codes, unknown ones fall back to ps(1)', async (t) => {
  t.same(translateDescriptors([])!.map((d) => d.header), ['USER', 'PID', 'PPID', '%CPU', 'ELAPSED', 'TTY', 'TIME', 'COMMAND']);
  t.same(translateDescriptors(['%p', ' user ', 'capbnd'])!.map((d) => d.header), ['PID', 'USER', 'BOUNDING CAPS']);
  t.equal(translateDescriptors(['-ef']), undefined);
  t.equal(translateDescriptors(['pid', 'aux']), undefined);
});

t.test("json.Encoder output: HTML escaping, exact 64-bit integers, one line", async (t) => {
  t.equal(goJson({ a: 'x <y> & z', n: 1796005180429333782n, f: 0.25, z: null }), '{"a":"x \\u003cy\\u003e \\u0026 z","n":1796005180429333782,"f":0.25,"z":null}\n');
  t.equal(goJson({ s: '\u2028' }), '{"s":"\\u2028"}\n');
});

t.test("Podman's top body from tab-separated lines", async (t) => {
  t.same(topBody(['PID\tCOMMAND', '1\tsh -c x ', '2\tsleep 1']), { Processes: [['1', 'sh -c x'], ['2', 'sleep 1']], Titles: ['PID', 'COMMAND'] });
  t.same(topBody(['PID   USER     COMMAND']), { Processes: null, Titles: ['PID   USER     COMMAND'] });
  t.same(Object.keys(topBody(['A'])), ['Processes', 'Titles']);
});
