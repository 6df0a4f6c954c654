/**
 * SpecGenerator + image config → OCI runtime-spec config.json, with Podman 4.3.1's defaults and
 * merge rules (pkg/specgen/generate and libpod/container_internal*.go): command/entrypoint, env,
 * user, capabilities, rlimits, default mounts, masked/readonly paths, namespaces, resources,
 * sysctls, annotations. Pure: everything read from the host is passed in `ctx`.
 */
import path from 'node:path';
import { BadRequestError } from '../errors.js';
import type {
  DeviceCgroupRule, LinuxResources, LinuxThrottleDevice, LinuxWeightDevice, Namespace, SpecGenerator,
} from '../../schemas/containers.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, mergeCapabilities, normalizeCapability } from './capabilities.js';
import { cleanContainerPath, processMountOptions, sortMounts, SUPPORTED_MOUNT_TYPES } from './mounts.js';
import type {
  NamespaceType, OciBlockIO, OciDevice, OciDeviceCgroup, OciLinux, OciMount, OciNamespace, OciResources,
  OciRlimit, OciSeccomp, OciSpec, OciThrottleDevice,
} from './ociTypes.js';
import { OCI_VERSION } from './ociTypes.js';
import { parseSignal } from './signals.js';
import { resolveGroups, resolveUser, type ExecUser } from './user.js';
import { validateSpecGenerator } from './validate.js';

/** The parts of an image's config (OCI/Docker `config` object) that shape a container. */
export interface ImageConfigLike {
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
}

export interface RlimitPair {
  soft: number;
  hard: number;
}

/** A host device node as stat(2) describes it. */
export interface HostDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface OciContext {
  /** Full container id (64 hex chars). */
  id: string;
  /** Absolute host path of the mounted root filesystem. */
  rootfsPath: string;
  /** Hostname for a private UTS namespace when the spec sets none; default id[0:12]. */
  hostname?: string;
  /** The host's own hostname, used when the container shares the host's network or UTS namespace. */
  hostHostname?: string;
  /** Contents of the image's /etc/passwd and /etc/group, to resolve user and group names. */
  passwd?: string;
  group?: string;
  /**
   * The daemon's own rlimits: defaults for RLIMIT_NOFILE and RLIMIT_NPROC. Podman asks for 1048576,
   * which fails without CAP_SYS_RESOURCE; these never exceed what the daemon holds.
   */
  hostLimits: { nofile: RlimitPair; nproc: RlimitPair };
  /** linux.cgroupsPath; default `<cgroup_parent or cgroupParent or /podserve>/<id>` (cgroupfs). */
  cgroupsPath?: string;
  cgroupParent?: string;
  /** Bind mounts the engine prepared: destination → host source (/etc/hosts, /etc/resolv.conf, /etc/hostname, /run/.containerenv, /dev/shm…). */
  bindMounts?: Record<string, string>;
  /** Host path of the init binary (catatonit, tini) for `init: true`; spec.init_path wins. */
  initPath?: string;
  /** The daemon's capability bounding set (CapBnd); default: every known capability. */
  boundingCaps?: readonly string[];
  /** Default capability set; default Podman's containers.conf list. */
  defaultCapabilities?: readonly string[];
  /** Namespace paths to join (network namespace prepared by netavark, container:/pod: modes resolved by the engine). */
  namespacePaths?: Partial<Record<NamespaceType, string>>;
  /** stat() of a host device path, for `devices` and throttle/weight device maps. */
  lookupDevice?: (hostPath: string) => HostDevice | undefined;
  /** Every host device, added to privileged containers. */
  hostDevices?: readonly HostDevice[];
  /** Mount points of named volumes, by name (anonymous volumes are named by the engine first). */
  volumeMountpoints?: Record<string, string>;
  /** Seccomp profile to apply (the engine loads the default or spec.seccomp_profile_path). */
  seccompProfile?: OciSeccomp;
  /** Whether AppArmor is enabled on the host; a profile request errors when it is not. */
  apparmorEnabled?: boolean;
  /** Default sysctls (containers.conf default_sysctls); default {"net.ipv4.ping_group_range": "0 0"}. */
  defaultSysctls?: Record<string, string>;
  /** Default pids limit when the spec sets none (containers.conf pids_limit); 0 = none. Default 2048. */
  defaultPidsLimit?: number;
  /** The daemon's environment, for `env_host`. */
  hostEnv?: Record<string, string>;
  /** Creation time, recorded in the io.kubernetes.cri-o.Created annotation. */
  createdAt?: Date;
}

