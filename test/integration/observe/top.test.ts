/**
 * top on both trees: psgo's descriptors read from /proc and shown as the container sees them (its PIDs, its
 * /etc/passwd, its terminal), ps(1) run in the container for anything else (Docker's default `-ef`), streams,
 * errors, and the podman and docker CLIs.
 */
import t from 'tap';
import { startDaemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';
import { COMPAT, LIBPOD, docker, openStream, podman, runContainer, waitExit } from './helpers.js';

const d = await startDaemon(t);
await loadBusybox(d.socket);

// The container's own passwd names uid 0 "admin" (the host says "root"): names must come from the container.
await runContainer(d, 'web', ['sh', '-c', 'echo "admin:x:0:0::/:/bin/sh" > /etc/passwd; echo "staff:x:0:" > /etc/group; sleep 300 & sleep 300; echo done']);
await runContainer(d, 'term', ['sleep', '300'], { terminal: true });
await runContainer(d, 'gone', ['true']);
await waitExit(d, 'gone');

interface Top {
  Processes: string[][] | null;
  Titles: string[];
}

async function top(path: string): Promise<Top> {
  // The shell writes /etc/passwd just after it starts.
  for (let i = 0; ; i++) {
    const res = await d.request('GET', path);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
    const body = res.json<Top>();
    if (i > 50 || JSON.stringify(body).includes('admin') || !path.includes('/web/')) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('libpod default: psgo descriptors as the container sees them', async (t) => {
  const body = await top(`${LIBPOD}/containers/web/top`);
  t.same(body.Titles, ['USER', 'PID', 'PPID', '%CPU', 'ELAPSED', 'TTY', 'TIME', 'COMMAND']);
  const rows = body.Processes!;
  t.equal(rows.length, 3);
  t.same(rows.map((r) => r[1]), ['1', rows[1]![1], rows[2]![1]]);
  t.same(rows[0]!.slice(0, 3), ['admin', '1', '0'], 'user from the container, PID 1, parent outside is 0');
  t.same(rows.slice(1).map((r) => [r[0], r[2], r[7]]), [['admin', '1', 'sleep 300'], ['admin', '1', 'sleep 300']]);
  for (const row of rows) {
    t.match(row[3], /^\d+\.\d{3}$/);
    t.match(row[4], /^(\d+h)?(\d+m)?\d+(\.\d+)?s$|^\d+(\.\d+)?(ms|µs|ns)$/, 'Go duration');
    t.equal(row[5], '?');
    t.match(row[6], /^\d+s$/);
  }
  t.match(rows[0]![7], /^sh -c echo "admin:x:0:0::\/:\/bin\/sh" > \/etc\/passwd; /);
});

t.test('descriptors: comma lists, AIX codes, host ones, terminals', async (t) => {
  const body = await top(`${LIBPOD}/containers/web/top?ps_args=pid,comm,%25U,group,hpid,huser,nice,state,vsz,rss,capeff,stime`);
  t.same(body.Titles, ['PID', 'COMMAND', 'USER', 'GROUP', 'HPID', 'HUSER', 'NI', 'STATE', 'VSZ', 'RSS', 'EFFECTIVE CAPS', 'STIME']);
  const init = body.Processes![0]!;
  t.same(init.slice(0, 4), ['1', 'sh', 'admin', 'staff']);
  const inspect = (await d.request('GET', `${LIBPOD}/containers/web/json`)).json();
  t.equal(init[4], String(inspect.State.Pid), 'the host PID');
  t.equal(init[5], 'root', 'the host user');
  t.equal(init[6], '0');
  t.match(init[7], /^[RS]$/);
  t.match(init[8], /^\d+$/);
  t.match(init[9], /^\d+$/);
  t.match(init[10], /(^|,)CHOWN(,|$)/);
  t.match(init[11], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);

  const term = await top(`${LIBPOD}/containers/term/top?ps_args=pid,tty,args`);
  t.same(term.Processes, [['1', 'pts/0', 'sleep 300']]);
});

t.test('other ps arguments run ps(1) in the container', async (t) => {
  const body = await top(`${LIBPOD}/containers/web/top?ps_args=-o%20pid,args`);
  // busybox ps output is not tab-separated: Podman 4.3.1 keeps each line as one cell.
  t.same(body.Titles, ['PID   COMMAND']);
  t.equal(body.Processes!.length, 3, 'the ps process itself is left out');
  t.match(body.Processes![0]![0], /^\s*1 sh -c /);
  const compat = await top(`${COMPAT}/containers/web/top`);
  t.same(compat.Titles, ['PID   USER     COMMAND'], "Docker's default is ps -ef");
  t.match(compat.Processes![0]![0], /^\s*1 admin\s+sh -c/);
  const failing = await d.request('GET', `${LIBPOD}/containers/web/top?ps_args=--bogus`);
  t.equal(failing.status, 500);
  t.match(failing.json().message, /^executing ps\(1\) in the container: runtime failed with exit status: 1 and output: /);
});

t.test('streams, delays and containers that do not run', async (t) => {
  const s = await openStream(d.socket, `${LIBPOD}/containers/web/top?stream=true&delay=1`);
  let text = '';
  const started = Date.now();
  while (text.split('\n').length < 3) text += (await s.next(5000))?.toString('utf8') ?? '';
  s.destroy();
  t.ok(Date.now() - started >= 900, 'a table a second');
  t.equal(text.split('\n').filter((l) => l.startsWith('{"Processes"')).length, 2);

  const delay = await d.request('GET', `${LIBPOD}/containers/web/top?delay=0`);
  t.equal(delay.status, 400);
  t.equal(delay.json().message, '"delay" parameter of value 0 < 1');
  const stopped = await d.request('GET', `${LIBPOD}/containers/gone/top`);
  t.equal(stopped.status, 500);
  t.equal(stopped.json().message, 'top can only be used on running containers');
  t.equal((await d.request('GET', `${COMPAT}/containers/gone/top`)).status, 409, 'Docker: 409 for a stopped container');
  t.equal((await d.request('GET', `${COMPAT}/containers/nope/top`)).status, 404);
});

t.test('podman and docker CLIs', async (t) => {
  const pt = await podman(d, ['top', 'web']);
  t.equal(pt.code, 0, pt.stderr);
  t.match(pt.stdout, /^USER\s+PID\s+PPID\s+%CPU\s+ELAPSED\s+TTY\s+TIME\s+COMMAND\nadmin\s+1\s+0\s/);
  const pd = await podman(d, ['top', 'web', 'pid', 'args']);
  t.match(pd.stdout, /^PID\s+COMMAND\n1\s+sh -c/);
  const dt = await docker(d, ['top', 'web']);
  t.equal(dt.code, 0, dt.stderr);
  t.match(dt.stdout, /^PID\s+USER\s+COMMAND\n\s*1 admin\s+sh -c/);
  const failed = await podman(d, ['top', 'gone']);
  t.not(failed.code, 0);
  t.match(failed.stderr, /top can only be used on running containers/);
});
