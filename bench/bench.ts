/**
 * podserve's side-by-side benchmark against Podman's API service (issue 8).
 *
 *   npm run bench [-- --ref unix:///path/podman.sock] [--quick] [--only GROUPS] [--out FILE] [--profile DIR]
 *                 [--node-client] [--update-readme]
 *   npm run bench -- --baseline OTHER/dist/src/launch.cjs [--podserve dist/src/launch.cjs]   (before/after of a change)
 *
 * Starts podserve from this checkout on a temporary socket and state dirs and, without --ref, a
 * `podman system service` the same way; loads the busybox fixture into both through the API; runs every
 * measurement interleaved (podserve, podman, podman, podserve, …: the machines are shared and noisy, absolute
 * times drift while ratios hold); prints a Markdown table and writes JSON (bench/results/latest.json).
 * See bench/README.md for what each figure means.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  activationToFirstByte,
  nodeFloorTarget,
  podmanTarget,
  podserveTarget,
  prepare,
  removeColdStartDir,
  spawnToPing,
  startIdle,
  type ColdStartTarget,
} from './coldstart.js';
import {
  REPO_ROOT,
  ensureFixtures,
  loadImage,
  readCpuMs,
  readMemory,
  removeContainers,
  settleProcesses,
  startPodman,
  startPodserve,
  useReference,
  type Daemon,
  type MemoryReading,
} from './daemons.js';
import {
  V,
  attachStdin,
  attachStdout,
  execRoundTrip,
  lifecycleParallel,
  lifecycleSequential,
  listLength,
  loadRun,
  prepareLog,
  readLog,
  startSleepers,
  Tracked,
  LOG_LINE,
  MiB,
} from './measures.js';
import { markdownTable, summarize, type Metric, type MetricSpec, type MetricSummary } from './stats.js';

const GROUPS = ['lifecycle', 'exec', 'attach', 'logs', 'api', 'coldstart', 'memory'] as const;
type Group = (typeof GROUPS)[number];

interface Options {
  ref?: string;
  /** podserve build to measure (dist/src/launch.cjs); default this checkout's. */
  podserveCli?: string;
  /** Measure against another podserve build instead of Podman (before/after figures of a change). */
  baselineCli?: string;
  quick: boolean;
  only: Set<Group>;
  out: string;
  profileDir?: string;
  updateReadme: boolean;
  /** API load through Node's http client instead of the lean raw client. */
  nodeClient: boolean;
}

interface Plan {
  reps: number;
  lifecycleSequential: number;
  parallelClients: number;
  parallelEach: number;
  execCount: number;
  stdoutMiB: number;
  stdinMiB: number;
  attachReps: number;
  logLines: number;
  logReps: number;
  apiMs: number;
  /** Untimed load before the samples of each endpoint: V8 needs a while to optimise a hot request path. */
  apiWarmMs: number;
  apiReps: number;
  listContainers: number;
  coldReps: number;
  /**
   * How long a daemon sits idle before its "idle" memory is read (after start, and after the cleanup), so that
   * work scheduled just after start-up (podserve compiles the remaining route schemas 1 s after serving) is in.
   * Neither runtime reliably gives memory back within a minute, so longer waits change little.
   */
  idleSettleMs: number;
}

const FULL: Plan = {
  reps: 5,
  lifecycleSequential: 8,
  parallelClients: 8,
  parallelEach: 3,
  execCount: 10,
  stdoutMiB: 512,
  stdinMiB: 256,
  attachReps: 3,
  logLines: 1_048_576,
  logReps: 3,
  apiMs: 3000,
  apiWarmMs: 2000,
  apiReps: 5,
  listContainers: 50,
  coldReps: 8,
  idleSettleMs: 10_000,
};

/** Under a minute: fewer repetitions and smaller transfers (figures are rougher, ratios still paired). */
const QUICK: Plan = {
  reps: 2,
  lifecycleSequential: 3,
  parallelClients: 8,
  parallelEach: 1,
  execCount: 3,
  stdoutMiB: 64,
  stdinMiB: 32,
  attachReps: 2,
  logLines: 32_768,
  logReps: 2,
  apiMs: 600,
  apiWarmMs: 1000,
  apiReps: 2,
  listContainers: 20,
  coldReps: 2,
  idleSettleMs: 3000,
};