/** Where the init binary is mounted inside the container (Podman's path). */
export const CONTAINER_INIT_PATH = '/run/podman-init';
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
export const DEFAULT_PIDS_LIMIT = 2048;
export const DEFAULT_UMASK = 0o022;

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
  '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/fs/selinux', '/sys/dev/block',
];
export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger',
];

const RLIMIT_TYPES = new Set([
  'as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss',
  'rtprio', 'rttime', 'sigpending', 'stack',
]);

/** Namespaced sysctls a container may set (Podman's util.ValidateSysctls). */
const SYSCTL_NAMES = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
  'kernel.shmmni', 'kernel.shm_rmid_forced', 'kernel.domainname', 'kernel.hostname',
]);
const SYSCTL_PREFIXES = ['net.', 'fs.mqueue.'];

const bad = (message: string): never => {
  throw new BadRequestError(message);
};

// ---------------------------------------------------------------- command, env, stop signal

/**
 * The container's argv before any init wrapper (Podman's makeCommand): the spec's entrypoint or the
 * image's; the spec's command, or the image's Cmd only when the spec set no entrypoint. An
 * entrypoint of [""] means "none". Throws when nothing is left.
 */
export function resolveCommand(spec: SpecGenerator, image: ImageConfigLike | undefined): string[] {
  const entrypoint = spec.entrypoint ?? image?.Entrypoint ?? [];
  const argv: string[] = entrypoint.length === 1 && entrypoint[0] === '' ? [] : [...entrypoint];
  let command = spec.command ?? [];
  if (command.length === 0 && (spec.entrypoint ?? []).length === 0) command = image?.Cmd ?? [];
  argv.push(...command);
  if (argv.length === 0) bad('command: no command or entrypoint provided, and no CMD or ENTRYPOINT from image');
  return argv;
}

/** Stop signal number: the spec's, else the image's StopSignal, else SIGTERM. */
export function resolveStopSignal(spec: SpecGenerator, image: ImageConfigLike | undefined): number {
  if (spec.stop_signal !== undefined && spec.stop_signal !== null) return parseSignal(spec.stop_signal, 'stop_signal');
  if (image?.StopSignal) return parseSignal(image.StopSignal, 'image StopSignal');
  return 15;
}

/** "K=V" entries → ordered map; an entry without "=" maps to "" (Podman's env.Map). */
export function envListToMap(list: readonly string[] | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of list ?? []) {
    const eq = entry.indexOf('=');
    if (eq === -1) out.set(entry, '');
    else out.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return out;
}

/** Expands $VAR and ${VAR} from `vars` (for env merge). */
function expandVars(text: string, vars: Map<string, string>): string {
  return text.replace(/\$(?:\{(\w+)\}|(\w+))/g, (_, braced: string | undefined, bare: string | undefined) => vars.get(braced ?? bare ?? '') ?? '');
}

/**
 * The environment without HOSTNAME/HOME (added later): defaults (PATH, TERM, container=podman),
 * the host's when env_host, the image's, env merges and unsets, then the spec's.
 */
export function resolveEnv(spec: SpecGenerator, image: ImageConfigLike | undefined, hostEnv?: Record<string, string>): Map<string, string> {
  let env = new Map<string, string>([['PATH', DEFAULT_PATH_ENV], ['TERM', 'xterm']]);
  if (image) env.set('container', 'podman');
  if (spec.env_host && hostEnv) for (const [k, v] of Object.entries(hostEnv)) env.set(k, v);
  for (const [k, v] of envListToMap(image?.Env)) env.set(k, v);
  for (const merge of spec.envmerge ?? []) {
    const expanded = expandVars(merge, env);
    const eq = expanded.indexOf('=');
    if (eq > 0 && env.has(expanded.slice(0, eq))) env.set(expanded.slice(0, eq), expanded.slice(eq + 1));
  }
  for (const name of spec.unsetenv ?? []) env.delete(name);
  if (spec.unsetenvall) env = new Map();
  for (const [k, v] of Object.entries(spec.env ?? {})) env.set(k, v);
  return env;
}

// ---------------------------------------------------------------- namespaces

type NsKind = 'new' | 'host' | 'path';

function nsMode(ns: Namespace | null | undefined): string {
  return ns?.nsmode ?? '';
}

