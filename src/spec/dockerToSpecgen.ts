/**
 * Docker's create body (Config + HostConfig + NetworkingConfig) → Podman's SpecGenerator, following
 * Podman 4.3.1's compat handler (pkg/api/handlers/compat/containers_create.go + specgenutil): the
 * engine only ever sees SpecGenerators.
 */
import { BadRequestError } from '../errors.js';
import type { DockerCreateBody, DockerHostConfig, StrSlice } from '../../schemas/compat-containers.js';
import type {
  HealthConfig, LinuxResources, Namespace, NamedVolume, PerNetworkOptions, PortMapping, SpecGenerator, SpecMount,
} from '../../schemas/containers.js';
import { parseVolumeString } from './mounts.js';
import { parseSignal } from './signals.js';

export interface DockerConvertOptions {
  /** The `name` query parameter. */
  name?: string;
  /** Image reference as resolved by the engine (defaults to body.Image). */
  image?: string;
}

const bad = (message: string): never => {
  throw new BadRequestError(message);
};

/** Podman's health check defaults (libpod/define), in nanoseconds. */
export const HEALTH_DEFAULTS = { Interval: 30e9, Timeout: 30e9, StartPeriod: 0, Retries: 3 } as const;

function strSlice(value: StrSlice | undefined): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? [value] : [...value];
}

/** Docker mode strings ("host", "container:<id>", "ns:/path", "private", "shareable", "none", "") → Namespace. */
export function parseNamespaceMode(mode: string | undefined, field: string): Namespace | undefined {
  if (!mode) return undefined;
  const [kind, ...rest] = mode.split(':');
  const value = rest.join(':');
  switch (kind) {
    case 'host': case 'private': case 'shareable': case 'none': case 'default':
      return { nsmode: kind };
    case 'container':
      if (!value) bad(`${field}: must provide a container name or ID with "container:"`);
      return { nsmode: 'container', value };
    case 'ns':
      if (!value.startsWith('/')) bad(`${field}: must provide an absolute namespace path with "ns:"`);
      return { nsmode: 'path', value };
    default:
      return bad(`${field}: invalid namespace mode "${mode}"`);
  }
}

/** Docker NetworkMode → netns plus the networks to join (Podman's ParseNetworkFlag). */
function networkMode(mode: string | undefined): { netns: Namespace; networks: string[] } {
  const value = !mode || mode === 'default' ? 'bridge' : mode;
  const [kind, ...rest] = value.split(':');
  const arg = rest.join(':');
  switch (kind) {
    case 'bridge':
      return { netns: { nsmode: 'bridge' }, networks: [] };
    case 'host': case 'none': case 'private': case 'slirp4netns':
      return { netns: { nsmode: kind }, networks: [] };
    case 'container':
      if (!arg) bad('HostConfig.NetworkMode: must provide a container name or ID with "container:"');
      return { netns: { nsmode: 'container', value: arg }, networks: [] };
    case 'ns':
      if (!arg.startsWith('/')) bad('HostConfig.NetworkMode: must provide an absolute namespace path with "ns:"');
      return { netns: { nsmode: 'path', value: arg }, networks: [] };
    default:
      // Any other value names a network to join in bridge mode.
      return { netns: { nsmode: 'bridge' }, networks: [value] };
  }
}

/**
 * Docker's resource fields → runtime-spec LinuxResources (undefined when none is set). At create time an unset
 * swap limit becomes twice the memory limit, as on Podman's compat path; an update leaves swap alone unless asked.
 */