const USAGE = `usage: npm run bench -- [--ref unix:///path | --baseline OTHER/dist/src/launch.cjs] [--podserve dist/src/launch.cjs] [--quick] [--only ${GROUPS.join(',')}] [--out FILE] [--profile DIR] [--node-client] [--update-readme]\n`;

function parseOptions(argv: string[]): Options {
  const opts: Options = { quick: false, only: new Set(GROUPS), out: '', updateReadme: false, nodeClient: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--ref':
        opts.ref = value();
        break;
      case '--podserve':
        opts.podserveCli = value();
        break;
      case '--baseline':
        opts.baselineCli = value();
        break;
      case '--quick':
        opts.quick = true;
        break;
      case '--only': {
        const names = value().split(',');
        for (const n of names) if (!(GROUPS as readonly string[]).includes(n)) throw new Error(`unknown group ${n}\n${USAGE}`);
        opts.only = new Set(names as Group[]);
        break;
      }
      case '--out':
        opts.out = value();
        break;
      case '--profile':
        opts.profileDir = value();
        break;
      case '--node-client':
        opts.nodeClient = true;
        break;
      case '--update-readme':
        opts.updateReadme = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
  }
  opts.out ||= join(REPO_ROOT, 'bench/results', opts.quick ? 'quick.json' : 'latest.json');
  return opts;
}