/**
 * Decides one namespace: a new one, the host's (no entry), or joining a path (explicit `path`
 * mode, or a path the engine resolved for container:/pod:/bridge modes).
 */
function namespaceEntry(
  type: NamespaceType,
  ns: Namespace | null | undefined,
  field: string,
  allowed: readonly string[],
  ctx: OciContext,
): { kind: NsKind; entry?: OciNamespace } {
  const mode = nsMode(ns);
  if (!allowed.includes(mode)) bad(`${field}: namespace mode "${mode}" is not supported`);
  const resolved = ctx.namespacePaths?.[type];
  switch (mode) {
    case 'host':
      return { kind: 'host' };
    case 'path': {
      const nsPath = ns?.value ?? '';
      if (!nsPath.startsWith('/')) bad(`${field}: namespace path "${nsPath}" must be an absolute path`);
      return { kind: 'path', entry: { type, path: nsPath } };
    }
    case 'container':
    case 'pod':
      if (!resolved) bad(`${field}: cannot join the ${type} namespace of ${mode} "${ns?.value ?? ''}": it is not running`);
      return { kind: 'path', entry: { type, path: resolved } };
    default:
      return resolved ? { kind: 'path', entry: { type, path: resolved } } : { kind: 'new', entry: { type } };
  }
}

// ---------------------------------------------------------------- resources and devices

function hostDevice(hostPath: string, field: string, ctx: OciContext): HostDevice {
  const dev = ctx.lookupDevice?.(hostPath);
  if (!dev) bad(`${field}: ${hostPath} is not a valid device`);
  return dev as HostDevice;
}

function isValidDeviceMode(mode: string): boolean {
  return mode !== '' && /^[rwm]+$/.test(mode) && new Set(mode).size === mode.length;
}

/** Parses Podman's device string "src[:dst][:perms]". */
export function parseDeviceString(text: string, field: string): { source: string; destination: string; permissions: string } {
  const parts = text.split(':');
  if (parts.length > 3 || !parts[0]) bad(`${field}: invalid device specification "${text}"`);
  const source = parts[0] as string;
  let destination = source;
  let permissions = 'rwm';
  if (parts.length === 3) {
    if (!isValidDeviceMode(parts[2] as string)) bad(`${field}: invalid device mode "${parts[2]}"`);
    permissions = parts[2] as string;
  }
  if (parts.length >= 2) {
    const second = parts[1] as string;
    if (isValidDeviceMode(second) && parts.length === 2) permissions = second;
    else if (second.startsWith('/')) destination = second;
    else bad(`${field}: invalid device mode "${second}"`);
  }
  return { source, destination, permissions };
}

function throttleDevices(map: Record<string, LinuxThrottleDevice> | null | undefined, field: string, ctx: OciContext): OciThrottleDevice[] {
  return Object.entries(map ?? {}).map(([hostPath, t]) => {
    const dev = hostDevice(hostPath, field, ctx);
    return { major: dev.major, minor: dev.minor, rate: t.rate ?? 0 };
  });
}

function rates(list: LinuxThrottleDevice[] | null | undefined): OciThrottleDevice[] | undefined {
  return list?.map((d) => ({ major: d.major ?? 0, minor: d.minor ?? 0, rate: d.rate ?? 0 }));
}

function definedOnly<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== null)) as T;
}

