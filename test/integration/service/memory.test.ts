/**
 * QuietMemoryReturn (src/memory.ts) with the real native addon: memory goes back in two stages once requests
 * stop, once per quiet period, and not while requests keep coming.
 */
import t from 'tap';
import { pino } from 'pino';
import { QuietMemoryReturn } from '../../../src/memory.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Line {
  how: string;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  ms: number;
}

t.test('memory is given back in two stages once per quiet period, and it shrinks what a burst left', async (t) => {
  const lines: Line[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) });
  const memory = new QuietMemoryReturn(logger, { trimAfterMs: 200, collectAfterMs: 500 });
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
  await sleep(350);
  t.same(lines.map((l) => l.how), ['trimMemory'], 'the C heap first');
  await sleep(400);
  t.same(lines.map((l) => l.how), ['trimMemory', 'lowMemory'], 'then the collection');
  const collected = lines[1]!;
  t.ok(collected.rssAfterMiB < collected.rssBeforeMiB, `RSS ${collected.rssBeforeMiB} -> ${collected.rssAfterMiB} MiB in ${collected.ms} ms`);
  await sleep(600);
  t.equal(lines.length, 2, 'not again while nothing happens');
  memory.activity();
  await sleep(700);
  t.same(lines.slice(2).map((l) => l.how), ['trimMemory', 'lowMemory'], 'again after the next quiet period');
  t.equal(keep.length, 0);
});
