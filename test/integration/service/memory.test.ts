/**
 * QuietMemoryReturn (src/memory.ts) with the real native addon: memory goes back once requests stop for the
 * quiet period, once per quiet period, and not while requests keep coming.
 */
import t from 'tap';
import { pino } from 'pino';
import { QuietMemoryReturn } from '../../../src/memory.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('memory is given back once per quiet period, and it shrinks what a burst left', async (t) => {
  const lines: { rssBeforeMiB: number; rssAfterMiB: number; ms: number }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const memory = new QuietMemoryReturn(logger, 200);
  t.teardown(() => memory.stop());

  // A burst: garbage in the young and old generations and in the C heap (Buffers), requests every 50 ms.
  let keep: unknown[] = [];
  for (let i = 0; i < 12; i++) {
    memory.activity();
    keep = Array.from({ length: 20_000 }, (_, j) => ({ j, text: `item ${j}`.repeat(4) }));
    keep.push(Buffer.alloc(4 * 1024 * 1024, i));
    await sleep(50);
  }
  t.equal(lines.length, 0, 'nothing while requests keep coming');
  keep = [];
  await sleep(400);
  t.equal(lines.length, 1, 'given back once the requests stopped');
  t.ok(lines[0]!.rssAfterMiB < lines[0]!.rssBeforeMiB, `RSS ${lines[0]!.rssBeforeMiB} -> ${lines[0]!.rssAfterMiB} MiB in ${lines[0]!.ms} ms`);
  await sleep(400);
  t.equal(lines.length, 1, 'not again while nothing happens');
  memory.activity();
  await sleep(400);
  t.equal(lines.length, 2, 'again after the next quiet period');
  t.equal(keep.length, 0);
});