export function dockerResources(hc: DockerHostConfig, opts: { defaultSwap?: boolean } = { defaultSwap: true }): LinuxResources | undefined {
  const res: LinuxResources = {};
  const memory: NonNullable<LinuxResources['memory']> = {};
  if (hc.Memory && hc.Memory > 0) {
    memory.limit = hc.Memory;
    if (hc.MemorySwap && hc.MemorySwap > 0) memory.swap = hc.MemorySwap;
    else if (opts.defaultSwap) memory.swap = 2 * hc.Memory;
  } else if (hc.MemorySwap && hc.MemorySwap > 0) {
    memory.swap = hc.MemorySwap;
  }
  if (hc.MemoryReservation && hc.MemoryReservation > 0) memory.reservation = hc.MemoryReservation;
  if (hc.MemorySwappiness !== undefined && hc.MemorySwappiness !== null && hc.MemorySwappiness >= 0) memory.swappiness = hc.MemorySwappiness;
  if (hc.OomKillDisable) memory.disableOOMKiller = true;
  if (Object.keys(memory).length) res.memory = memory;

  const cpu: NonNullable<LinuxResources['cpu']> = {};
  if (hc.NanoCpus && hc.NanoCpus > 0) {
    if (hc.CpuPeriod || hc.CpuQuota) bad('HostConfig.NanoCpus: NanoCpus conflicts with CpuPeriod and CpuQuota');
    cpu.period = 100000;
    cpu.quota = Math.floor(hc.NanoCpus / 10000);
  }
  if (hc.CpuShares && hc.CpuShares > 0) cpu.shares = hc.CpuShares;
  if (hc.CpuPeriod && hc.CpuPeriod > 0) cpu.period = hc.CpuPeriod;
  if (hc.CpuQuota && hc.CpuQuota !== 0) cpu.quota = hc.CpuQuota;
  if (hc.CpuRealtimePeriod && hc.CpuRealtimePeriod > 0) cpu.realtimePeriod = hc.CpuRealtimePeriod;
  if (hc.CpuRealtimeRuntime && hc.CpuRealtimeRuntime !== 0) cpu.realtimeRuntime = hc.CpuRealtimeRuntime;
  if (hc.CpusetCpus) cpu.cpus = hc.CpusetCpus;
  if (hc.CpusetMems) cpu.mems = hc.CpusetMems;
  if (Object.keys(cpu).length) res.cpu = cpu;

  if (hc.PidsLimit !== undefined && hc.PidsLimit !== null) res.pids = { limit: hc.PidsLimit };
  if (hc.BlkioWeight && hc.BlkioWeight > 0) res.blockIO = { weight: hc.BlkioWeight };
  return Object.keys(res).length ? res : undefined;
}

function mountsAndVolumes(body: DockerCreateBody, hc: DockerHostConfig): { mounts: SpecMount[]; volumes: NamedVolume[] } {
  const mounts: SpecMount[] = [];
  const volumes: NamedVolume[] = [];
  const destinations = new Set<string>();

  (hc.Mounts ?? []).forEach((m, i) => {
    const field = `HostConfig.Mounts[${i}]`;
    const target = m.Target ?? '';
    destinations.add(target);
    const options: string[] = [];
    if (m.ReadOnly) options.push('ro');
    switch (m.Type ?? 'volume') {
      case 'bind':
        if (!m.Source) bad(`${field}.Source: a bind mount needs a source`);
        if (m.BindOptions?.Propagation) options.push(m.BindOptions.Propagation);
        options.push(m.BindOptions?.NonRecursive ? 'bind' : 'rbind');
        mounts.push({ destination: target, type: 'bind', source: m.Source, options });
        break;
      case 'tmpfs':
        if (m.TmpfsOptions?.SizeBytes && m.TmpfsOptions.SizeBytes > 0) options.push(`size=${m.TmpfsOptions.SizeBytes}`);
        if (m.TmpfsOptions?.Mode) options.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
        mounts.push({ destination: target, type: 'tmpfs', source: 'tmpfs', options });
        break;
      case 'volume':
        if (m.VolumeOptions?.NoCopy) options.push('nocopy');
        volumes.push({ Name: m.Source ?? '', Dest: target, Options: options, ...(m.Source ? {} : { IsAnonymous: true }) });
        break;
      default:
        bad(`${field}.Type: invalid mount type "${m.Type ?? ''}"`);
    }
  });

  (hc.Binds ?? []).forEach((bind, i) => {
    const parsed = parseVolumeString(bind, `HostConfig.Binds[${i}]`);
    destinations.add(parsed.destination);
    if (parsed.kind === 'bind') mounts.push({ destination: parsed.destination, type: 'bind', source: parsed.source, options: parsed.options });
    else if (parsed.kind === 'named') volumes.push({ Name: parsed.name, Dest: parsed.destination, Options: parsed.options });
    else volumes.push({ Name: '', Dest: parsed.destination, Options: parsed.options, IsAnonymous: true });
  });

  // Anonymous volumes from Config.Volumes, unless a bind or mount already covers the path (compose v2 sends both).
  for (const dest of Object.keys(body.Volumes ?? {})) {
    if (destinations.has(dest) || destinations.has(dest.replace(/\/+$/, ''))) continue;
    volumes.push({ Name: '', Dest: dest, Options: [], IsAnonymous: true });
  }

  for (const [dest, optionText] of Object.entries(hc.Tmpfs ?? {})) {
    const options = optionText ? optionText.split(',').filter((o) => o !== '') : [];
    mounts.push({ destination: dest, type: 'tmpfs', source: 'tmpfs', options });
  }
  return { mounts, volumes };
}

