import t from 'tap';
import { IdleTracker } from '../../../src/http/idle.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('fires once idle, not while work is active', async (t) => {
  let fired = 0;
  const idle = new IdleTracker(0.1, () => fired++);
  const end = idle.begin();
  await sleep(250);
  t.equal(fired, 0, 'active work holds it');
  end();
  end(); // idempotent
  t.equal(idle.activeCount, 0);
  await sleep(250);
  t.equal(fired, 1);
  idle.stop();
});

t.test('0 never fires', async (t) => {
  let fired = 0;
  const idle = new IdleTracker(0, () => fired++);
  idle.begin()();
  await sleep(100);
  t.equal(fired, 0);
});
