/**
 * `top`: the processes of a running container, as Podman 4.3.1 lists them.
 *
 * Podman first tries psgo, which understands ps(1)'s AIX format descriptors (`user,pid,ppid,pcpu,etime,tty,
 * time,args` by default) and reads /proc from inside the container's mount namespace. Here the same figures
 * are read from the host's /proc for the processes of the container's cgroup, translated into the container's
 * view: PIDs from the last NSpid entry, user and group names from the container's own /etc/passwd and
 * /etc/group (through /proc/<pid>/root, so bind mounts count), terminals from the container's /dev.
 * Anything that is not a list of descriptors (`-ef`, `aux`, `-o pid,args`) is handed to the container's own
 * ps(1) in an exec session, as Podman does, and its lines are returned as they are.
 *
 * The result is Podman's: one tab-separated line per row, the titles first.
 */
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { PodserveError } from '../errors.js';
import type { OCIRuntime } from '../oci/types.js';
import { generateExecProcess } from '../spec/process.js';
import type { OciProcess } from '../spec/ociTypes.js';
import { parseGroup, parsePasswd } from '../spec/user.js';
import { newId } from './names.js';
import { cgroupProcsFile } from './stats.js';
import { nowNanos } from './time.js';
import type { Container } from './types.js';

/** psgo's default, `ps -ef` compatible. */
export const DEFAULT_DESCRIPTORS = ['user', 'pid', 'ppid', 'pcpu', 'etime', 'tty', 'time', 'args'];

const USER_HZ = 100n;
/** psgo's "all capabilities" mask (CAP_CHECKPOINT_RESTORE, 40, is the last it knows). */
const FULL_CAPS = 0x1ffffffffffn;
const CAPABILITY_NAMES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
];
/** How long the container's ps(1) may take. */
const PS_TIMEOUT_MS = 30_000;

/** Why top failed; `notRunning` marks the container not running (Docker answers that with 409). */
export class TopError extends PodserveError {
  constructor(
    message: string,
    readonly notRunning = false,
  ) {
    super(500, message);
  }
}

export const notRunningForTop = (): TopError => new TopError('top can only be used on running containers', true);

// ---------------------------------------------------------------------------------------------
// /proc reading

/** What the descriptors need of one process, as read from the host's /proc. */
interface ProcInfo {
  hostPid: number;
  /** PID in the container's namespace (last NSpid entry). */
  pid: number;
  nsDepth: number;
  comm: string;
  /** /proc/<pid>/stat fields from the state on: index 0 = state (field 3). */
  stat: string[];
  status: Map<string, string[]>;
  cmdline: string[];
  label: string;
}

async function readProc(hostPid: number): Promise<ProcInfo | undefined> {
  try {
    const base = `/proc/${hostPid}`;
    const [statText, statusText, cmdline] = await Promise.all([
      readFile(`${base}/stat`, 'utf8'),
      readFile(`${base}/status`, 'utf8'),
      readFile(`${base}/cmdline`),
    ]);
    const label = await readFile(`${base}/attr/current`, 'utf8').then(
      (text) => text.replace(/\n+$/, '').replace(/^\n+/, ''),
      () => '?',
    );
    const open = statText.indexOf('(');
    const close = statText.lastIndexOf(')');
    if (open < 0 || close < 0) return undefined;
    const status = new Map<string, string[]>();
    for (const line of statusText.split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields.length >= 2) status.set(fields[0]!, fields.slice(1));
    }
    const nspid = status.get('NSpid:') ?? [String(hostPid)];
    return {
      hostPid,
      pid: Number(nspid[nspid.length - 1]),
      nsDepth: nspid.length,
      comm: statText.slice(open + 1, close),
      stat: statText.slice(close + 1).trim().split(/\s+/),
      status,
      cmdline: cmdline.toString('utf8').split('\0'),
      label,
    };
  } catch (err) {
    // The process ended while being read.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw err;
  }
}

/** /proc/<pid>/stat field n (1-based, as in proc(5)); fields 1 and 2 are pid and comm. */
function statField(p: ProcInfo, n: number): string {
  return p.stat[n - 3] ?? '';
}

/** The host's boot time, seconds since the epoch (/proc/stat btime). */
async function bootTime(): Promise<bigint> {
  const text = await readFile('/proc/stat', 'utf8');
  const match = /^btime (\d+)$/m.exec(text);
  if (!match) throw new TopError("couldn't extract boot time from /proc/stat");
  return BigInt(match[1]!);
}