function log(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

/** Collects samples; a failing measurement is recorded as not measured, never as a number. */
class Results {
  readonly metrics = new Map<string, Metric>();
  readonly errors: { key: string; message: string }[] = [];

  metric(spec: MetricSpec): Metric {
    let m = this.metrics.get(spec.key);
    if (!m) {
      m = { ...spec, podserve: [], reference: [] };
      this.metrics.set(spec.key, m);
    }
    return m;
  }

  fail(key: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.errors.push({ key, message });
    log(`NOT MEASURED ${key}: ${message}`);
  }
}

export interface Pair {
  podserve: Daemon;
  reference: Daemon;
}

/**
 * Runs `sample` on both daemons `reps` times, alternating which goes first (A B, B A, …) so that drift and
 * after-effects (exit commands still running) fall on both equally. Between samples, the daemon's exit commands
 * are allowed to finish.
 */
async function interleaved(pair: Pair, reps: number, sample: (d: Daemon, which: 'podserve' | 'reference') => Promise<void>): Promise<void> {
  for (let i = 0; i < reps; i++) {
    const order: ('podserve' | 'reference')[] = i % 2 === 0 ? ['podserve', 'reference'] : ['reference', 'podserve'];
    for (const which of order) {
      await sample(pair[which], which);
      await settle(pair[which]);
    }
  }
}

async function settle(d: Daemon): Promise<void> {
  if (d.dir) await settleProcesses(`${d.dir}/root .*container cleanup`, 5000);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const plan = opts.quick ? QUICK : FULL;
  const results = new Results();
  ensureFixtures();
  const scratch = mkdtempSync('/tmp/pb-');
  const started = new Date();
  const loadBefore = loadavg();
  log(`scratch ${scratch}; ${opts.quick ? 'quick' : 'full'} run; load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')}`);

  const stoppers: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const stop of stoppers.reverse()) await stop().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
      rmSync(scratch, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      void stopAll().finally(() => process.exit(130));
    });
  }

  const memory: MemoryReadings = { podserve: {}, reference: {}, floor: {} };
  const memoryByPhase: { phase: string; podserve?: MemoryReading; reference?: MemoryReading }[] = [];
  try {
    const nodeArgs = opts.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`] : [];
    const psDir = join(scratch, 'ps');
    const refDir = join(scratch, 'ref');
    mkdirSync(psDir);
    mkdirSync(refDir);
    const [podserve, reference] = await Promise.all([
      startPodserve(psDir, { nodeArgs, cli: opts.podserveCli }),
      opts.ref ? useReference(opts.ref) : opts.baselineCli ? startPodserve(refDir, { cli: opts.baselineCli, name: 'baseline' }) : startPodman(refDir),
    ]);
    stoppers.push(podserve.stop, reference.stop);
    const pair: Pair = { podserve, reference };
    log(`podserve pid ${podserve.pid} on ${podserve.socket}; reference ${reference.name} pid ${reference.pid ?? '?'} on ${reference.socket}`);

    const floor = await startIdle(nodeFloorTarget(join(scratch, 'idle-floor')));
    await delay(1000);
    memory.podserve.started = readMemory(podserve.pid);
    memory.reference.started = readMemory(reference.pid);
    if (opts.only.has('memory')) {
      log(`memory: letting both daemons sit idle for ${plan.idleSettleMs / 1000} s`);
      await delay(plan.idleSettleMs);
    }
    memory.podserve.idle = readMemory(podserve.pid);
    memory.reference.idle = readMemory(reference.pid);
    memory.floor = { idle: readMemory(floor.pid) };
    await floor.stop();
    await Promise.all([loadImage(podserve), loadImage(reference)]);
    const tracked = { podserve: new Tracked(podserve), reference: new Tracked(reference) };
    stoppers.push(async () => {
      await Promise.all([removeContainers(podserve.api, tracked.podserve.ids), removeContainers(reference.api, tracked.reference.ids)]);
    });

    // Memory after each group (JSON only): where the peak comes from.
    const snapshot = (phase: string): void => {
      memoryByPhase.push({ phase, podserve: readMemory(podserve.pid), reference: readMemory(reference.pid) });
    };
    snapshot('image loaded');
    if (opts.only.has('lifecycle')) await lifecycle(pair, tracked, plan, results);
    snapshot('lifecycle');
    let sleepers: Record<'podserve' | 'reference', string[]> | undefined;
    if (opts.only.has('exec') || opts.only.has('api')) {
      log(`starting ${plan.listContainers} sleeping containers on each daemon`);
      try {
        const [a, b] = await Promise.all([startSleepers(tracked.podserve, plan.listContainers), startSleepers(tracked.reference, plan.listContainers)]);
        sleepers = { podserve: a, reference: b };
      } catch (err) {
        results.fail('sleepers', err);
      }
    }
    snapshot('sleepers started');
    if (opts.only.has('exec') && sleepers) await exec(pair, sleepers, plan, results);
    snapshot('exec');
    if (opts.only.has('api') && sleepers) await api(pair, sleepers, plan, results, opts.nodeClient ? 'node' : 'raw', scratch);
    snapshot('api');
    if (sleepers) {
      await removeContainers(podserve.api, sleepers.podserve);
      await removeContainers(reference.api, sleepers.reference);
      for (const id of sleepers.podserve) tracked.podserve.ids.delete(id);
      for (const id of sleepers.reference) tracked.reference.ids.delete(id);
    }
    if (opts.only.has('attach')) await attach(pair, tracked, plan, results);
    snapshot('attach');
    if (opts.only.has('logs')) await logs(pair, tracked, plan, results);
    snapshot('logs');

    memory.podserve.end = readMemory(podserve.pid);
    memory.reference.end = readMemory(reference.pid);
    await Promise.all([removeContainers(podserve.api, tracked.podserve.ids), removeContainers(reference.api, tracked.reference.ids)]);
    await Promise.all([settle(podserve), settle(reference), delay(opts.only.has('memory') ? plan.idleSettleMs : 0)]);
    memory.podserve.afterCleanup = readMemory(podserve.pid);
    memory.reference.afterCleanup = readMemory(reference.pid);
    if (opts.only.has('memory')) recordMemory(memory, results);

    await stopAll();
    stopping = undefined;
    stoppers.length = 0;
    if (opts.only.has('coldstart')) await coldStart(scratch, plan, results, opts);
  } finally {
    await stopAll();
  }

  const summaries = [...results.metrics.values()].map(summarize);
  const referenceName = opts.ref ? 'podman (--ref)' : opts.baselineCli ? 'baseline' : 'podman';
  const table = markdownTable(summaries, referenceName);
  process.stdout.write(`\n${table}\n`);
  if (results.errors.length > 0) {
    process.stdout.write(`\nNot measured:\n${results.errors.map((e) => `- ${e.key}: ${e.message}`).join('\n')}\n`);
  }
  const report = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    mode: opts.quick ? 'quick' : 'full',
    host: { node: process.version, kernel: release(), cpus: cpus().length, loadAverageBefore: loadBefore, loadAverageAfter: loadavg() },
    reference: opts.ref
      ? { given: opts.ref }
      : opts.baselineCli
        ? { baseline: opts.baselineCli }
        : { spawned: 'podman system service --time=0 (private --root/--runroot)' },
    podserve: opts.podserveCli ?? 'this checkout',
    network: 'netns {nsmode: "none"} for every container on both daemons (private network namespace, loopback only)',
    apiClient: opts.nodeClient ? "node:http Agent (keepAlive, 16 sockets)" : 'raw keep-alive HTTP/1.1 connections (bench/http.ts RawConnection)',
    plan,
    metrics: summaries,
    notMeasured: results.errors,
    memoryByPhase,
    table,
  };
  mkdirSync(join(opts.out, '..'), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${opts.out}`);
  if (opts.updateReadme) updateReadme(table, report.started, opts.quick, referenceName);
}

