import t from 'tap';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import {
  EventBus,
  EventFilter,
  EventSubscriberOverflowError,
  decodeJournalLine,
  encodeJournalLine,
  serializeApiEvent,
  toDockerEvent,
  toLibpodEvent,
  type EventBusOptions,
  type PodmanEvent,
} from '../../../src/engine/events.js';
import { BadRequestError } from '../../../src/errors.js';

const logger = pino({ level: 'silent' });

async function openBus(t: { teardown(fn: () => unknown): void }, opts: EventBusOptions = {}): Promise<{ bus: EventBus; path: string; dir: string }> {
  const dir = mkdtempSync('/tmp/psev-');
  const path = join(dir, 'events', 'events.log');
  const bus = await EventBus.open(path, logger, opts);
  t.teardown(async () => {
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { bus, path, dir };
}

const ctr = (status: string, id: string, name: string, extra: Partial<PodmanEvent> = {}) => ({
  type: 'container' as const,
  status,
  id,
  name,
  image: 'docker.io/library/busybox:latest',
  attributes: { app: 'web' },
  ...extra,
});

/** Pulls n events from an iterator (fails the test if it ends or stalls). */
async function take(it: AsyncIterator<PodmanEvent>, n: number, timeoutMs = 3000): Promise<PodmanEvent[]> {
  const out: PodmanEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const r = await Promise.race([it.next(), sleep(Math.max(1, deadline - Date.now())).then(() => 'timeout' as const)]);
    if (r === 'timeout') throw new Error(`only ${out.length} of ${n} events arrived`);
    if (r.done) throw new Error(`stream ended after ${out.length} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

const key = (ev: PodmanEvent): string => `${ev.type}:${ev.status}:${ev.name}`;

t.test('emit writes podman-format journal lines; exit code moved out of attributes', async (t) => {
  const { bus, path } = await openBus(t);
  const a = bus.emit(ctr('create', 'aaa111', 'web'));
  const b = bus.emit(ctr('died', 'aaa111', 'web', { attributes: { app: 'web', containerExitCode: '3' } }));
  const c = bus.emit({ type: 'image', status: 'pull', id: 'sha1', name: 'busybox' });
  t.ok(a.timeNano < b.timeNano && b.timeNano < c.timeNano, 'times strictly increase');
  t.equal(b.containerExitCode, 3);
  t.same(b.attributes, { app: 'web' });
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  t.equal(lines.length, 3);
  const died = JSON.parse(lines[1]!);
  t.same(Object.keys(died), ['ContainerExitCode', 'ID', 'Image', 'Name', 'Status', 'Time', 'Type', 'Attributes'], "podman's field order");
  t.equal(died.ContainerExitCode, 3);
  t.equal(died.Status, 'died');
  t.match(died.Time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  t.same(decodeJournalLine(lines[1]!), b, 'round trip');
  t.same(decodeJournalLine(lines[2]!), c);
});

t.test('journal lines written by podman are read', async (t) => {
  const line =
    '{"ID":"2a1b","Image":"docker.io/library/alpine:latest","Name":"x","Status":"start","Time":"2022-11-10T10:00:00.123456789+01:00","Type":"container","PodID":"p1","Attributes":{"io.x":"1"}}';
  const ev = decodeJournalLine(line)!;
  t.equal(ev.timeNano, 1668070800123456789n);
  t.same([ev.type, ev.status, ev.id, ev.name, ev.image, ev.podId], ['container', 'start', '2a1b', 'x', 'docker.io/library/alpine:latest', 'p1']);
  t.same(ev.attributes, { 'io.x': '1' });
  t.equal(decodeJournalLine('{"Status":"start","Time":"2022-11-10T10:00:00Z","Type":"bogus"}'), undefined, 'unknown type');
  t.equal(decodeJournalLine('not json'), undefined);
  t.equal(decodeJournalLine('{"Type":"container","Status":"start"}'), undefined, 'no time');
});

t.test('API shapes: libpod and docker', async (t) => {
  const ev: PodmanEvent = {
    type: 'container',
    status: 'died',
    id: 'abc',
    name: 'web',
    image: 'busybox',
    attributes: { 'z.label': '<b>&', app: 'web' },
    containerExitCode: 137,
    timeNano: 1700000000123456789n,
  };
  const libpod = toLibpodEvent(ev);
  t.same(libpod.Actor.Attributes, { 'z.label': '<b>&', app: 'web', image: 'busybox', name: 'web', containerExitCode: '137', podId: '' });
  t.equal(
    serializeApiEvent(libpod),
    '{"status":"died","id":"abc","from":"busybox","Type":"container","Action":"died","Actor":{"ID":"abc","Attributes":' +
      '{"app":"web","containerExitCode":"137","image":"busybox","name":"web","podId":"","z.label":"\\u003cb\\u003e\\u0026"}},' +
      '"scope":"local","time":1700000000,"timeNano":1700000000123456789}\n',
    "Go's encoding: sorted keys, HTML escaping, exact 64-bit timeNano",
  );
  const docker = toDockerEvent(ev);
  t.same([docker.status, docker.Action, docker.Actor.Attributes['exitCode']], ['die', 'die', '137']);
  const rm = toDockerEvent({ ...ev, type: 'image', status: 'remove', containerExitCode: undefined });
  t.same([rm.status, rm.Action], ['delete', 'delete']);
  t.equal(toLibpodEvent({ ...ev, type: 'image', status: 'remove' }).Action, 'remove', 'libpod keeps remove');
  const vol = serializeApiEvent(toLibpodEvent({ type: 'volume', status: 'create', id: '', name: 'v1', image: '', attributes: {}, timeNano: 5n }));
  t.notMatch(vol, /"id"|"from"/, 'empty id/from omitted');
  t.match(vol, /"Actor":\{"ID":"","Attributes"/);
});

t.test('filters: podman semantics', async (t) => {
  const events: PodmanEvent[] = [
    { ...ctr('start', 'aaa111', 'web'), timeNano: 1n },
    { ...ctr('died', 'bbb222', 'db', { attributes: { tier: 'back' } }), timeNano: 2n },
    { type: 'image', status: 'pull', id: 'ccc333', name: 'busybox', image: '', attributes: {}, timeNano: 3n },
    { type: 'volume', status: 'create', id: '', name: 'vol1', image: '', attributes: {}, timeNano: 4n },
  ] as PodmanEvent[];
  const pick = (input: Parameters<typeof EventFilter.parse>[0], compat = false): string[] =>
    events.filter((e) => EventFilter.parse(input, { compat }).matches(e)).map((e) => `${e.status}:${e.name}`);
  t.same(pick(['container=web']), ['start:web'], 'container by name');
  t.same(pick(['container=bbb']), ['died:db'], 'container by id prefix');
  t.same(pick(['container=web', 'container=db']), ['start:web', 'died:db'], 'same key: OR');
  t.same(pick(['container=web', 'event=died']), [], 'different keys: AND');
  t.same(pick({ event: ['died', 'pull'] }), ['died:db', 'pull:busybox'], 'map form');
  t.same(pick({ type: { image: true, volume: true, container: false } }), ['pull:busybox', 'create:vol1'], "docker's old map form");
  t.same(pick(['image=busybox']), ['pull:busybox'], 'image= matches image events');
  t.same(pick(['image=ccc']), ['pull:busybox']);
  t.same(pick(['volume=vol1']), ['create:vol1']);
  t.same(pick(['label=app=web']), ['start:web']);
  t.same(pick(['label=tier']), ['died:db'], 'label key only');
  t.same(pick(['LABEL=tier=back', 'Type=container']), ['died:db'], 'keys are case-insensitive');
  t.same(pick(['event=die']), [], 'docker action names are not podman statuses');
  t.same(pick(['event=die'], true), ['died:db'], '...unless compat');
  t.same(pick([]), ['start:web', 'died:db', 'pull:busybox', 'create:vol1']);
  t.throws(() => EventFilter.parse(['bogus=1']), BadRequestError);
  t.throws(() => EventFilter.parse(['container']), BadRequestError);
  t.throws(() => EventFilter.parse({ since: ['1'] }), BadRequestError);
});

t.test('live subscription, filters, abort releases the subscriber', async (t) => {
  const { bus } = await openBus(t);
  const ac = new AbortController();
  const it = bus.subscribe(['container=web'], undefined, undefined, ac.signal);
  t.equal(bus.subscriberCount, 1);
  bus.emit(ctr('create', 'a1', 'web'));
  bus.emit(ctr('create', 'b1', 'other'));
  bus.emit(ctr('start', 'a1', 'web'));
  t.same((await take(it, 2)).map(key), ['container:create:web', 'container:start:web']);
  const pending = it.next();
  ac.abort();
  t.same(await pending, { value: undefined, done: true }, 'a pending next() ends on abort');
  t.equal(bus.subscriberCount, 0);
  t.throws(() => bus.subscribe(['nope=1']), BadRequestError, 'invalid filters throw at subscribe');
  t.equal(bus.subscriberCount, 0);
});

t.test('history survives a restart; since replays, then live without gap or duplicate', async (t) => {
  const { bus, path } = await openBus(t);
  const before = new Date(Date.now() - 1000);
  bus.emit(ctr('create', 'a1', 'one'));
  bus.emit(ctr('start', 'a1', 'one'));
  await bus.close();

  const bus2 = await EventBus.open(path, logger);
  t.teardown(() => bus2.close());
  t.same((await bus2.query(undefined)).map(key), ['container:create:one', 'container:start:one'], 'query reads the journal');
  const liveOnly = bus2.subscribe(undefined);
  const replaying = bus2.subscribe(undefined, before);
  bus2.emit(ctr('stop', 'a1', 'one')); // emitted before the replay is consumed
  t.same((await take(replaying, 3)).map(key), ['container:create:one', 'container:start:one', 'container:stop:one']);
  t.same((await take(liveOnly, 1)).map(key), ['container:stop:one'], 'without since/until: only new events');
  bus2.emit(ctr('remove', 'a1', 'one'));
  t.same((await take(replaying, 1)).map(key), ['container:remove:one']);
  await liveOnly.return!();
  await replaying.return!();
  t.equal(bus2.subscriberCount, 0);
});

t.test('since/until', async (t) => {
  const { bus } = await openBus(t);
  const at = (ms: number): bigint => BigInt(ms) * 1_000_000n;
  const base = Date.now() - 60_000;
  for (let i = 0; i < 5; i++) bus.emit({ ...ctr('start', `id${i}`, `c${i}`), timeNano: at(base + i * 1000) + 500n });
  const names = (evs: PodmanEvent[]): string[] => evs.map((e) => e.name);
  t.same(names(await bus.query(undefined, new Date(base + 1000))), ['c1', 'c2', 'c3', 'c4'], 'since is strictly after (sub-ms counts)');
  t.same(names(await bus.query(undefined, new Date(base + 1001))), ['c2', 'c3', 'c4']);
  t.same(names(await bus.query(undefined, undefined, new Date(base + 2000))), ['c0', 'c1'], 'until is strictly before');
  t.same(names(await bus.query(['container=c3'], new Date(base), new Date(base + 10_000))), ['c3']);

  // until in the past: replay only, then the stream ends.
  const past: PodmanEvent[] = [];
  for await (const ev of bus.subscribe(undefined, undefined, new Date(base + 2500))) past.push(ev);
  t.same(names(past), ['c0', 'c1', 'c2'], 'until alone replays from the start and ends');

  // until in the future: live events until then, then the stream ends by itself.
  const started = Date.now();
  const future = bus.subscribe(['event=kill'], undefined, new Date(Date.now() + 200));
  bus.emit(ctr('kill', 'x', 'k1'));
  const got: PodmanEvent[] = [];
  for await (const ev of future) got.push(ev);
  t.same(names(got), ['k1']);
  t.ok(Date.now() - started >= 190, 'ended at until');
  t.equal(bus.subscriberCount, 0);
});

t.test('a slow subscriber is dropped with an error, memory stays bounded', async (t) => {
  const { bus } = await openBus(t, { queueLimit: 10 });
  const slow = bus.subscribe(undefined);
  const fast = bus.subscribe(undefined);
  const fastGot: PodmanEvent[] = [];
  const fastDone = (async () => {
    for await (const ev of fast) {
      fastGot.push(ev);
      if (fastGot.length === 25) break;
    }
  })();
  for (let i = 0; i < 25; i++) {
    bus.emit(ctr('exec', 'a', `n${i}`));
    await Promise.resolve();
  }
  await fastDone;
  t.equal(fastGot.length, 25, 'a subscriber that keeps up gets everything');
  t.equal(bus.subscriberCount, 0, 'the slow one was dropped at once (the fast one left)');
  t.same((await take(slow, 10)).map((e) => e.name), ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9'], 'queued events still delivered');
  await t.rejects(slow.next(), EventSubscriberOverflowError);
  t.same(await slow.next(), { value: undefined, done: true });
});

t.test('rotation keeps the journal bounded; live subscribers see every event once', async (t) => {
  const { bus, path } = await openBus(t, { maxBytes: 4000 });
  const seen: PodmanEvent[] = [];
  const sub = bus.subscribe(undefined);
  const reading = (async () => {
    for await (const ev of sub) seen.push(ev);
  })();
  for (let i = 0; i < 200; i++) bus.emit(ctr('start', `id${i}`, `c${i}`));
  await sleep(10);
  t.ok(statSync(path).size < 4000, `journal stays under maxBytes (${statSync(path).size})`);
  const starts = seen.filter((e) => e.status === 'start').map((e) => e.name);
  t.same(starts, Array.from({ length: 200 }, (_, i) => `c${i}`), 'every event once, in order');
  const rotations = seen.filter((e) => e.type === 'system' && e.status === 'log-rotation');
  t.ok(rotations.length > 5, `log-rotation events (${rotations.length})`);
  t.equal(rotations[0]!.name, path);
  const kept = await bus.query(['event=start']);
  t.ok(kept.length > 10 && kept.length < 200, `latter part kept (${kept.length})`);
  t.equal(kept.at(-1)!.name, 'c199');
  for (let i = 1; i < kept.length; i++) if (kept[i]!.timeNano <= kept[i - 1]!.timeNano) t.fail('journal out of order');
  await sub.return!();
  await reading;
});

t.test('lines appended by another process arrive live (fs.watch), as does a replaced journal', async (t) => {
  const { bus, path } = await openBus(t);
  const sub = bus.subscribe(undefined);
  const line = (status: string, name: string, time: string): string =>
    `{"ID":"e1","Name":"${name}","Status":"${status}","Time":"${time}","Type":"container","Attributes":null}\n`;
  appendFileSync(path, line('died', 'ext', new Date().toISOString()));
  const [ext] = await take(sub, 1);
  t.same([ext!.status, ext!.name], ['died', 'ext']);
  // Half a line (the other writer is mid-write) is not dispatched until it is complete.
  const full = line('cleanup', 'ext', new Date(Date.now() + 1).toISOString());
  appendFileSync(path, full.slice(0, 20));
  await sleep(50);
  appendFileSync(path, full.slice(20));
  t.same((await take(sub, 1)).map(key), ['container:cleanup:ext']);
  // Another process rotated the journal: old lines reappear in the new file, only newer ones are news.
  const tmp = `${path}.x`;
  writeFileSync(tmp, full + line('remove', 'ext', new Date(Date.now() + 2).toISOString()));
  renameSync(tmp, path);
  t.same((await take(sub, 1)).map(key), ['container:remove:ext']);
  bus.emit(ctr('create', 'z', 'ours'));
  t.same((await take(sub, 1)).map(key), ['container:create:ours'], 'own appends still work after the switch');
  await sub.return!();
});

t.test('close() ends live subscriptions', async (t) => {
  const { bus } = await openBus(t);
  const sub = bus.subscribe(undefined);
  const pending = sub.next();
  await bus.close();
  t.same(await pending, { value: undefined, done: true });
  t.same(bus.emit(ctr('start', 'a', 'b')).status, 'start', 'emit after close does not throw');
});

t.test('2000 aborted subscriptions (with replay) leak no fds or listeners', async (t) => {
  const { bus } = await openBus(t);
  for (let i = 0; i < 50; i++) bus.emit(ctr('start', `id${i}`, `c${i}`));
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  for (let round = 0; round < 10; round++) {
    const subs = Array.from({ length: 200 }, () => {
      const ac = new AbortController();
      return { ac, it: bus.subscribe(undefined, new Date(0), undefined, ac.signal) };
    });
    t.equal(bus.subscriberCount, 200);
    await Promise.all(subs.map((s) => s.it.next())); // each is mid-replay, holding its journal fd
    if (round === 0) t.ok(fds() >= before + 200, 'each replay holds an fd');
    const waits = subs.map((s) => s.it.next());
    for (const s of subs) s.ac.abort();
    await Promise.all(waits);
    t.equal(bus.subscriberCount, 0);
  }
  t.equal(fds(), before, 'fds back to the baseline');
});