/** Converts a LinuxResources body (resource_limits or update) to OCI resources, dropping nulls. */
export function toOciResources(res: LinuxResources | null | undefined): OciResources {
  const out: OciResources = {};
  if (!res) return out;
  if (res.memory) {
    const m = res.memory;
    const memory = definedOnly({
      limit: m.limit, reservation: m.reservation, swap: m.swap, kernel: m.kernel, kernelTCP: m.kernelTCP,
      swappiness: m.swappiness, disableOOMKiller: m.disableOOMKiller, useHierarchy: m.useHierarchy,
    });
    if (Object.keys(memory).length > 0) out.memory = memory as OciResources['memory'];
  }
  if (res.cpu) {
    const c = res.cpu;
    const cpu = definedOnly({
      shares: c.shares, quota: c.quota, period: c.period, realtimeRuntime: c.realtimeRuntime,
      realtimePeriod: c.realtimePeriod, cpus: c.cpus || undefined, mems: c.mems || undefined,
    });
    if (Object.keys(cpu).length > 0) out.cpu = cpu as OciResources['cpu'];
  }
  if (res.pids && res.pids.limit !== undefined && res.pids.limit !== null) out.pids = { limit: res.pids.limit };
  if (res.blockIO) {
    const b = res.blockIO;
    const blockIO: OciBlockIO = definedOnly({
      weight: b.weight ?? undefined,
      leafWeight: b.leafWeight ?? undefined,
      weightDevice: b.weightDevice?.map((d: LinuxWeightDevice) => definedOnly({ major: d.major ?? 0, minor: d.minor ?? 0, weight: d.weight ?? undefined, leafWeight: d.leafWeight ?? undefined })),
      throttleReadBpsDevice: rates(b.throttleReadBpsDevice),
      throttleWriteBpsDevice: rates(b.throttleWriteBpsDevice),
      throttleReadIOPSDevice: rates(b.throttleReadIOPSDevice),
      throttleWriteIOPSDevice: rates(b.throttleWriteIOPSDevice),
    });
    if (Object.keys(blockIO).length > 0) out.blockIO = blockIO;
  }
  if (res.hugepageLimits?.length) out.hugepageLimits = res.hugepageLimits.map((h) => ({ pageSize: h.pageSize ?? '', limit: h.limit ?? 0 }));
  if (res.unified && Object.keys(res.unified).length > 0) out.unified = { ...res.unified };
  if (res.devices?.length) out.devices = res.devices.map((d) => deviceRule(d));
  return out;
}

function deviceRule(d: DeviceCgroupRule): OciDeviceCgroup {
  return definedOnly({ allow: d.allow ?? false, type: d.type || undefined, major: d.major ?? undefined, minor: d.minor ?? undefined, access: d.access || undefined });
}

// ---------------------------------------------------------------- the generator

/**
 * Builds the OCI config.json for a container. Throws BadRequestError (naming the field) for
 * semantic errors: unknown capability, bad mount type or option, negative memory, invalid
 * signal, unknown user, missing init binary, …
 */