function securityOptions(list: readonly string[] | null | undefined, spec: SpecGenerator): void {
  for (const raw of list ?? []) {
    const [key, ...rest] = raw.includes('=') ? raw.split('=') : raw.split(':');
    const value = rest.join(raw.includes('=') ? '=' : ':');
    switch (key) {
      case 'no-new-privileges':
        spec.no_new_privileges = value === '' || value === 'true';
        break;
      case 'seccomp':
        spec.seccomp_profile_path = value;
        break;
      case 'apparmor':
        spec.apparmor_profile = value;
        break;
      case 'label':
        spec.selinux_opts = [...(spec.selinux_opts ?? []), value];
        break;
      case 'mask':
        spec.mask = [...(spec.mask ?? []), ...value.split(':').filter((p) => p !== '')];
        break;
      case 'unmask':
        spec.unmask = [...(spec.unmask ?? []), ...value.split(':').filter((p) => p !== '')];
        break;
      case 'proc-opts':
        spec.procfs_opts = value.split(',').filter((p) => p !== '');
        break;
      default:
        bad(`HostConfig.SecurityOpt: invalid --security-opt "${raw}"`);
    }
  }
}

function healthConfig(hc: DockerCreateBody['Healthcheck']): HealthConfig | undefined {
  if (!hc || !hc.Test || hc.Test.length === 0) return undefined;
  return {
    Test: [...hc.Test],
    Interval: hc.Interval && hc.Interval > 0 ? hc.Interval : HEALTH_DEFAULTS.Interval,
    Timeout: hc.Timeout && hc.Timeout > 0 ? hc.Timeout : HEALTH_DEFAULTS.Timeout,
    StartPeriod: hc.StartPeriod && hc.StartPeriod > 0 ? hc.StartPeriod : HEALTH_DEFAULTS.StartPeriod,
    Retries: hc.Retries && hc.Retries > 0 ? hc.Retries : HEALTH_DEFAULTS.Retries,
  };
}