// ------------------------------------------------------------------------------------------ groups

type TrackedPair = Record<'podserve' | 'reference', Tracked>;

async function guarded(results: Results, key: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    results.fail(key, err);
  }
}

async function lifecycle(pair: Pair, tracked: TrackedPair, plan: Plan, results: Results): Promise<void> {
  log('lifecycle: sequential');
  const seq = results.metric({
    key: 'lifecycle.sequential',
    label: 'lifecycle `true`, sequential (create+start+wait+delete)',
    unit: 'ms/container',
    better: 'lower',
    target: { ratio: 0.5 },
    note: `${plan.lifecycleSequential} containers per sample`,
  });
  await guarded(results, seq.key, async () => {
    // One untimed round each: connections, caches and JIT warm for both.
    await Promise.all([lifecycleSequential(tracked.podserve, 1), lifecycleSequential(tracked.reference, 1)]);
    await interleaved(pair, plan.reps, async (_d, which) => {
      seq[which].push(await lifecycleSequential(tracked[which], plan.lifecycleSequential));
    });
  });
  log('lifecycle: parallel');
  const par = results.metric({
    key: 'lifecycle.parallel',
    label: `lifecycle \`true\`, ${plan.parallelClients} parallel clients`,
    unit: 'containers/s',
    better: 'higher',
    target: { ratio: 2 },
    note: `${plan.parallelClients} clients × ${plan.parallelEach} containers per sample`,
  });
  const parCpu = results.metric({
    key: 'lifecycle.parallel.cpu',
    label: `lifecycle \`true\`, ${plan.parallelClients} parallel clients, daemon CPU per container`,
    unit: 'ms',
    better: 'lower',
    note: 'user + system time of the daemon process only (not conmon, runc or exit commands) ÷ containers',
  });
  await guarded(results, par.key, () =>
    interleaved(pair, plan.reps, async (d, which) => {
      const before = readCpuMs(d.pid);
      par[which].push(await lifecycleParallel(tracked[which], plan.parallelClients, plan.parallelEach));
      const after = readCpuMs(d.pid);
      if (before !== undefined && after !== undefined) parCpu[which].push((after - before) / (plan.parallelClients * plan.parallelEach));
    }),
  );
}

async function exec(pair: Pair, sleepers: Record<'podserve' | 'reference', string[]>, plan: Plan, results: Results): Promise<void> {
  log('exec round trip');
  const m = results.metric({
    key: 'exec.roundtrip',
    label: 'exec round trip (create + start hijacked to EOF + inspect)',
    unit: 'ms',
    better: 'lower',
    target: { ratio: 0.5 },
    note: `echo in a running container, ${plan.execCount} sessions per sample`,
  });
  await guarded(results, m.key, async () => {
    await Promise.all([execRoundTrip(pair.podserve, sleepers.podserve[0]!, 1), execRoundTrip(pair.reference, sleepers.reference[0]!, 1)]);
    await interleaved(pair, plan.reps, async (d, which) => {
      m[which].push(await execRoundTrip(d, sleepers[which][0]!, plan.execCount));
    });
  });
}

