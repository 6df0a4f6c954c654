/**
 * Container resource figures read from the kernel (cgroup v1 or v2, /proc/<pid>/net/dev, /proc/stat), and the
 * two shapes the API reports them in: libpod's `define.ContainerStats` (GET /libpod/containers/stats) and
 * Docker's `StatsJSON` (GET /containers/{name}/stats, also served under /libpod as Podman 4.3.1 does).
 *
 * The cgroup of a container is found through its init process (/proc/<pid>/cgroup), so the figures come from
 * wherever the runtime really put it, whatever the cgroup parent was.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { Container } from './types.js';
import { formatRFC3339Nano, parseRFC3339Nano } from './logs.js';
import { nowNanos } from './time.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** /proc/stat and cpuacct.stat count in USER_HZ, which the kernel fixes at 100 for user space. */
const USER_HZ = 100;
const NS_PER_TICK = 1_000_000_000 / USER_HZ;
const ZERO_TIME = '0001-01-01T00:00:00Z';

// ---------------------------------------------------------------------------------------------
// Raw figures

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface NetFigures {
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** One reading of a running container. */
export interface StatsSample {
  /** When it was taken, ns since the epoch. */
  read: bigint;
  /** CPU time of the cgroup, ns: total, in kernel mode, and per CPU (v1 only; null on v2). */
  cpuTotal: number;
  cpuKernel: number;
  perCpu: number[] | null;
  throttling: { periods: number; throttledPeriods: number; throttledTime: number };
  /** Busy + idle time of the whole host since boot, ns (Docker's system_cpu_usage). */
  systemCpu: number;
  onlineCpus: number;
  memUsage: number;
  /** 0 when the kernel does not track it (cgroup v2 before 5.19). */
  memMaxUsage: number;
  /** The cgroup's limit clamped to the host's memory, as Podman reports it. */
  memLimit: number;
  memStat: Record<string, number | bigint> | null;
  pids: number;
  blkio: BlkioEntry[];
  /** Interfaces other than loopback, summed; null when the container shares the host's network. */
  net: NetFigures | null;
}

/** memory.stat: counters as numbers, or exact bigints past 2^53 (hierarchical limits are near 2^63). */
function memoryStat(text: string): Record<string, number | bigint> {
  const out: Record<string, number | bigint> = {};
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (!key || value === undefined || !/^\d+$/.test(value)) continue;
    const n = Number(value);
    out[key] = Number.isSafeInteger(n) ? n : BigInt(value);
  }
  return out;
}

/** Reads a whole small kernel file; undefined when it does not exist. */
async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'EINVAL') return undefined;
    throw err;
  }
}

/** An unsigned kernel number; "max" and out-of-range values become Infinity. */
function kernelNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === 'max') return Infinity;
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n > Number.MAX_SAFE_INTEGER ? Infinity : n;
}

/** `key value` lines (memory.stat, cpu.stat, cpuacct.stat). */
function flatKeyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) out[key] = Number(value);
  }
  return out;
}

let unifiedCache: boolean | undefined;

/** True on a pure cgroup v2 host (the hybrid layout with a v2 side hierarchy counts as v1). */
export function isCgroupV2(): boolean {
  unifiedCache ??= existsSync(join(CGROUP_ROOT, 'cgroup.controllers'));
  return unifiedCache;
}

/** Where a process's cgroups are: controller name → directory (v1), or the single v2 directory under ''. */
export async function cgroupDirsOf(pid: number): Promise<Map<string, string> | undefined> {
  const text = await readText(`/proc/${pid}/cgroup`);
  if (text === undefined) return undefined;
  const dirs = new Map<string, string>();
  const v2 = isCgroupV2();
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (v2) {
      if (controllers === '') dirs.set('', join(CGROUP_ROOT, path));
      continue;
    }
    for (const name of controllers.split(',')) {
      if (name !== '' && !name.startsWith('name=')) dirs.set(name, join(CGROUP_ROOT, name, path));
    }
  }
  return dirs;
}

/** The `cgroup.procs` file listing a container's processes, or undefined when its cgroup is gone. */
export async function cgroupProcsFile(pid: number): Promise<string | undefined> {
  const dirs = await cgroupDirsOf(pid);
  if (!dirs) return undefined;
  const dir = isCgroupV2() ? dirs.get('') : (dirs.get('pids') ?? dirs.get('memory') ?? dirs.get('cpu'));
  return dir === undefined ? undefined : join(dir, 'cgroup.procs');
}