export function generateOciConfig(spec: SpecGenerator, image: ImageConfigLike | undefined, ctx: OciContext): OciSpec {
  validateSpecGenerator(spec);
  const privileged = spec.privileged === true;
  const readOnly = spec.read_only_filesystem === true;
  const bounding = [...(ctx.boundingCaps ?? ALL_CAPABILITIES)].sort();

  // --- command and init
  let args = resolveCommand(spec, image);
  const extraMounts: OciMount[] = [];
  if (spec.init) {
    const initPath = spec.init_path || ctx.initPath;
    if (!initPath) bad('init: no path to init binary found but container requested an init');
    if (!['', 'default', 'private'].includes(nsMode(spec.pidns))) bad('init: cannot add init binary as PID 1 (PID namespace isn\'t private)');
    if (spec.systemd === 'always') bad('init: cannot use container-init binary with systemd=always');
    args = [CONTAINER_INIT_PATH, '--', ...args];
    extraMounts.push({ destination: CONTAINER_INIT_PATH, type: 'bind', source: initPath as string, options: ['bind', 'ro'] });
  }

  // --- user
  const userSpec = spec.user || image?.User || '';
  const execUser: ExecUser = resolveUser(userSpec, ctx.passwd, ctx.group, spec.user ? 'user' : 'image User');
  const additionalGids: number[] = [];
  if (userSpec !== '') additionalGids.push(execUser.gid);
  if (spec.groups?.length) additionalGids.push(...resolveGroups(spec.groups, ctx.group));
  if (!userSpec.includes(':')) additionalGids.push(...execUser.sgids);
  const umask = spec.umask ? parseInt(spec.umask, 8) : DEFAULT_UMASK;

  // --- capabilities (Podman: root gets the merged set; another user only what cap_add names)
  let caps: string[];
  if (privileged) caps = bounding;
  else caps = mergeCapabilities(ctx.defaultCapabilities ?? DEFAULT_CAPABILITIES, spec.cap_add ?? [], spec.cap_drop ?? [], bounding);
  const userPart = userSpec.split(':')[0] ?? '';
  const runsAsRoot = userPart === '' || userPart === 'root' || userPart === '0';
  let effective = caps;
  let ambient: string[] = [];
  let inheritable: string[] = [];
  if (!runsAsRoot) {
    const added = (spec.cap_add ?? []).map((c) => normalizeCapability(c, 'cap_add'));
    const userCaps = added.includes('ALL') ? bounding : [...new Set(added)].filter((c) => bounding.includes(c)).sort();
    effective = userCaps;
    ambient = userCaps;
    inheritable = userCaps;
  }

  // --- rlimits: the spec's first, then the daemon's nofile/nproc unless the spec set them
  const rlimits: OciRlimit[] = [];
  const seenRlimits = new Set<string>();
  (spec.r_limits ?? []).forEach((r, i) => {
    const name = r.type.toLowerCase().replace(/^rlimit_/, '');
    if (!RLIMIT_TYPES.has(name)) bad(`r_limits[${i}].type: invalid rlimit type "${r.type}"`);
    if (r.soft > r.hard) bad(`r_limits[${i}]: soft limit ${r.soft} for ${name} is larger than the hard limit ${r.hard}`);
    const type = `RLIMIT_${name.toUpperCase()}`;
    const existing = rlimits.findIndex((x) => x.type === type);
    if (existing !== -1) rlimits.splice(existing, 1);
    rlimits.push({ type, hard: r.hard, soft: r.soft });
    seenRlimits.add(name);
  });
  for (const name of ['nofile', 'nproc'] as const) {
    if (seenRlimits.has(name)) continue;
    const host = ctx.hostLimits[name];
    rlimits.push({ type: `RLIMIT_${name.toUpperCase()}`, hard: host.hard, soft: Math.min(host.soft, host.hard) });
  }

  // --- namespaces
  const namespaces: OciNamespace[] = [];
  const pid = namespaceEntry('pid', spec.pidns, 'pidns', ['', 'default', 'private', 'host', 'path', 'container', 'pod'], ctx);
  const net = namespaceEntry('network', spec.netns, 'netns', ['', 'default', 'private', 'none', 'bridge', 'slirp4netns', 'host', 'path', 'container', 'pod'], ctx);
  const ipc = namespaceEntry('ipc', spec.ipcns, 'ipcns', ['', 'default', 'private', 'shareable', 'none', 'host', 'path', 'container', 'pod'], ctx);
  const uts = namespaceEntry('uts', spec.utsns, 'utsns', ['', 'default', 'private', 'host', 'path', 'container', 'pod'], ctx);
  // cgroup v1 hosts default to the host's cgroup namespace, like Podman there; no user namespaces yet.
  const cgroupMode = nsMode(spec.cgroupns);
  const cgroupNs = ['', 'default', 'host'].includes(cgroupMode)
    ? undefined
    : namespaceEntry('cgroup', spec.cgroupns, 'cgroupns', ['private', 'path', 'container', 'pod'], ctx);
  const userMode = nsMode(spec.userns);
  if (!['', 'default', 'host'].includes(userMode)) bad(`userns: namespace mode "${userMode}" is not supported`);
  for (const ns of [pid, net, ipc, uts]) if (ns.entry) namespaces.push(ns.entry);
  namespaces.push({ type: 'mount' });
  if (cgroupNs?.entry) namespaces.push(cgroupNs.entry);

  // --- hostname (and the HOSTNAME variable). With the host's network, Podman names a private UTS
  // namespace after the host; a joined UTS namespace keeps its owner's name (ctx.hostname).
  if (spec.hostname && uts.kind !== 'new') bad('hostname: cannot set hostname when joining another UTS namespace');
  let hostname: string | undefined;
  if (spec.hostname) hostname = spec.hostname;
  else if (uts.kind === 'new') hostname = net.kind === 'host' && ctx.hostHostname ? ctx.hostHostname : ctx.hostname ?? ctx.id.slice(0, 12);
  const hostnameForEnv = hostname ?? (uts.kind === 'host' ? ctx.hostHostname : ctx.hostname) ?? ctx.id.slice(0, 12);

  // --- environment
  const env = resolveEnv(spec, image, ctx.hostEnv);
  if (!env.has('HOSTNAME')) env.set('HOSTNAME', hostnameForEnv);
  if (!env.has('HOME') && execUser.home) env.set('HOME', execUser.home);

  // --- working directory
  const cwd = spec.work_dir || image?.WorkingDir || '/';
  if (!cwd.startsWith('/')) bad(`work_dir: "${cwd}" must be an absolute path`);

  // --- mounts
  const mounts = buildMounts(spec, ctx, { privileged, readOnly, ipcKind: ipc.kind, ipcMode: nsMode(spec.ipcns) });
  const allMounts = sortMounts([...mounts, ...extraMounts.filter((m) => !mounts.some((u) => u.destination === m.destination))]);

  // --- devices and resources
  const devices: OciDevice[] = [];
  const deviceRules: OciDeviceCgroup[] = [];
  if (privileged) {
    for (const dev of ctx.hostDevices ?? []) devices.push(definedOnly({ ...dev }));
    deviceRules.push({ allow: true, access: 'rwm' });
  } else {
    deviceRules.push({ allow: false, access: 'rwm' });
    (spec.devices ?? []).forEach((d, i) => {
      const field = `devices[${i}]`;
      const parsed = parseDeviceString(d.path, field);
      const dev = hostDevice(parsed.source, field, ctx);
      devices.push(definedOnly({ ...dev, path: parsed.destination }));
      deviceRules.push({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access: parsed.permissions });
    });
    for (const rule of spec.device_cgroup_rule ?? []) deviceRules.push(deviceRule({ ...rule, allow: true }));
  }

  const resources = toOciResources(spec.resource_limits);
  if (resources.devices) deviceRules.push(...resources.devices);
  resources.devices = deviceRules;
  if (!resources.cpu?.period && spec.cpu_period) resources.cpu = { ...resources.cpu, period: spec.cpu_period };
  if (!resources.cpu?.quota && spec.cpu_quota) resources.cpu = { ...resources.cpu, quota: spec.cpu_quota };
  if (!resources.pids && spec.resource_limits?.pids === undefined) {
    const limit = ctx.defaultPidsLimit ?? DEFAULT_PIDS_LIMIT;
    if (limit !== 0) resources.pids = { limit };
  }
  const weightDevices = Object.entries(spec.weightDevice ?? {}).map(([hostPath, w]) => {
    const dev = hostDevice(hostPath, 'weightDevice', ctx);
    return definedOnly({ major: dev.major, minor: dev.minor, weight: w.weight ?? undefined, leafWeight: w.leafWeight ?? undefined });
  });
  const throttles = {
    throttleReadBpsDevice: throttleDevices(spec.throttleReadBpsDevice, 'throttleReadBpsDevice', ctx),
    throttleWriteBpsDevice: throttleDevices(spec.throttleWriteBpsDevice, 'throttleWriteBpsDevice', ctx),
    throttleReadIOPSDevice: throttleDevices(spec.throttleReadIOPSDevice, 'throttleReadIOPSDevice', ctx),
    throttleWriteIOPSDevice: throttleDevices(spec.throttleWriteIOPSDevice, 'throttleWriteIOPSDevice', ctx),
  };
  if (weightDevices.length || Object.values(throttles).some((l) => l.length)) {
    const blockIO: OciBlockIO = { ...resources.blockIO };
    if (weightDevices.length) blockIO.weightDevice = [...(blockIO.weightDevice ?? []), ...weightDevices];
    for (const [key, list] of Object.entries(throttles) as Array<[keyof typeof throttles, OciThrottleDevice[]]>) {
      if (list.length) blockIO[key] = [...(blockIO[key] ?? []), ...list];
    }
    resources.blockIO = blockIO;
  }
  if (spec.unified && Object.keys(spec.unified).length) resources.unified = { ...resources.unified, ...spec.unified };

  // --- sysctls: defaults that fit the namespaces, then the spec's (which must fit)
  const sysctl: Record<string, string> = {};
  const ipcHost = ipc.kind === 'host';
  const netHost = net.kind === 'host';
  const utsHost = uts.kind === 'host';
  const conflicts = (key: string): string | undefined => {
    if (ipcHost && key.startsWith('fs.mqueue.')) return 'IPC';
    if (netHost && key.startsWith('net.')) return 'Network';
    if (utsHost && (key === 'kernel.domainname' || key === 'kernel.hostname')) return 'UTS';
    return undefined;
  };
  for (const [key, value] of Object.entries(ctx.defaultSysctls ?? { 'net.ipv4.ping_group_range': '0 0' })) {
    if (!conflicts(key)) sysctl[key] = value;
  }
  for (const [key, value] of Object.entries(spec.sysctl ?? {})) {
    if (!SYSCTL_NAMES.has(key) && !SYSCTL_PREFIXES.some((p) => key.startsWith(p))) bad(`sysctl: sysctl "${key}" is not allowed`);
    const ns = conflicts(key);
    if (ns) bad(`sysctl: sysctl ${key}=${value} can't be set since ${ns} Namespace set to host`);
    sysctl[key] = value;
  }

  // --- masked and read-only paths
  const unmask = spec.unmask ?? [];
  const keep = (p: string): boolean => !unmask.some((u) => u.toLowerCase() === 'all' || u.split(':').some((pattern) => globMatch(pattern, p)));
  const maskedPaths = privileged ? [] : DEFAULT_MASKED_PATHS.filter(keep);
  const readonlyPaths = privileged ? [] : DEFAULT_READONLY_PATHS.filter(keep);
  (spec.mask ?? []).forEach((p, i) => {
    if (!p.startsWith('/')) bad(`mask[${i}]: "${p}" is not an absolute path`);
    if (!maskedPaths.includes(p)) maskedPaths.push(p);
  });

  // --- security
  let apparmorProfile: string | undefined;
  if (spec.apparmor_profile && spec.apparmor_profile !== 'unconfined') {
    if (!ctx.apparmorEnabled) bad(`apparmor_profile: apparmor profile "${spec.apparmor_profile}" specified, but Apparmor is not enabled on this system`);
    apparmorProfile = spec.apparmor_profile;
  }
  const seccompPath = spec.seccomp_profile_path ?? '';
  const useSeccomp = ctx.seccompProfile && seccompPath !== 'unconfined' && !(privileged && seccompPath === '');

  // --- annotations (the user's first; Podman's own keys then win, except the manager key)
  const annotations: Record<string, string> = { ...(spec.annotations ?? {}) };
  annotations['io.container.manager'] ??= 'libpod';
  annotations['io.podman.annotations.autoremove'] = spec.remove ? 'TRUE' : 'FALSE';
  annotations['io.podman.annotations.privileged'] = privileged ? 'TRUE' : 'FALSE';
  annotations['io.podman.annotations.init'] = spec.init ? 'TRUE' : 'FALSE';
  annotations['io.podman.annotations.publish-all'] = spec.publish_image_ports ? 'TRUE' : 'FALSE';
  if (spec.volumes_from?.length) annotations['io.podman.annotations.volumes-from'] = spec.volumes_from.join(',');
  annotations['org.opencontainers.image.stopSignal'] = String(resolveStopSignal(spec, image));
  if (ctx.createdAt) annotations['io.kubernetes.cri-o.Created'] = ctx.createdAt.toISOString();

  // --- root propagation follows shared/slave bind mounts, else the spec's request
  let rootfsPropagation = spec.rootfs_propagation || undefined;
  for (const m of allMounts) {
    const opts = m.options ?? [];
    if (opts.some((o) => o === 'shared' || o === 'rshared')) rootfsPropagation = 'shared';
    else if (rootfsPropagation !== 'shared' && opts.some((o) => o === 'slave' || o === 'rslave')) rootfsPropagation = 'rslave';
  }

  const linux: OciLinux = {
    namespaces,
    resources,
    cgroupsPath: ctx.cgroupsPath ?? path.posix.join(spec.cgroup_parent || ctx.cgroupParent || '/podserve', ctx.id),
  };
  if (devices.length) linux.devices = devices;
  if (Object.keys(sysctl).length) linux.sysctl = sysctl;
  if (maskedPaths.length) linux.maskedPaths = maskedPaths;
  if (readonlyPaths.length) linux.readonlyPaths = readonlyPaths;
  if (rootfsPropagation) linux.rootfsPropagation = rootfsPropagation;
  if (useSeccomp) linux.seccomp = ctx.seccompProfile;
  if (spec.personality?.domain) {
    linux.personality = definedOnly({ domain: spec.personality.domain, flags: spec.personality.flags ?? undefined });
  }

  const config: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: spec.terminal === true,
      user: {
        uid: execUser.uid,
        gid: userSpec === '' ? 0 : execUser.gid,
        umask,
        ...(additionalGids.length ? { additionalGids: [...new Set(additionalGids)] } : {}),
      },
      args,
      env: [...env].map(([k, v]) => `${k}=${v}`),
      cwd,
      capabilities: { bounding: caps, effective, inheritable, permitted: effective, ambient },
      rlimits,
      noNewPrivileges: spec.no_new_privileges === true,
    },
    root: { path: ctx.rootfsPath, readonly: readOnly },
    mounts: allMounts,
    annotations,
    linux,
  };
  if (hostname !== undefined) config.hostname = hostname;
  if (apparmorProfile) config.process.apparmorProfile = apparmorProfile;
  if (spec.oom_score_adj !== undefined && spec.oom_score_adj !== null) config.process.oomScoreAdj = spec.oom_score_adj;
  return config;
}