async function api(
  pair: Pair,
  sleepers: Record<'podserve' | 'reference', string[]>,
  plan: Plan,
  results: Results,
  client: 'raw' | 'node',
  scratch: string,
): Promise<void> {
  const [nPs, nRef] = await Promise.all([listLength(pair.podserve, `${V}/containers/json`), listLength(pair.reference, `${V}/containers/json`)]);
  if (nPs !== nRef) log(`warning: the lists differ in length (podserve ${nPs}, reference ${nRef})`);
  const endpoints: { key: string; label: string; path: (which: 'podserve' | 'reference') => string; target: number }[] = [
    { key: 'api.ping', label: 'GET /_ping', path: () => '/_ping', target: 2 },
    { key: 'api.list', label: `GET /libpod/containers/json (${nRef} running)`, path: () => `${V}/containers/json`, target: 20 },
    { key: 'api.inspect', label: 'GET /libpod/containers/{id}/json', path: (which) => `${V}/containers/${sleepers[which][1] ?? sleepers[which][0]}/json`, target: 3 },
  ];
  for (const e of endpoints) {
    log(`API load: ${e.label}`);
    const rate = results.metric({ key: `${e.key}.rate`, label: `${e.label}, 16 connections`, unit: 'req/s', better: 'higher', target: { ratio: e.target }, note: `${plan.apiMs} ms per sample` });
    const p50 = results.metric({ key: `${e.key}.p50`, label: `${e.label}, p50 latency`, unit: 'ms', better: 'lower' });
    const p99 = results.metric({ key: `${e.key}.p99`, label: `${e.label}, p99 latency`, unit: 'ms', better: 'lower' });
    const cpu = results.metric({
      key: `${e.key}.cpu`,
      label: `${e.label}, daemon CPU per request`,
      unit: 'µs',
      better: 'lower',
      note: 'user + system time of the daemon process (all threads) over the run, divided by the requests answered',
    });
    await guarded(results, e.key, async () => {
      await Promise.all([
        loadRun(pair.podserve.socket, e.path('podserve'), plan.apiWarmMs, 16, client),
        loadRun(pair.reference.socket, e.path('reference'), plan.apiWarmMs, 16, client),
      ]);
      await interleaved(pair, plan.apiReps, async (d, which) => {
        const before = readCpuMs(d.pid);
        const r = await loadRun(d.socket, e.path(which), plan.apiMs, 16, client);
        const after = readCpuMs(d.pid);
        rate[which].push(r.rate);
        p50[which].push(r.p50);
        p99[which].push(r.p99);
        if (before !== undefined && after !== undefined) cpu[which].push(((after - before) * 1000) / r.requests);
      });
    });
  }
  await clientCeiling(pair, plan, results, client, scratch);
}

/**
 * What the load client can drive at all: a bare `node:http` server answering OK, under the same load as _ping,
 * paired with Podman's _ping. No daemon's _ping can be measured above this on this machine.
 */
async function clientCeiling(pair: Pair, plan: Plan, results: Results, client: 'raw' | 'node', scratch: string): Promise<void> {
  const m = results.metric({
    key: 'api.ceiling',
    label: 'load-client ceiling: bare `node:http` server, 16 connections (in the podserve column)',
    unit: 'req/s',
    better: 'higher',
    note: 'not podserve: the most this client reaches against a server that does nothing',
  });
  const floor = await startIdle(nodeFloorTarget(join(scratch, 'api-floor')));
  try {
    await guarded(results, m.key, async () => {
      const floorSocket = join(scratch, 'api-floor', 'idle.sock');
      await loadRun(floorSocket, '/_ping', plan.apiWarmMs, 16, client);
      for (let i = 0; i < plan.apiReps; i++) {
        m.podserve.push((await loadRun(floorSocket, '/_ping', plan.apiMs, 16, client)).rate);
        m.reference.push((await loadRun(pair.reference.socket, '/_ping', plan.apiMs, 16, client)).rate);
      }
    });
  } finally {
    await floor.stop();
  }
}