function parseBlkioV1(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 3) continue;
    const [dev, op, value] = parts as [string, string, string];
    const [major, minor] = dev.split(':');
    if (major === undefined || minor === undefined || !/^\d+$/.test(value)) continue;
    out.push({ major: Number(major), minor: Number(minor), op, value: Number(value) });
  }
  return out;
}

function parseIoStatV2(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [dev, ...pairs] = line.trim().split(/\s+/);
    const [major, minor] = (dev ?? '').split(':');
    if (major === undefined || minor === undefined) continue;
    for (const pair of pairs) {
      const [key, value] = pair.split('=');
      // The names cgroup v1 (and Docker's clients) use.
      const op = key === 'rbytes' ? 'read' : key === 'wbytes' ? 'write' : undefined;
      if (op && value !== undefined && /^\d+$/.test(value)) out.push({ major: Number(major), minor: Number(minor), op, value: Number(value) });
    }
  }
  return out;
}

/** Busy + idle time of every CPU since boot (first line of /proc/stat), in ns, and the number of CPUs. */
async function hostCpu(): Promise<{ total: number; cpus: number }> {
  const text = (await readText('/proc/stat')) ?? '';
  let total = 0;
  let cpus = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu ')) {
      // user nice system idle iowait irq softirq steal (guest time is already counted in user).
      const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
      total = fields.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) * NS_PER_TICK;
    } else if (/^cpu\d+ /.test(line)) {
      cpus++;
    }
  }
  return { total, cpus };
}

/** Interfaces of the container's network namespace, loopback excepted, summed. */
async function netFigures(pid: number): Promise<NetFigures> {
  const text = (await readText(`/proc/${pid}/net/dev`)) ?? '';
  const sum: NetFigures = { rxBytes: 0, rxPackets: 0, rxErrors: 0, rxDropped: 0, txBytes: 0, txPackets: 0, txErrors: 0, txDropped: 0 };
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    if (line.slice(0, colon).trim() === 'lo') continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 16) continue;
    sum.rxBytes += f[0]!;
    sum.rxPackets += f[1]!;
    sum.rxErrors += f[2]!;
    sum.rxDropped += f[3]!;
    sum.txBytes += f[8]!;
    sum.txPackets += f[9]!;
    sum.txErrors += f[10]!;
    sum.txDropped += f[11]!;
  }
  return sum;
}

function sharesHostNetwork(c: Container): boolean {
  return c.config.spec.netns?.nsmode === 'host';
}

/**
 * Reads a running container's figures. Undefined when it is not running (or stopped while being read: its
 * cgroup vanished), which callers treat as the end of a stream.
 */
export async function sampleContainer(c: Container): Promise<StatsSample | undefined> {
  if ((c.state.status !== 'running' && c.state.status !== 'paused') || c.state.pid <= 0) return undefined;
  const dirs = await cgroupDirsOf(c.state.pid);
  if (!dirs) return undefined;
  try {
    const [figures, host, net] = await Promise.all([
      isCgroupV2() ? readV2(dirs.get('')) : readV1(dirs),
      hostCpu(),
      sharesHostNetwork(c) ? Promise.resolve(null) : netFigures(c.state.pid),
    ]);
    if (!figures) return undefined;
    const limit = Math.min(figures.memLimit, totalmem());
    return { read: nowNanos(), ...figures, memLimit: limit, systemCpu: host.total, onlineCpus: figures.perCpu?.length || host.cpus, net };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw err;
  }
}

type CgroupFigures = Omit<StatsSample, 'read' | 'systemCpu' | 'onlineCpus' | 'net'>;