/** Shell-style glob match for unmask patterns ("/proc/*"). */
function globMatch(pattern: string, value: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  return regex.test(value);
}

interface MountOptions {
  privileged: boolean;
  readOnly: boolean;
  ipcKind: NsKind;
  ipcMode: string;
}

/** Default mounts, the engine's bind mounts, and the user's mounts and volumes (user wins). */
function buildMounts(spec: SpecGenerator, ctx: OciContext, opts: MountOptions): OciMount[] {
  const user: OciMount[] = [];
  const destinations = new Set<string>();
  const addUser = (m: OciMount, field: string): void => {
    if (destinations.has(m.destination)) bad(`${field}: duplicate mount destination "${m.destination}"`);
    destinations.add(m.destination);
    user.push(m);
  };

  (spec.mounts ?? []).forEach((m, i) => {
    const field = `mounts[${i}]`;
    const destination = cleanContainerPath(m.destination, `${field}.destination`);
    const type = m.type || 'bind';
    if (!SUPPORTED_MOUNT_TYPES.has(type)) bad(`${field}.type: invalid mount type "${type}"`);
    const options = m.options ?? [];
    if (type === 'bind') {
      if (!m.source || !m.source.startsWith('/')) bad(`${field}.source: bind mount source "${m.source ?? ''}" must be an absolute path`);
      addUser({ destination, type, source: m.source as string, options: processMountOptions(options, false, `${field}.options`) }, field);
    } else if (type === 'tmpfs') {
      addUser({ destination, type, source: m.source || 'tmpfs', options: processMountOptions(options, true, `${field}.options`) }, field);
    } else {
      addUser({ destination, type, source: m.source || type, options: [...options] }, field);
    }
  });
  (spec.volumes ?? []).forEach((v, i) => {
    const field = `volumes[${i}]`;
    const destination = cleanContainerPath(v.Dest, `${field}.Dest`);
    const mountpoint = v.Name ? ctx.volumeMountpoints?.[v.Name] : undefined;
    if (!mountpoint) bad(`${field}: no such volume "${v.Name ?? ''}"`);
    addUser({ destination, type: 'bind', source: mountpoint as string, options: processMountOptions(v.Options ?? [], false, `${field}.Options`) }, field);
  });

  const defaults: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: spec.procfs_opts?.length ? [...spec.procfs_opts] : ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    opts.privileged
      ? { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['rprivate', 'nosuid', 'noexec', 'nodev', 'rw'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['rprivate', 'nosuid', 'noexec', 'nodev', 'relatime', opts.privileged ? 'rw' : 'ro'] },
  ];

  // /dev/shm: a private tmpfs, the host's for ipc=host, none for ipc=none, or what the engine binds.
  const engineBinds = { ...(ctx.bindMounts ?? {}) };
  if (!engineBinds['/dev/shm'] && opts.ipcMode !== 'none') {
    if (opts.ipcKind === 'host') {
      engineBinds['/dev/shm'] = '/dev/shm';
    } else if (opts.ipcKind === 'new') {
      const size = spec.shm_size && spec.shm_size > 0 ? spec.shm_size : DEFAULT_SHM_SIZE;
      defaults.push({ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${size % 1024 === 0 ? `${size / 1024}k` : size}`] });
    }
  }

  // Engine bind mounts (hosts, resolv.conf, hostname, .containerenv, shm of another container…).
  const binds: OciMount[] = Object.entries(engineBinds).map(([destination, source]) => {
    const options = ['bind', 'rprivate'];
    if (destination === '/dev/shm') options.push('nosuid', 'noexec', 'nodev');
    else if (opts.readOnly) options.push('ro', 'nosuid', 'noexec', 'nodev');
    return { destination, type: 'bind', source, options };
  });

  // User mounts supersede defaults at the same destination; a user /dev hides every default under /dev.
  const userDev = destinations.has('/dev');
  const kept = [...defaults, ...binds].filter((m) => !destinations.has(m.destination) && !(userDev && m.destination.startsWith('/dev/')));
  return [...user, ...kept];
}