async function attach(pair: Pair, tracked: TrackedPair, plan: Plan, results: Results): Promise<void> {
  log(`attach stdout: ${plan.stdoutMiB} MiB`);
  const out = results.metric({
    key: 'attach.stdout',
    label: `attach stdout (dd ${plan.stdoutMiB} MiB, count checked)`,
    unit: 'MiB/s',
    better: 'higher',
    target: { ratio: 1.5 },
  });
  await guarded(results, out.key, () =>
    interleaved(pair, plan.attachReps, async (_d, which) => {
      out[which].push(await attachStdout(tracked[which], plan.stdoutMiB));
    }),
  );
  log(`attach stdin: ${plan.stdinMiB} MiB`);
  const inp = results.metric({
    key: 'attach.stdin',
    label: `attach stdin (${plan.stdinMiB} MiB into head -c | wc -c, count checked)`,
    unit: 'MiB/s',
    better: 'higher',
    target: { ratio: 1.5 },
  });
  await guarded(results, inp.key, () =>
    interleaved(pair, plan.attachReps, async (_d, which) => {
      inp[which].push(await attachStdin(tracked[which], plan.stdinMiB));
    }),
  );
}

async function logs(pair: Pair, tracked: TrackedPair, plan: Plan, results: Results): Promise<void> {
  const mib = (plan.logLines * LOG_LINE) / MiB;
  log(`logs: writing ${mib} MiB of 100-byte lines on each daemon`);
  const m = results.metric({
    key: 'logs.read',
    label: `logs, ${mib} MiB in ${LOG_LINE}-byte lines, read whole`,
    unit: 'MiB/s',
    better: 'higher',
    target: { ratio: 5 },
  });
  await guarded(results, m.key, async () => {
    const [idPs, idRef] = await Promise.all([prepareLog(tracked.podserve, plan.logLines), prepareLog(tracked.reference, plan.logLines)]);
    const ids = { podserve: idPs, reference: idRef };
    // One untimed read of a small log each: the first request of a route pays for its schema and cold code.
    const [smallPs, smallRef] = await Promise.all([prepareLog(tracked.podserve, 1000), prepareLog(tracked.reference, 1000)]);
    await Promise.all([readLog(pair.podserve, smallPs, 1000), readLog(pair.reference, smallRef, 1000)]);
    await interleaved(pair, plan.logReps, async (d, which) => {
      m[which].push(await readLog(d, ids[which], plan.logLines));
    });
  });
}

interface PhaseMemory {
  /** 1 s after the daemon answered its first _ping. */
  started?: MemoryReading;
  idle?: MemoryReading;
  end?: MemoryReading;
  afterCleanup?: MemoryReading;
}

/** Memory of podserve, the reference, and (idle only) the bare Node.js floor. */
type MemoryReadings = Record<'podserve' | 'reference' | 'floor', PhaseMemory>;

function recordMemory(memory: MemoryReadings, results: Results): void {
  const entries: { key: string; label: string; pick: (m: PhaseMemory) => number | undefined; target?: number }[] = [
    { key: 'memory.started', label: 'daemon RSS, 1 s after start', pick: (m) => m.started?.rssMiB },
    { key: 'memory.idle', label: 'daemon RSS, idle (sat idle after start)', pick: (m) => m.idle?.rssMiB, target: 0.8 },
    { key: 'memory.peak', label: 'daemon RSS, peak during the run (VmHWM)', pick: (m) => m.end?.peakMiB, target: 0.5 },
    { key: 'memory.after', label: 'daemon RSS, idle after removing every container', pick: (m) => m.afterCleanup?.rssMiB },
  ];
  for (const e of entries) {
    const a = e.pick(memory.podserve);
    const b = e.pick(memory.reference);
    if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) {
      results.fail(e.key, new Error('process memory not readable (reference pid unknown?)'));
      continue;
    }
    const m = results.metric({ key: e.key, label: e.label, unit: 'MiB', better: 'lower', target: e.target ? { ratio: e.target } : undefined });
    m.podserve.push(a);
    m.reference.push(b);
  }
  const floor = memory.floor.idle?.rssMiB;
  const refIdle = memory.reference.idle?.rssMiB;
  if (floor !== undefined && refIdle !== undefined) {
    const m = results.metric({
      key: 'memory.floor',
      label: 'Node.js floor: RSS of an idle bare `node:http` server (in the podserve column)',
      unit: 'MiB',
      better: 'lower',
      note: 'not podserve: the resident size of Node.js itself',
    });
    m.podserve.push(floor);
    m.reference.push(refIdle);
  }
}