async function readV1(dirs: Map<string, string>): Promise<CgroupFigures | undefined> {
  const at = (controller: string, file: string): Promise<string | undefined> => {
    const dir = dirs.get(controller);
    return dir === undefined ? Promise.resolve(undefined) : readText(join(dir, file));
  };
  const [usage, usageSys, percpu, acctStat, cpuStat, memUsage, memMax, memLimit, memStat, pids, blkioRecursive, blkioThrottle] =
    await Promise.all([
      at('cpuacct', 'cpuacct.usage'),
      at('cpuacct', 'cpuacct.usage_sys'),
      at('cpuacct', 'cpuacct.usage_percpu'),
      at('cpuacct', 'cpuacct.stat'),
      at('cpu', 'cpu.stat'),
      at('memory', 'memory.usage_in_bytes'),
      at('memory', 'memory.max_usage_in_bytes'),
      at('memory', 'memory.limit_in_bytes'),
      at('memory', 'memory.stat'),
      at('pids', 'pids.current'),
      at('blkio', 'blkio.io_service_bytes_recursive'),
      at('blkio', 'blkio.throttle.io_service_bytes_recursive'),
    ]);
  // The cgroup is removed as soon as the container stops.
  if (usage === undefined && memUsage === undefined) return undefined;
  const ticks = flatKeyed(acctStat);
  const throttle = flatKeyed(cpuStat);
  const perCpuList = (percpu ?? '').trim().split(/\s+/).filter((s) => s !== '').map(Number);
  // The files are read one after the other while the container runs: the total is taken from the per-CPU
  // figures when there are some, so that it is their sum, as clients that add them up expect.
  const cpuTotal = perCpuList.length > 0 ? perCpuList.reduce((a, b) => a + b, 0) : (kernelNumber(usage) ?? 0);
  const cpuKernel = kernelNumber(usageSys) ?? (ticks['system'] ?? 0) * NS_PER_TICK;
  // Without a proportional-weight scheduler the first file is empty; the throttling one counts every device.
  let blkio = parseBlkioV1(blkioRecursive);
  if (blkio.length === 0) blkio = parseBlkioV1(blkioThrottle);
  return {
    cpuTotal,
    cpuKernel: Math.min(cpuKernel, cpuTotal),
    perCpu: perCpuList.length > 0 ? perCpuList : null,
    throttling: { periods: throttle['nr_periods'] ?? 0, throttledPeriods: throttle['nr_throttled'] ?? 0, throttledTime: throttle['throttled_time'] ?? 0 },
    memUsage: kernelNumber(memUsage) ?? 0,
    memMaxUsage: kernelNumber(memMax) ?? 0,
    memLimit: kernelNumber(memLimit) ?? Infinity,
    memStat: memStat === undefined ? null : memoryStat(memStat),
    pids: kernelNumber(pids) ?? 0,
    blkio,
  };
}

async function readV2(dir: string | undefined): Promise<CgroupFigures | undefined> {
  if (dir === undefined) return undefined;
  const at = (file: string): Promise<string | undefined> => readText(join(dir, file));
  const [cpuStat, memCurrent, memPeak, memMax, memStat, pids, io] = await Promise.all([
    at('cpu.stat'),
    at('memory.current'),
    at('memory.peak'),
    at('memory.max'),
    at('memory.stat'),
    at('pids.current'),
    at('io.stat'),
  ]);
  if (cpuStat === undefined && memCurrent === undefined) return undefined;
  const cpu = flatKeyed(cpuStat);
  const total = (cpu['usage_usec'] ?? 0) * 1000;
  return {
    cpuTotal: total,
    cpuKernel: Math.min((cpu['system_usec'] ?? 0) * 1000, total),
    perCpu: null,
    throttling: { periods: cpu['nr_periods'] ?? 0, throttledPeriods: cpu['nr_throttled'] ?? 0, throttledTime: (cpu['throttled_usec'] ?? 0) * 1000 },
    memUsage: kernelNumber(memCurrent) ?? 0,
    memMaxUsage: kernelNumber(memPeak) ?? 0,
    memLimit: kernelNumber(memMax) ?? Infinity,
    memStat: memStat === undefined ? null : memoryStat(memStat),
    pids: kernelNumber(pids) ?? 0,
    blkio: parseIoStatV2(io),
  };
}

// ---------------------------------------------------------------------------------------------
// libpod's define.ContainerStats

/** Podman's `define.ContainerStats`, field for field (SystemNano is a bigint: it exceeds 2^53). */
export interface LibpodContainerStats {
  AvgCPU: number;
  ContainerID: string;
  Name: string;
  PerCPU: number[] | null;
  CPU: number;
  CPUNano: number;
  CPUSystemNano: number;
  SystemNano: bigint;
  MemUsage: number;
  MemLimit: number;
  MemPerc: number;
  NetInput: number;
  NetOutput: number;
  BlockInput: number;
  BlockOutput: number;
  PIDs: number;
  /** Podman reports the cgroup's CPU time here (a time.Duration in ns), and again in Duration. */
  UpTime: number;
  Duration: number;
}