/** Converts a Docker create body; throws BadRequestError naming the Docker field for bad input. */
export function dockerToSpecgen(body: DockerCreateBody, opts: DockerConvertOptions = {}): SpecGenerator {
  const hc: DockerHostConfig = body.HostConfig ?? {};
  if (hc.Links && hc.Links.length > 0) bad('HostConfig.Links: bad parameter: Link is not supported');
  const image = opts.image ?? body.Image ?? '';
  if (!image) bad('Image: no image specified');

  const spec: SpecGenerator = { image, raw_image_name: body.Image ?? image };
  if (opts.name) spec.name = opts.name;

  const entrypoint = strSlice(body.Entrypoint);
  if (entrypoint && entrypoint.length > 0) spec.entrypoint = entrypoint;
  const cmd = strSlice(body.Cmd);
  if (cmd && cmd.length > 0) spec.command = cmd;

  const env: Record<string, string> = {};
  for (const entry of body.Env ?? []) {
    const eq = entry.indexOf('=');
    // "NAME" alone means "take it from the daemon's environment" in Docker; podserve does not leak its own.
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  if (Object.keys(env).length) spec.env = env;
  if (body.EnvMerge?.length) spec.envmerge = [...body.EnvMerge];
  if (body.UnsetEnv?.length) spec.unsetenv = [...body.UnsetEnv];
  if (body.UnsetEnvAll) spec.unsetenvall = true;

  if (body.WorkingDir) spec.work_dir = body.WorkingDir;
  spec.create_working_dir = true; // moby always creates the working directory
  if (body.User) spec.user = body.User;
  if (body.Labels && Object.keys(body.Labels).length) spec.labels = { ...body.Labels };
  spec.terminal = body.Tty === true;
  spec.stdin = body.OpenStdin === true;
  if (body.Hostname) spec.hostname = body.Hostname;
  if (body.StopSignal) spec.stop_signal = parseSignal(body.StopSignal, 'StopSignal');
  if (body.StopTimeout !== undefined && body.StopTimeout !== null) {
    if (body.StopTimeout < 0) bad('StopTimeout: must not be negative');
    spec.stop_timeout = body.StopTimeout;
  }
  const health = healthConfig(body.Healthcheck);
  if (health) spec.healthconfig = health;

  const annotations: Record<string, string> = { 'io.kubernetes.cri-o.TTY': body.Tty ? 'true' : 'false', ...(hc.Annotations ?? {}) };
  spec.annotations = annotations;

  // HostConfig
  const { mounts, volumes } = mountsAndVolumes(body, hc);
  if (mounts.length) spec.mounts = mounts;
  if (volumes.length) spec.volumes = volumes;
  if (hc.VolumesFrom?.length) spec.volumes_from = [...hc.VolumesFrom];

  const res = dockerResources(hc);
  if (res) spec.resource_limits = res;
  if (hc.CapAdd?.length) spec.cap_add = [...hc.CapAdd];
  if (hc.CapDrop?.length) spec.cap_drop = [...hc.CapDrop];
  if (hc.Privileged) spec.privileged = true;
  if (hc.ReadonlyRootfs) {
    spec.read_only_filesystem = true;
    // Podman's compat path keeps /tmp, /var/tmp and /run writable (read_only_tmpfs defaults to true).
    for (const dest of ['/tmp', '/var/tmp', '/run']) {
      const covered = (spec.mounts ?? []).some((m) => m.destination === dest) || (spec.volumes ?? []).some((v) => v.Dest === dest);
      if (!covered) {
        spec.mounts = [...(spec.mounts ?? []), { destination: dest, type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'nosuid', 'nodev', 'tmpcopyup'] }];
      }
    }
  }
  if (hc.AutoRemove) spec.remove = true;
  if (hc.Init) spec.init = true;
  if (hc.OomScoreAdj !== undefined) spec.oom_score_adj = hc.OomScoreAdj;
  if (hc.ShmSize && hc.ShmSize > 0) spec.shm_size = hc.ShmSize;
  if (hc.Sysctls && Object.keys(hc.Sysctls).length) spec.sysctl = { ...hc.Sysctls };
  if (hc.GroupAdd?.length) spec.groups = [...hc.GroupAdd];
  if (hc.CgroupParent) spec.cgroup_parent = hc.CgroupParent;
  if (hc.Runtime) spec.oci_runtime = hc.Runtime;
  securityOptions(hc.SecurityOpt, spec);
  if (hc.MaskedPaths?.length) spec.mask = [...(spec.mask ?? []), ...hc.MaskedPaths];

  if (hc.RestartPolicy?.Name) {
    spec.restart_policy = hc.RestartPolicy.Name;
    if (hc.RestartPolicy.Name === 'on-failure') {
      const retries = hc.RestartPolicy.MaximumRetryCount ?? 0;
      if (retries < 0) bad('HostConfig.RestartPolicy.MaximumRetryCount: must not be negative');
      spec.restart_tries = retries;
    }
  }

  if (hc.Ulimits?.length) {
    spec.r_limits = hc.Ulimits.map((u, i) => {
      if (u.Soft < 0 || u.Hard < 0) bad(`HostConfig.Ulimits[${i}]: limits must not be negative`);
      if (u.Soft > u.Hard) bad(`HostConfig.Ulimits[${i}]: ulimit soft limit must be less than or equal to hard limit: ${u.Soft} > ${u.Hard}`);
      return { type: u.Name, soft: u.Soft, hard: u.Hard };
    });
  }

  if (hc.LogConfig?.Type) {
    spec.log_configuration = { driver: hc.LogConfig.Type, ...(hc.LogConfig.Config && Object.keys(hc.LogConfig.Config).length ? { options: { ...hc.LogConfig.Config } } : {}) };
  }

  if (hc.Devices?.length) {
    spec.devices = hc.Devices.map((d, i) => {
      if (!d.PathOnHost) bad(`HostConfig.Devices[${i}].PathOnHost: must be set`);
      const perms = d.CgroupPermissions || 'rwm';
      return { path: `${d.PathOnHost}:${d.PathInContainer || d.PathOnHost}:${perms}` };
    });
  }

  // Namespaces
  const pidns = parseNamespaceMode(hc.PidMode, 'HostConfig.PidMode');
  if (pidns) spec.pidns = pidns;
  const ipcns = parseNamespaceMode(hc.IpcMode, 'HostConfig.IpcMode');
  if (ipcns) spec.ipcns = ipcns;
  const utsns = parseNamespaceMode(hc.UTSMode, 'HostConfig.UTSMode');
  if (utsns) spec.utsns = utsns;
  const userns = parseNamespaceMode(hc.UsernsMode, 'HostConfig.UsernsMode');
  if (userns) spec.userns = userns;
  const cgroupns = parseNamespaceMode(hc.CgroupnsMode, 'HostConfig.CgroupnsMode');
  if (cgroupns) spec.cgroupns = cgroupns;

  // Network
  const net = networkMode(hc.NetworkMode);
  spec.netns = net.netns;
  const networks: Record<string, PerNetworkOptions> = {};
  for (const name of net.networks) networks[name] = {};
  for (const [name, endpoint] of Object.entries(body.NetworkingConfig?.EndpointsConfig ?? {})) {
    // Docker's generic names stand for the default network or a mode (the docker CLI always sends one).
    if (['default', 'bridge', 'host', 'none'].includes(name)) continue;
    const options: PerNetworkOptions = {};
    if (endpoint?.Aliases?.length) options.aliases = [...endpoint.Aliases];
    const ips = [endpoint?.IPAddress, endpoint?.IPAMConfig?.IPv4Address, endpoint?.IPAMConfig?.IPv6Address].filter((ip): ip is string => !!ip);
    if (ips.length) options.static_ips = ips;
    if (endpoint?.MacAddress) options.static_mac = endpoint.MacAddress;
    networks[name] = options;
  }
  if (Object.keys(networks).length) spec.Networks = networks;

  const portmappings: PortMapping[] = [];
  for (const [port, bindings] of Object.entries(hc.PortBindings ?? {})) {
    const [portText, proto = 'tcp'] = port.split('/');
    const containerPort = Number(portText);
    if (!Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535) bad(`HostConfig.PortBindings: invalid port "${port}"`);
    for (const b of bindings ?? []) {
      const hostPort = b.HostPort ? Number(b.HostPort) : 0;
      if (!Number.isInteger(hostPort) || hostPort < 0 || hostPort > 65535) bad(`HostConfig.PortBindings: invalid host port "${b.HostPort ?? ''}"`);
      portmappings.push({ container_port: containerPort, host_port: hostPort, host_ip: b.HostIp ?? '', protocol: proto, range: 0 });
    }
  }
  if (portmappings.length) spec.portmappings = portmappings;
  const expose: Record<string, string> = {};
  for (const port of Object.keys(body.ExposedPorts ?? {})) {
    const [portText, proto = 'tcp'] = port.split('/');
    if (portText) expose[portText] = proto;
  }
  if (Object.keys(expose).length) spec.expose = expose;
  if (hc.PublishAllPorts) spec.publish_image_ports = true;
  if (hc.Dns?.length) spec.dns_server = [...hc.Dns];
  if (hc.DnsSearch?.length) spec.dns_search = [...hc.DnsSearch];
  if (hc.DnsOptions?.length) spec.dns_option = [...hc.DnsOptions];
  if (hc.ExtraHosts?.length) spec.hostadd = [...hc.ExtraHosts];
  return spec;
}
