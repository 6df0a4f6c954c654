/**
 * Stats: Docker's StatsJSON (compat, and the deprecated /libpod/containers/{name}/stats that Podman serves with
 * the same handler), libpod's multi-container reports, Podman 4.3.1's empty 200 for a stopped container (what
 * nomad-driver-podman reads as "exited"), streams that end with the container or the client, and the CLIs.
 */
import t from 'tap';
import { totalmem } from 'node:os';
import { startDaemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';
import { COMPAT, LIBPOD, docker, eventually, fdCount, openStream, podman, runContainer, waitExit } from './helpers.js';

const d = await startDaemon(t);
await loadBusybox(d.socket);

// Some CPU and memory to measure.
const busyId = await runContainer(d, 'busy', ['sh', '-c', 'i=0; while true; do i=$((i+1)); if [ $((i % 20000)) = 0 ]; then sleep 0.1; fi; done']);
await runContainer(d, 'gone', ['true']);
await waitExit(d, 'gone');

const STATS_KEYS = ['read', 'preread', 'pids_stats', 'blkio_stats', 'num_procs', 'storage_stats', 'cpu_stats', 'precpu_stats', 'memory_stats', 'name', 'Id', 'networks'];
const LIBPOD_KEYS = ['AvgCPU', 'ContainerID', 'Name', 'PerCPU', 'CPU', 'CPUNano', 'CPUSystemNano', 'SystemNano', 'MemUsage', 'MemLimit', 'MemPerc', 'NetInput', 'NetOutput', 'BlockInput', 'BlockOutput', 'PIDs', 'UpTime', 'Duration'];

t.test('one Docker stats object (stream=false)', async (t) => {
  const res = await d.request('GET', `${COMPAT}/containers/busy/stats?stream=false`);
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'application/json');
  t.ok(res.text.endsWith('}\n') && res.text.indexOf('\n') === res.text.length - 1, 'one line');
  const s = res.json();
  t.same(Object.keys(s), STATS_KEYS, "Podman's key order");
  t.equal(s.name, '/busy', 'Docker names start with a slash');
  t.equal(s.Id, busyId);
  t.equal(s.preread, '0001-01-01T00:00:00Z');
  t.match(s.read, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
  t.same(Object.keys(s.cpu_stats.cpu_usage), ['total_usage', 'percpu_usage', 'usage_in_kernelmode', 'usage_in_usermode']);
  t.ok(s.cpu_stats.cpu_usage.total_usage > 0);
  t.equal(s.cpu_stats.cpu_usage.percpu_usage.reduce((a: number, b: number) => a + b, 0), s.cpu_stats.cpu_usage.total_usage);
  t.equal(s.cpu_stats.cpu_usage.usage_in_kernelmode + s.cpu_stats.cpu_usage.usage_in_usermode, s.cpu_stats.cpu_usage.total_usage);
  t.equal(s.cpu_stats.online_cpus, s.cpu_stats.cpu_usage.percpu_usage.length);
  t.ok(s.cpu_stats.system_cpu_usage > s.cpu_stats.cpu_usage.total_usage);
  t.same(s.precpu_stats, { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, cpu: 0, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } });
  t.ok(s.pids_stats.current >= 1);
  t.ok(s.memory_stats.usage > 0);
  t.ok(s.memory_stats.max_usage >= s.memory_stats.usage);
  t.ok(s.memory_stats.limit > 0 && s.memory_stats.limit <= totalmem(), 'the limit is clamped to the host memory');
  t.type(s.memory_stats.stats.total_rss, 'number');
  t.same(Object.keys(s.blkio_stats), ['io_service_bytes_recursive', 'io_serviced_recursive', 'io_queue_recursive', 'io_service_time_recursive', 'io_wait_time_recursive', 'io_merged_recursive', 'io_time_recursive', 'sectors_recursive']);
  t.same(Object.keys(s.networks), ['network']);
  // Exact 64-bit figures (memory.stat's hierarchical limits are near 2^63).
  const limit = /"hierarchical_memory_limit":(\d+)/.exec(res.text)?.[1];
  if (limit !== undefined) t.equal(limit, String(BigInt(limit)), 'written without float rounding');

  // The deprecated libpod path is the same handler; Podman keeps the plain name there.
  const lp = (await d.request('GET', `${LIBPOD}/containers/busy/stats?stream=false`)).json();
  t.same(Object.keys(lp), STATS_KEYS);
  t.equal(lp.name, 'busy');
});