/** A PID as the container sees it: host PID → last NSpid entry when that process is in the same namespace depth. */
async function containerPidOf(hostPid: string, depth: number, known: Map<number, ProcInfo>): Promise<string> {
  const n = Number(hostPid);
  if (!Number.isInteger(n) || n <= 0) return '0';
  const seen = known.get(n);
  if (seen) return String(seen.pid);
  const text = await readFile(`/proc/${n}/status`, 'utf8').catch(() => '');
  const nspid = /^NSpid:\s+(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/);
  // Outside the container's namespace (conmon, runc): the container sees it as 0, like its init's parent.
  return nspid && nspid.length === depth ? nspid[nspid.length - 1]! : '0';
}

// ---------------------------------------------------------------------------------------------
// Go formatting

/** Go's time.Duration String(). */
export function formatGoDuration(nanos: bigint): string {
  if (nanos === 0n) return '0s';
  const negative = nanos < 0n;
  let u = negative ? -nanos : nanos;
  const sign = negative ? '-' : '';
  const fraction = (value: bigint, digits: number): string => {
    const text = value.toString().padStart(digits, '0').replace(/0+$/, '');
    return text === '' ? '' : `.${text}`;
  };
  if (u < 1_000_000_000n) {
    if (u < 1000n) return `${sign}${u}ns`;
    if (u < 1_000_000n) return `${sign}${u / 1000n}${fraction(u % 1000n, 3)}µs`;
    return `${sign}${u / 1_000_000n}${fraction(u % 1_000_000n, 6)}ms`;
  }
  const secs = u / 1_000_000_000n;
  const frac = fraction(u % 1_000_000_000n, 9);
  u = secs;
  const s = u % 60n;
  u /= 60n;
  if (u === 0n) return `${sign}${s}${frac}s`;
  const m = u % 60n;
  const h = u / 60n;
  if (h === 0n) return `${sign}${m}m${s}${frac}s`;
  return `${sign}${h}h${m}m${s}${frac}s`;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** Go's `%v` of a time.Time in UTC: "2006-01-02 15:04:05 +0000 UTC" (whole seconds, as psgo has them). */
function formatGoTime(seconds: bigint): string {
  const d = new Date(Number(seconds) * 1000);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000 UTC`;
}

/** Go's strconv.FormatFloat(x, 'f', 3, 64). */
function formatFixed3(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  return x.toFixed(3);
}

// ---------------------------------------------------------------------------------------------
// Descriptors

interface Lookup {
  users: Map<number, string>;
  groups: Map<number, string>;
}

interface Context {
  known: Map<number, ProcInfo>;
  container: Lookup;
  host: () => Promise<Lookup>;
  ttys: () => Promise<{ major: number; minor: number; path: string }[]>;
  now: bigint;
  boot: () => Promise<bigint>;
}

type Render = (p: ProcInfo, ctx: Context) => string | Promise<string>;

/** One AIX format descriptor: its code (%p), normal name (pid), title and how to render it. */
export interface Descriptor {
  code?: string;
  normal: string;
  header: string;
  render: Render;
}

const idName = (map: Map<number, string>, id: string | undefined): string => {
  if (id === undefined) return '';
  return map.get(Number(id)) ?? id;
};

const uid = (p: ProcInfo, i: number): string | undefined => p.status.get('Uid:')?.[i];
const gid = (p: ProcInfo, i: number): string | undefined => p.status.get('Gid:')?.[i];

async function startSeconds(p: ProcInfo, ctx: Context): Promise<bigint> {
  return (await ctx.boot()) + BigInt(statField(p, 22) || '0') / USER_HZ;
}

function cpuSeconds(p: ProcInfo): bigint {
  return (BigInt(statField(p, 14) || '0') + BigInt(statField(p, 15) || '0')) / USER_HZ;
}

async function elapsedNanos(p: ProcInfo, ctx: Context): Promise<bigint> {
  return ctx.now - (await startSeconds(p, ctx)) * 1_000_000_000n;
}

function capabilities(mask: string | undefined): string {
  if (mask === undefined || !/^[0-9a-fA-F]+$/.test(mask)) throw new TopError(`invalid capability mask "${mask ?? ''}"`);
  const bits = BigInt(`0x${mask}`);
  if (bits === FULL_CAPS) return 'full';
  const names: string[] = [];
  for (let i = 0n; i < 64n; i++) if ((bits >> i) & 1n) names.push(CAPABILITY_NAMES[Number(i)] ?? 'unknown');
  return names.length === 0 ? 'none' : names.sort().join(',');
}

const DESCRIPTORS: Descriptor[] = [
  {
    code: '%C',
    normal: 'pcpu',
    header: '%CPU',
    render: async (p, ctx) => {
      const elapsed = Number(await elapsedNanos(p, ctx)) / 1e9;
      return formatFixed3((100 * Number(cpuSeconds(p))) / elapsed);
    },
  },
  { code: '%G', normal: 'group', header: 'GROUP', render: (p, ctx) => idName(ctx.container.groups, gid(p, 1)) },
  {
    normal: 'groups',
    header: 'GROUPS',
    render: (p, ctx) => (p.status.get('Groups:') ?? []).map((g) => idName(ctx.container.groups, g)).join(','),
  },
  { code: '%P', normal: 'ppid', header: 'PPID', render: (p, ctx) => containerPidOf(p.status.get('PPid:')?.[0] ?? '0', p.nsDepth, ctx.known) },
  { code: '%U', normal: 'user', header: 'USER', render: (p, ctx) => idName(ctx.container.users, uid(p, 1)) },
  {
    code: '%a',
    normal: 'args',
    header: 'COMMAND',
    render: (p) => (p.cmdline[0] === '' || p.cmdline[0] === undefined ? `[${p.status.get('Name:')?.[0] ?? p.comm}]` : p.cmdline.join(' ')),
  },
  { code: '%c', normal: 'comm', header: 'COMMAND', render: (p) => p.comm },
  { code: '%g', normal: 'rgroup', header: 'RGROUP', render: (p, ctx) => idName(ctx.container.groups, gid(p, 0)) },
  { code: '%n', normal: 'nice', header: 'NI', render: (p) => statField(p, 19) },
  { code: '%p', normal: 'pid', header: 'PID', render: (p) => String(p.pid) },
  {
    code: '%r',
    normal: 'pgid',
    header: 'PGID',
    render: (p, ctx) => {
      const nspgid = p.status.get('NSpgid:');
      return nspgid && nspgid.length === p.nsDepth ? nspgid[nspgid.length - 1]! : containerPidOf(statField(p, 5), p.nsDepth, ctx.known);
    },
  },
  { code: '%t', normal: 'etime', header: 'ELAPSED', render: async (p, ctx) => formatGoDuration(await elapsedNanos(p, ctx)) },
  { code: '%u', normal: 'ruser', header: 'RUSER', render: (p, ctx) => idName(ctx.container.users, uid(p, 0)) },
  { code: '%x', normal: 'time', header: 'TIME', render: (p) => formatGoDuration(cpuSeconds(p) * 1_000_000_000n) },
  {
    code: '%y',
    normal: 'tty',
    header: 'TTY',
    render: async (p, ctx) => {
      const nr = Number(statField(p, 7));
      if (!Number.isInteger(nr)) return '';
      const major = (nr >> 8) & 0xff;
      const minor = (nr & 0xff) | ((nr >>> 20) & 0xfff);
      const tty = (await ctx.ttys()).find((t) => t.major === major && t.minor === minor);
      return tty ? tty.path : '?';
    },
  },
  { code: '%z', normal: 'vsz', header: 'VSZ', render: (p) => String(Math.trunc(Number(statField(p, 23)) / 1024)) },
  { normal: 'capamb', header: 'AMBIENT CAPS', render: (p) => capabilities(p.status.get('CapAmb:')?.[0]) },
  { normal: 'capinh', header: 'INHERITED CAPS', render: (p) => capabilities(p.status.get('CapInh:')?.[0]) },
  { normal: 'capprm', header: 'PERMITTED CAPS', render: (p) => capabilities(p.status.get('CapPrm:')?.[0]) },
  { normal: 'capeff', header: 'EFFECTIVE CAPS', render: (p) => capabilities(p.status.get('CapEff:')?.[0]) },
  { normal: 'capbnd', header: 'BOUNDING CAPS', render: (p) => capabilities(p.status.get('CapBnd:')?.[0]) },
  {
    normal: 'seccomp',
    header: 'SECCOMP',
    render: (p) => ({ '0': 'disabled', '1': 'strict', '2': 'filter' })[p.status.get('Seccomp:')?.[0] ?? ''] ?? '?',
  },
  { normal: 'label', header: 'LABEL', render: (p) => p.label },
  // Read from the host already, a process's host-side figures (hpid, huser, hgroup, ...) are its own.
  { normal: 'hpid', header: 'HPID', render: (p) => (p.nsDepth >= 2 ? String(p.hostPid) : '?') },
  {
    normal: 'huser',
    header: 'HUSER',
    render: async (p, ctx) => (p.nsDepth >= 2 ? idName((await ctx.host()).users, uid(p, 1)) : '?'),
  },
  {
    normal: 'hgroup',
    header: 'HGROUP',
    render: async (p, ctx) => (p.nsDepth >= 2 ? idName((await ctx.host()).groups, gid(p, 1)) : '?'),
  },
  { normal: 'hgroups', header: 'HGROUPS', render: (p) => (p.nsDepth >= 2 ? (p.status.get('Groups:') ?? []).join(',') : '?') },
  { normal: 'rss', header: 'RSS', render: (p) => p.status.get('VmRSS:')?.[0] ?? '0' },
  { normal: 'state', header: 'STATE', render: (p) => p.status.get('State:')?.[0] ?? '' },
  { normal: 'stime', header: 'STIME', render: async (p, ctx) => formatGoTime(await startSeconds(p, ctx)) },
];

/** The descriptors psgo knows, or undefined when one of them is not a descriptor (then ps(1) runs). */
export function translateDescriptors(names: readonly string[]): Descriptor[] | undefined {
  const wanted = names.length === 0 ? DEFAULT_DESCRIPTORS : names;
  const out: Descriptor[] = [];
  for (const raw of wanted) {
    const name = raw.trim();
    const matches = DESCRIPTORS.filter((d) => d.code === name || d.normal === name);
    if (matches.length === 0) return undefined;
    out.push(...matches);
  }
  return out;
}

function lookupOf(passwd: string | undefined, group: string | undefined): Lookup {
  const users = new Map<number, string>();
  for (const e of parsePasswd(passwd)) if (!users.has(e.uid)) users.set(e.uid, e.name);
  const groups = new Map<number, string>();
  for (const e of parseGroup(group)) if (!groups.has(e.gid)) groups.set(e.gid, e.name);
  return { users, groups };
}

/** Terminal devices of the container (/dev/tty* then /dev/pts/*), by device number. */
async function containerTtys(root: string): Promise<{ major: number; minor: number; path: string }[]> {
  const candidates: string[] = [];
  const dev = await readdir(join(root, 'dev')).catch(() => [] as string[]);
  for (const name of dev) if (name.startsWith('tty')) candidates.push(name);
  const pts = await readdir(join(root, 'dev/pts')).catch(() => [] as string[]);
  for (const name of pts) candidates.push(`pts/${name}`);
  const out: { major: number; minor: number; path: string }[] = [];
  for (const name of candidates) {
    const info = await stat(join(root, 'dev', name)).catch(() => undefined);
    if (!info) continue;
    const rdev = info.rdev;
    out.push({ major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00), path: name });
  }
  return out;
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= make());
}

/** psgo's table for the container's processes: titles, then one row per process (ordered by container PID). */
async function psgoTable(c: Container, descriptors: Descriptor[]): Promise<string[][]> {
  const initPid = c.state.pid;
  const procsFile = await cgroupProcsFile(initPid);
  const procsText = procsFile === undefined ? undefined : await readFile(procsFile, 'utf8').catch(() => undefined);
  if (procsText === undefined) throw notRunningForTop();
  const hostPids = procsText.split('\n').filter((s) => /^\d+$/.test(s)).map(Number);
  const procs = (await Promise.all(hostPids.map(readProc))).filter((p): p is ProcInfo => p !== undefined);
  procs.sort((a, b) => a.pid - b.pid);
  const root = `/proc/${initPid}/root`;
  const [passwd, group] = await Promise.all([
    readFile(join(root, 'etc/passwd'), 'utf8').catch(() => (c.state.mountPoint ? readFile(join(c.state.mountPoint, 'etc/passwd'), 'utf8').catch(() => undefined) : undefined)),
    readFile(join(root, 'etc/group'), 'utf8').catch(() => (c.state.mountPoint ? readFile(join(c.state.mountPoint, 'etc/group'), 'utf8').catch(() => undefined) : undefined)),
  ]);
  const ctx: Context = {
    known: new Map(procs.map((p) => [p.hostPid, p])),
    container: lookupOf(passwd, group),
    host: once(async () => {
      const [hp, hg] = await Promise.all([readFile('/etc/passwd', 'utf8').catch(() => undefined), readFile('/etc/group', 'utf8').catch(() => undefined)]);
      return lookupOf(hp, hg);
    }),
    ttys: once(() => containerTtys(root)),
    now: nowNanos(),
    boot: once(bootTime),
  };
  const rows: string[][] = [descriptors.map((d) => d.header)];
  for (const p of procs) {
    const row: string[] = [];
    for (const d of descriptors) row.push(await d.render(p, ctx));
    rows.push(row);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// ps(1) in the container

/** Go's shlex.Split as Podman uses it for ps arguments: whitespace, quotes, backslash escapes. */
export function shellSplit(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
      continue;
    }
    if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && i + 1 < text.length && '"\\$`\n'.includes(text[i + 1]!)) word += text[++i];
      else word += ch;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '\\') {
      if (i + 1 >= text.length) throw new TopError('parsing ps args: EOF found after escape character');
      word += text[++i];
    } else word += ch;
  }
  if (quote) throw new TopError('parsing ps args: EOF found when expecting closing quote');
  if (inWord) words.push(word);
  return words;
}