function cpuPercent(cpuNow: number, cpuBefore: number, now: bigint, before: bigint): number {
  const cpuDelta = cpuNow - cpuBefore;
  const wallDelta = Number(now - before);
  return wallDelta > 0 && cpuDelta > 0 ? (cpuDelta / wallDelta) * 100 : 0;
}

function startedNanos(c: Container): bigint {
  return parseRFC3339Nano(c.state.startedAt) ?? 0n;
}

/**
 * libpod's figures for a container: all zero but the id and name when it does not run (`sample` undefined);
 * CPU is the share of one CPU since `previous` (or since the start), AvgCPU the share since the start.
 */
export function libpodStats(c: Container, sample: StatsSample | undefined, previous?: LibpodContainerStats): LibpodContainerStats {
  const base: LibpodContainerStats = {
    AvgCPU: 0,
    ContainerID: c.id,
    Name: c.name,
    PerCPU: null,
    CPU: 0,
    CPUNano: 0,
    CPUSystemNano: 0,
    SystemNano: 0n,
    MemUsage: 0,
    MemLimit: 0,
    MemPerc: 0,
    NetInput: 0,
    NetOutput: 0,
    BlockInput: 0,
    BlockOutput: 0,
    PIDs: 0,
    UpTime: 0,
    Duration: 0,
  };
  if (!sample) return base;
  const started = startedNanos(c);
  // Less CPU time than last time: the container was restarted into a new cgroup.
  const prev = previous && previous.SystemNano > 0n && previous.CPUNano <= sample.cpuTotal ? previous : undefined;
  let blockIn = 0;
  let blockOut = 0;
  for (const e of sample.blkio) {
    const op = e.op.toLowerCase();
    if (op === 'read') blockIn += e.value;
    else if (op === 'write') blockOut += e.value;
  }
  return {
    ...base,
    AvgCPU: cpuPercent(sample.cpuTotal, 0, sample.read, started),
    PerCPU: sample.perCpu,
    CPU: cpuPercent(sample.cpuTotal, prev?.CPUNano ?? 0, sample.read, prev?.SystemNano ?? started),
    CPUNano: sample.cpuTotal,
    CPUSystemNano: sample.cpuKernel,
    SystemNano: sample.read,
    MemUsage: sample.memUsage,
    MemLimit: sample.memLimit,
    MemPerc: sample.memLimit > 0 ? (sample.memUsage / sample.memLimit) * 100 : 0,
    NetInput: sample.net?.rxBytes ?? 0,
    NetOutput: sample.net?.txBytes ?? 0,
    BlockInput: blockIn,
    BlockOutput: blockOut,
    PIDs: sample.pids,
    UpTime: sample.cpuTotal,
    Duration: sample.cpuTotal,
  };
}

// ---------------------------------------------------------------------------------------------
// Docker's StatsJSON

export interface DockerCpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  /** Podman's addition: libpod's CPU percentage. */
  cpu: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

/** Docker's types.StatsJSON as Podman 4.3.1 fills it, key order included. */
export interface DockerStats {
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: {
    io_service_bytes_recursive: { major: number; minor: number; op: string; value: number }[];
    io_serviced_recursive: null;
    io_queue_recursive: null;
    io_service_time_recursive: null;
    io_wait_time_recursive: null;
    io_merged_recursive: null;
    io_time_recursive: null;
    sectors_recursive: null;
  };
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: DockerCpuStats;
  precpu_stats: DockerCpuStats;
  memory_stats: { usage?: number; max_usage?: number; stats?: Record<string, number | bigint>; limit?: number };
  name: string;
  Id: string;
  networks: Record<string, Record<string, number>>;
}

/** Precpu_stats before any reading (stream=false, one-shot): zeros, no system usage, as Podman sends. */
export const EMPTY_DOCKER_CPU: DockerCpuStats = {
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  cpu: 0,
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
};

