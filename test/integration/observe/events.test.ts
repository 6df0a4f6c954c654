/**
 * Events on both trees: the journal as a list (stream=false), live streams flushed per event, since/until
 * replay, until ending a stream, filters, Docker's names on the compat tree, errors, and the podman and docker
 * CLIs.
 */
import t from 'tap';
import { startDaemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';
import { COMPAT, LIBPOD, docker, openStream, podman, runContainer, waitExit } from './helpers.js';

const d = await startDaemon(t);
await loadBusybox(d.socket);

interface Ev {
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: string;
  time: number;
  timeNano: number;
}

const lines = (text: string): Ev[] => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Ev);
const q = (filters: Record<string, string[]>): string => encodeURIComponent(JSON.stringify(filters));

const before = Math.floor(Date.now() / 1000) - 1;
const id = await runContainer(d, 'ev1', ['sh', '-c', 'exit 3']);
t.equal(await waitExit(d, 'ev1'), 3);

t.test('stream=false lists the journal with Podman 4.3.1 shapes and key order', async (t) => {
  const res = await d.request('GET', `${LIBPOD}/events?stream=false&filters=${q({ container: ['ev1'] })}`);
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'application/json');
  const evs = lines(res.text);
  t.same(evs.map((e) => e.status), ['create', 'init', 'start', 'died']);
  const died = evs[3]!;
  t.same(Object.keys(died), ['status', 'id', 'from', 'Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
  t.equal(died.id, id);
  t.equal(died.from, 'localhost/busybox:latest');
  t.equal(died.Type, 'container');
  t.equal(died.Actor.Attributes.containerExitCode, '3');
  t.equal(died.Actor.Attributes.name, 'ev1');
  t.equal(died.scope, 'local');
  // timeNano is written as an exact 64-bit integer.
  const raw = res.text.split('\n')[3]!;
  const nano = /"timeNano":(\d+)/.exec(raw)![1]!;
  t.equal(nano.length, 19);
  t.equal(BigInt(nano) / 1_000_000_000n, BigInt(died.time));

  const starts = lines((await d.request('GET', `${LIBPOD}/events?stream=false&filters=${q({ event: ['start'], container: [id.slice(0, 12)] })}`)).text);
  t.same(starts.map((e) => e.status), ['start']);
});

t.test('the compat tree uses Docker names: die with exitCode', async (t) => {
  const evs = lines((await d.request('GET', `${COMPAT}/events?stream=false&filters=${q({ container: ['ev1'], event: ['die'] })}`)).text);
  t.equal(evs.length, 1);
  t.equal(evs[0]!.status, 'die');
  t.equal(evs[0]!.Action, 'die');
  t.equal(evs[0]!.Actor.Attributes.exitCode, '3');
  // Docker's legacy filter map form.
  const legacy = lines((await d.request('GET', `${COMPAT}/events?stream=false&filters=${encodeURIComponent('{"container":{"ev1":true},"type":{"container":true}}')}`)).text);
  t.equal(legacy.length, 4);
});

t.test('live stream: 200 first, each event as it happens, released on hang-up', async (t) => {
  const s = await openStream(d.socket, `${LIBPOD}/events?filters=${q({ container: ['ev2'] })}`);
  t.equal(s.status, 200);
  t.equal(s.headers['content-type'], 'application/json');
  await runContainer(d, 'ev2', ['sleep', '30']);
  const got: string[] = [];
  while (!got.includes('start')) {
    const chunk = await s.next(5000);
    if (!chunk) break;
    got.push(...lines(chunk.toString('utf8')).map((e) => e.status!));
  }
  t.same(got, ['create', 'init', 'start']);
  await d.request('POST', `${LIBPOD}/containers/ev2/kill`);
  const after: string[] = [];
  while (!after.includes('died')) {
    const chunk = await s.next(5000);
    if (!chunk) break;
    after.push(...lines(chunk.toString('utf8')).map((e) => e.status!));
  }
  t.same(after, ['kill', 'died']);
  s.destroy();
});

t.test('since replays, until ends the stream', async (t) => {
  const now = Date.now() / 1000;
  // A stream with both bounds in the past returns the history between them and ends.
  const past = await d.request('GET', `${LIBPOD}/events?since=${before}&until=${now.toFixed(3)}&filters=${q({ container: ['ev1'] })}`);
  t.same(lines(past.text).map((e) => e.status), ['create', 'init', 'start', 'died']);
  // An until in the near future: live events until then, then the end of the body.
  const started = Date.now();
  const s = await openStream(d.socket, `${LIBPOD}/events?since=${before}&until=${(Date.now() / 1000 + 1.5).toFixed(3)}&filters=${q({ event: ['died'] })}`);
  const body = await s.rest(5000);
  t.ok(Date.now() - started >= 1400, 'the stream stayed open until "until"');
  t.ok(lines(body.toString('utf8')).some((e) => e.Actor.Attributes.name === 'ev1'));
});

t.test('bad filters and times are refused before the stream starts', async (t) => {
  const bad = await d.request('GET', `${LIBPOD}/events?stream=false&filters=${q({ bogus: ['x'] })}`);
  t.equal(bad.status, 400);
  t.equal(bad.json().message, 'failed to parse event filters: bogus is an invalid filter');
  const since = await d.request('GET', `${COMPAT}/events?since=garbage`);
  t.equal(since.status, 400);
  t.same(since.json(), {
    cause: 'unable to interpret time value',
    message: 'failed to parse event filters: unable to convert since time of garbage: unable to interpret time value',
    response: 400,
  });
});

t.test('podman and docker CLIs', async (t) => {
  const listed = await podman(d, ['events', '--stream=false', '--filter', 'container=ev1', '--format', '{{.Status}}']);
  t.equal(listed.code, 0, listed.stderr);
  t.equal(listed.stdout, 'create\ninit\nstart\ndied\n');
  const since = await podman(d, ['events', '--since', '5m', '--until', '1s', '--filter', 'event=died', '--filter', 'container=ev1', '--format', '{{.Name}} {{.Status}}']);
  t.equal(since.stdout, 'ev1 died\n');
  const de = await docker(d, ['events', '--since', String(before), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', 'container=ev1', '--format', '{{.Action}} {{.Actor.Attributes.exitCode}}']);
  t.equal(de.code, 0, de.stderr);
  t.match(de.stdout, /^create <no value>\ninit <no value>\nstart <no value>\ndie 3\n$/);
});