t.test('a memory limit is reported as the limit', async (t) => {
  await runContainer(d, 'capped', ['sleep', '300'], { spec: { resource_limits: { memory: { limit: 64 * 1024 * 1024 } } } });
  const docker = (await d.request('GET', `${COMPAT}/containers/capped/stats?stream=false`)).json();
  t.equal(docker.memory_stats.limit, 64 * 1024 * 1024);
  const libpod = (await d.request('GET', `${LIBPOD}/containers/stats?stream=false&containers=capped`)).json();
  t.equal(libpod.Stats[0].MemLimit, 64 * 1024 * 1024);
  t.ok(libpod.Stats[0].MemPerc > 0);
  await d.request('DELETE', `${LIBPOD}/containers/capped?force=true&timeout=0`);
});

t.test('a container that does not run: 200 and an empty body (Podman 4.3.1, which nomad relies on)', async (t) => {
  for (const path of [`${LIBPOD}/containers/gone/stats?stream=false`, `${COMPAT}/containers/gone/stats?stream=false`, `${COMPAT}/containers/gone/stats`]) {
    const res = await d.request('GET', path);
    t.equal(res.status, 200, path);
    t.equal(res.body.length, 0, path);
  }
  t.equal((await d.request('GET', `${COMPAT}/containers/nope/stats?stream=false`)).status, 404);
  const both = await d.request('GET', `${COMPAT}/containers/busy/stats?stream=true&one-shot=true`);
  t.equal(both.status, 400);
  t.equal(both.json().message, 'invalid argument');
  const oneShot = (await d.request('GET', `${COMPAT}/containers/busy/stats?stream=false&one-shot=true`)).json();
  t.equal(oneShot.precpu_stats.cpu_usage.total_usage, 0);
});

t.test('streamed: one object a second, precpu from the previous one, ends when the container stops', async (t) => {
  const id = await runContainer(d, 'short', ['sleep', '30']);
  const s = await openStream(d.socket, `${COMPAT}/containers/short/stats`);
  t.equal(s.status, 200);
  const objects: { read: string; preread: string; cpu_stats: unknown; precpu_stats: unknown }[] = [];
  let buffered = '';
  const started = Date.now();
  while (objects.length < 2) {
    const chunk = await s.next(5000);
    if (!chunk) break;
    buffered += chunk.toString('utf8');
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      objects.push(JSON.parse(buffered.slice(0, nl)));
      buffered = buffered.slice(nl + 1);
    }
  }
  t.equal(objects.length, 2);
  t.ok(Date.now() - started >= 900, 'about a second between objects');
  t.not(objects[0]!.preread, '0001-01-01T00:00:00Z', 'a stream starts from an earlier reading');
  t.equal(objects[1]!.preread, objects[0]!.read);
  t.same(objects[1]!.precpu_stats, objects[0]!.cpu_stats);
  const stopped = Date.now();
  await d.request('POST', `${LIBPOD}/containers/${id}/kill`);
  await s.rest(5000);
  t.ok(Date.now() - stopped < 4000, 'the stream ended with the container');
});