export interface TopDeps {
  oci: OCIRuntime;
  logger: Logger;
}

/** Runs `ps <args>` in the container (a one-off exec session) and returns its stdout lines. */
async function execPs(deps: TopDeps, c: Container, args: string[]): Promise<string[]> {
  const bundle = JSON.parse(await readFile(join(c.config.bundleDir, 'config.json'), 'utf8')) as { process: OciProcess };
  const root = c.state.mountPoint;
  const [passwd, group] = root
    ? await Promise.all([readFile(join(root, 'etc/passwd'), 'utf8').catch(() => undefined), readFile(join(root, 'etc/group'), 'utf8').catch(() => undefined)])
    : [undefined, undefined];
  const process = generateExecProcess(
    { process: bundle.process, user: c.config.user, groups: c.config.spec.groups ?? undefined, passwd, group },
    { cmd: ['ps', ...args], tty: false },
  );
  const sessionId = newId();
  const bundleDir = join(c.config.bundleDir, sessionId);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  try {
    const result = await deps.oci.execContainer(
      { id: c.id, name: c.name },
      { sessionId, bundleDir, process: process as unknown as Record<string, unknown>, terminal: false, attachStdin: false },
    );
    const conn = result.attach;
    if (!conn) throw new TopError('executing ps(1) in the container: no output connection');
    const timer = setTimeout(() => {
      deps.logger.warn({ id: c.id, pid: result.pid }, 'ps(1) in the container did not finish; killing it');
      void deps.oci.execStop(result.pid, 0).catch(() => undefined);
    }, PS_TIMEOUT_MS);
    try {
      for await (const packet of conn.packets as AsyncIterable<{ pipe: number; data: Buffer }>) {
        (packet.pipe === 3 ? stderr : stdout).push(packet.data);
      }
    } finally {
      clearTimeout(timer);
      conn.close();
    }
    const code = await deps.oci.readExecExitCode(bundleDir, c.id, 5000);
    if (code !== 0) {
      const errLines = splitLines(Buffer.concat(stderr).toString('utf8'));
      throw new TopError(`executing ps(1) in the container: runtime failed with exit status: ${code ?? -1} and output: ${errLines.join(' ')}`);
    }
    return splitLines(Buffer.concat(stdout).toString('utf8'));
  } catch (err) {
    if (err instanceof TopError) throw err;
    throw new TopError(`executing ps(1) in the container: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await rm(bundleDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** bufio.Scanner's lines: no empty last line, "\r\n" ends a line too. */
function splitLines(text: string): string[] {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Podman's Container.Top: `psArgs` as the client sent it ("" = psgo's defaults). Returns tab-separated lines,
 * titles first. Throws TopError when the container does not run or ps fails.
 */
export async function containerTop(deps: TopDeps, c: Container, psArgs: string): Promise<string[]> {
  if (c.state.status !== 'running' || c.state.pid <= 0) throw notRunningForTop();
  // Comma-separated descriptors are accepted too ("pid,user").
  const names = psArgs.split(',').filter((s) => s !== '');
  const descriptors = translateDescriptors(names);
  if (descriptors) return (await psgoTable(c, descriptors)).map((row) => row.join('\t'));
  const output = await execPs(deps, c, shellSplit(psArgs));
  // The ps process itself shows up in its own output: drop the lines that mention its arguments, as Podman does.
  return output.filter((line) => !line.includes(psArgs));
}