async function coldStart(scratch: string, plan: Plan, results: Results, opts: Options): Promise<void> {
  const targets: Record<'podserve' | 'reference', ColdStartTarget> = {
    podserve: podserveTarget(join(scratch, 'cold-ps'), { cli: opts.podserveCli }),
    reference: opts.baselineCli
      ? podserveTarget(join(scratch, 'cold-ref'), { cli: opts.baselineCli, name: 'baseline' })
      : podmanTarget(join(scratch, 'cold-ref')),
  };
  const spawnMetric = results.metric({ key: 'cold.spawn', label: 'cold start, spawn → first answered _ping', unit: 'ms', better: 'lower', target: { ratio: 1 } });
  const actMetric = results.metric({
    key: 'cold.activation',
    label: 'cold start, socket activation: connect → first byte',
    unit: 'ms',
    better: 'lower',
    target: { ratio: 1 },
  });
  const pair = { podserve: targets.podserve, reference: targets.reference };
  try {
    log('cold start: preparing state dirs');
    await prepare(targets.podserve);
    await prepare(targets.reference);
    log('cold start: spawn → _ping');
    await guarded(results, spawnMetric.key, async () => {
      for (let i = 0; i < plan.coldReps; i++) {
        for (const which of i % 2 === 0 ? (['podserve', 'reference'] as const) : (['reference', 'podserve'] as const)) {
          spawnMetric[which].push(await retriedOnce(pair[which], spawnToPing));
        }
      }
    });
    log('cold start: the Node.js floor (bare node:http server)');
    const floorTarget = nodeFloorTarget(join(scratch, 'cold-floor'));
    const floor = results.metric({
      key: 'cold.floor',
      label: 'Node.js floor: bare `node:http` server, spawn → first answer (in the podserve column)',
      unit: 'ms',
      better: 'lower',
      note: 'not podserve: what any Node.js daemon pays before its first line of code runs',
    });
    await guarded(results, floor.key, async () => {
      for (let i = 0; i < plan.coldReps; i++) {
        floor.podserve.push(await retriedOnce(floorTarget, spawnToPing));
        floor.reference.push(await retriedOnce(pair.reference, spawnToPing));
      }
    });
    log('cold start: socket activation');
    await guarded(results, actMetric.key, async () => {
      for (let i = 0; i < plan.coldReps; i++) {
        for (const which of i % 2 === 0 ? (['podserve', 'reference'] as const) : (['reference', 'podserve'] as const)) {
          actMetric[which].push(await retriedOnce(pair[which], activationToFirstByte));
        }
      }
    });
  } catch (err) {
    results.fail('cold', err);
  } finally {
    removeColdStartDir(targets.podserve);
    removeColdStartDir(targets.reference);
  }
}

/** One cold-start sample; a failed attempt is logged and tried once more (a second failure fails the figure). */
async function retriedOnce(target: ColdStartTarget, sample: (t: ColdStartTarget) => Promise<number>): Promise<number> {
  try {
    return await sample(target);
  } catch (err) {
    log(`${target.name}: cold-start sample failed (${(err as Error).message}); trying once more`);
    try {
      return await sample(target);
    } catch (again) {
      throw new Error(`${target.name}: ${(again as Error).message}`);
    }
  }
}

function updateReadme(table: string, when: string, quick: boolean, referenceName: string): void {
  const path = join(REPO_ROOT, 'bench/README.md');
  const text = readFileSync(path, 'utf8');
  const begin = '<!-- latest-table:begin -->';
  const end = '<!-- latest-table:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${path} has no ${begin} … ${end} markers`);
  const block = `${begin}\nRun of ${when} (${quick ? 'quick' : 'full'} mode, reference: ${referenceName}):\n\n${table}\n${end}`;
  writeFileSync(path, text.slice(0, i) + block + text.slice(j + end.length));
  log(`updated the table in ${path}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

export type { MetricSummary };