t.test('a client that hangs up leaves nothing behind', async (t) => {
  const pid = d.proc.pid!;
  (await openStream(d.socket, `${COMPAT}/containers/busy/stats`)).destroy();
  const before = await eventually(() => fdCount(pid), () => true);
  for (let i = 0; i < 5; i++) {
    const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(d.socket, `${COMPAT}/containers/busy/stats`)));
    for (const s of streams) s.destroy();
  }
  const after = await eventually(() => fdCount(pid), (n) => n <= before, 10_000);
  t.ok(after <= before, `fds before ${before}, after ${after}`);
});

t.test('libpod multi-container stats', async (t) => {
  const all = await d.request('GET', `${LIBPOD}/containers/stats?stream=false`);
  t.equal(all.status, 200);
  const report = all.json();
  t.same(Object.keys(report), ['Error', 'Stats']);
  t.equal(report.Error, null);
  const byName = new Map<string, Record<string, unknown>>(report.Stats.map((s: Record<string, unknown>) => [s.Name, s]));
  const busy = byName.get('busy')!;
  t.same(Object.keys(busy), LIBPOD_KEYS);
  t.ok((busy.CPUNano as number) > 0);
  t.equal(busy.UpTime, busy.CPUNano, "Podman's UpTime is the CPU time");
  t.ok((busy.PIDs as number) >= 1);
  t.ok((busy.MemPerc as number) > 0 && (busy.MemPerc as number) < 100);
  // SystemNano (ns since the epoch) is exact.
  const systemNano = new RegExp(`"ContainerID":"${busyId}".*?"SystemNano":(\\d+)`).exec(all.text)![1]!;
  t.equal(systemNano.length, 19);
  const gone = byName.get('gone')!;
  t.same({ ...gone, ContainerID: '' }, { AvgCPU: 0, ContainerID: '', Name: 'gone', PerCPU: null, CPU: 0, CPUNano: 0, CPUSystemNano: 0, SystemNano: 0, MemUsage: 0, MemLimit: 0, MemPerc: 0, NetInput: 0, NetOutput: 0, BlockInput: 0, BlockOutput: 0, PIDs: 0, UpTime: 0, Duration: 0 }, 'stopped: zeros');
  const ids = report.Stats.map((s: { ContainerID: string }) => s.ContainerID);
  t.same(ids, [...ids].sort(), 'ordered by id, as Podman lists all containers');

  const listed = (await d.request('GET', `${LIBPOD}/containers/stats?stream=false&containers=gone&containers=busy`)).json();
  t.same(listed.Stats.map((s: { Name: string }) => s.Name), ['gone', 'busy']);
  const missing = await d.request('GET', `${LIBPOD}/containers/stats?stream=false&containers=nope`);
  t.equal(missing.status, 404);
  t.equal(missing.json().cause, 'no such container');
  const interval = await d.request('GET', `${LIBPOD}/containers/stats?interval=0`);
  t.equal(interval.status, 500);
  t.equal(interval.json().message, 'invalid interval, must be a positive number greater zero');

  const s = await openStream(d.socket, `${LIBPOD}/containers/stats?containers=busy&interval=1`);
  let text = '';
  const started = Date.now();
  while (text.split('\n').length < 3) text += (await s.next(5000))?.toString('utf8') ?? '';
  s.destroy();
  const [first, second] = text.split('\n').slice(0, 2).map((l) => JSON.parse(l));
  t.ok(Date.now() - started >= 900);
  t.ok(second.Stats[0].CPUNano >= first.Stats[0].CPUNano);
  t.ok(second.Stats[0].CPU > 0, 'CPU since the previous report');
});

t.test('podman and docker CLIs', async (t) => {
  const ps = await podman(d, ['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'busy', 'gone']);
  t.equal(ps.code, 0, ps.stderr);
  t.match(ps.stdout, /^busy [1-9]\d*\ngone 0\n$/);
  const ds = await docker(d, ['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}} {{.MemUsage}}', 'busy']);
  t.equal(ds.code, 0, ds.stderr);
  t.match(ds.stdout, /^busy [1-9]\d* [\d.]+[KMG]iB \/ [\d.]+[KMG]iB\n$/);
});