/** The cpu_stats block of a reading; `percent` is libpod's CPU figure for it. */
export function dockerCpuStats(sample: StatsSample, percent: number): DockerCpuStats {
  const total = sample.cpuTotal;
  // Docker's field order: total, percpu (left out when unknown), kernel, user.
  const usage: DockerCpuStats['cpu_usage'] = sample.perCpu
    ? { total_usage: total, percpu_usage: sample.perCpu, usage_in_kernelmode: sample.cpuKernel, usage_in_usermode: total - sample.cpuKernel }
    : { total_usage: total, usage_in_kernelmode: sample.cpuKernel, usage_in_usermode: total - sample.cpuKernel };
  return {
    cpu_usage: usage,
    system_cpu_usage: sample.systemCpu,
    online_cpus: sample.onlineCpus,
    cpu: percent,
    throttling_data: { periods: sample.throttling.periods, throttled_periods: sample.throttling.throttledPeriods, throttled_time: sample.throttling.throttledTime },
  };
}

/**
 * One Docker stats object. `pre` is the previous cpu_stats (EMPTY_DOCKER_CPU for the first of a one-shot
 * answer) and `preRead` when it was taken (undefined: the zero time).
 */
export function dockerStats(c: Container, sample: StatsSample, cpu: DockerCpuStats, pre: DockerCpuStats, preRead: bigint | undefined): DockerStats {
  const memory: DockerStats['memory_stats'] = {};
  // omitempty, as Go's encoder leaves zero values out.
  if (sample.memUsage) memory.usage = sample.memUsage;
  if (sample.memMaxUsage) memory.max_usage = sample.memMaxUsage;
  if (sample.memStat && Object.keys(sample.memStat).length > 0) memory.stats = sortedKeys(sample.memStat);
  if (sample.memLimit) memory.limit = sample.memLimit;
  const net = sample.net ?? { rxBytes: 0, rxPackets: 0, rxErrors: 0, rxDropped: 0, txBytes: 0, txPackets: 0, txErrors: 0, txDropped: 0 };
  return {
    read: formatRFC3339Nano(sample.read),
    preread: preRead === undefined ? ZERO_TIME : formatRFC3339Nano(preRead),
    pids_stats: sample.pids ? { current: sample.pids } : {},
    blkio_stats: {
      io_service_bytes_recursive: sample.blkio.map((e) => ({ major: e.major, minor: e.minor, op: e.op, value: e.value })),
      io_serviced_recursive: null,
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu,
    precpu_stats: pre,
    memory_stats: memory,
    name: c.name,
    Id: c.id,
    // Podman names the entry after the endpoint id, "network" when there is none (always, here).
    networks: {
      network: {
        rx_bytes: net.rxBytes,
        rx_packets: net.rxPackets,
        rx_errors: net.rxErrors,
        rx_dropped: net.rxDropped,
        tx_bytes: net.txBytes,
        tx_packets: net.txPackets,
        tx_errors: net.txErrors,
        tx_dropped: net.txDropped,
      },
    },
  };
}

function sortedKeys<T>(map: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(map).sort()) out[key] = map[key]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Go-compatible JSON

const GO_ESCAPES = /[<>&\u2028\u2029]/g;
const BIGINT_MARK = '\u0000bigint:';

/**
 * JSON as Go's json.Encoder writes it (SetEscapeHTML: <, > and & as \u escapes; bigints as exact integers),
 * newline included. Key order is the objects' own.
 */
export function goJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${BIGINT_MARK}${v.toString()}` : v));
  return `${text
    .replace(/"\\u0000bigint:(-?\d+)"/g, '$1')
    .replace(GO_ESCAPES, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Streams

/** What the streams need of the container manager. */
export interface StatsDeps {
  tryLookup(nameOrId: string): Container | undefined;
  list(): Container[];
  waitFor(id: string, done: (c: Container | undefined) => boolean, signal?: AbortSignal): Promise<Container | undefined>;
}

const isActive = (c: Container | undefined): c is Container => c?.state.status === 'running' || c?.state.status === 'paused';

/**
 * Waits `ms`, or less when `signal` aborts or (with `id`) the container stops running. Resolves true when the
 * whole time passed. Leaves no timer or listener behind.
 */
async function pause(deps: StatsDeps, ms: number, signal: AbortSignal, id?: string): Promise<boolean> {
  if (signal.aborted) return false;
  const done = new AbortController();
  const onAbort = (): void => done.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(true), ms);
      done.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve(false);
      }, { once: true });
      if (id !== undefined) {
        deps.waitFor(id, (c) => !isActive(c), done.signal).then(
          () => done.abort(),
          () => undefined,
        );
      }
    });
  } finally {
    done.abort();
    signal.removeEventListener('abort', onAbort);
  }
}

export interface DockerStatsOptions {
  stream: boolean;
  intervalMs: number;
  signal: AbortSignal;
  /** Name as Docker reports it ("/name"); the container's name by default. */
  name?: string;
}

/**
 * Docker stats objects for one container, as Podman's compat handler produces them: nothing when the container
 * does not run; with `stream`, one object per interval until it stops or the signal aborts, each carrying the
 * previous reading as precpu_stats.
 */
export async function* dockerStatsStream(deps: StatsDeps, id: string, opts: DockerStatsOptions): AsyncGenerator<DockerStats, void, undefined> {
  let pre = EMPTY_DOCKER_CPU;
  let preRead: bigint | undefined;
  let previous: LibpodContainerStats | undefined;
  const current = (): Container | undefined => deps.tryLookup(id);
  if (opts.stream) {
    const c = current();
    const first = c ? await sampleContainer(c) : undefined;
    if (!c || !first) return;
    previous = libpodStats(c, first);
    pre = dockerCpuStats(first, previous.CPU);
    preRead = first.read;
  }
  for (;;) {
    if (opts.signal.aborted) return;
    const c = current();
    const sample = c ? await sampleContainer(c) : undefined;
    if (!c || !sample) return;
    const libpod = libpodStats(c, sample, previous);
    const cpu = dockerCpuStats(sample, libpod.CPU);
    const shaped = dockerStats(c, sample, cpu, pre, preRead);
    if (opts.name !== undefined) shaped.name = opts.name;
    yield shaped;
    if (!opts.stream) return;
    pre = cpu;
    preRead = sample.read;
    previous = libpod;
    if (!(await pause(deps, opts.intervalMs, opts.signal, c.id))) return;
  }
}

/** One line of GET /libpod/containers/stats. `Error` is null or Podman's message. */
export interface LibpodStatsReport {
  Error: { message: string } | null;
  Stats: LibpodContainerStats[] | null;
}

export interface LibpodStatsOptions {
  stream: boolean;
  intervalSec: number;
  signal: AbortSignal;
}

/**
 * Resolves the containers a libpod stats request names (all of them, ordered by id, when none), throwing
 * Podman's "no such container" error for an unknown one.
 */
export function statsTargets(deps: StatsDeps, names: readonly string[]): Container[] {
  if (names.length === 0) return [...deps.list()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return names.map((name) => {
    const c = deps.tryLookup(name);
    if (!c) throw new StatsTargetError(name);
    return c;
  });
}

export class StatsTargetError extends Error {
  constructor(readonly nameOrId: string) {
    super(`no container with name or ID "${nameOrId}" found: no such container`);
  }
}

/**
 * Podman's ContainerStats loop: one report per interval with every named container (stopped ones as zeros),
 * until the client goes away; without `stream`, one report. A container named in the request that was removed
 * meanwhile ends the stream with an error report.
 */
export async function* libpodStatsStream(deps: StatsDeps, names: readonly string[], opts: LibpodStatsOptions): AsyncGenerator<LibpodStatsReport, void, undefined> {
  const previous = new Map<string, LibpodContainerStats>();
  for (;;) {
    if (opts.signal.aborted) return;
    let targets: Container[];
    try {
      targets = statsTargets(deps, names);
    } catch (err) {
      if (!(err instanceof StatsTargetError)) throw err;
      yield { Error: { message: `unable to get list of containers: unable to look up container ${err.nameOrId}: ${err.message}` }, Stats: null };
      return;
    }
    const stats: LibpodContainerStats[] = [];
    for (const c of targets) {
      const sample = await sampleContainer(c);
      const s = libpodStats(c, sample, previous.get(c.id));
      if (sample) previous.set(c.id, s);
      else previous.delete(c.id);
      stats.push(s);
    }
    yield { Error: null, Stats: stats };
    if (!opts.stream) return;
    if (!(await pause(deps, opts.intervalSec * 1000, opts.signal))) return;
  }
}
