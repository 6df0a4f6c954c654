/**
 * Reply shapes for containers: Podman's InspectContainerData and ListContainer (libpod), and Docker's
 * ContainerJSON and container summary (compat), built from the engine's records.
 */
import type { Container } from '../../src/engine/types.js';
import { ZERO_TIME } from '../../src/engine/types.js';

type Json = Record<string, unknown>;

const SECONDS_AT_ZERO_TIME = -62135596800;

function unixSeconds(rfc3339: string): number {
  if (rfc3339 === ZERO_TIME) return SECONDS_AT_ZERO_TIME;
  return Math.floor(Date.parse(rfc3339) / 1000);
}

function pidMode(c: Container): string {
  return c.config.spec.pidns?.nsmode === 'host' ? 'host' : 'private';
}

function networkMode(c: Container): string {
  const mode = c.config.spec.netns?.nsmode;
  if (mode === 'host') return 'host';
  if (mode === 'none') return 'none';
  return 'private';
}

function mountsOf(c: Container): Json[] {
  return (c.config.spec.mounts ?? []).map((m) => ({
    Type: m.type ?? 'bind',
    Source: m.source ?? '',
    Destination: m.destination,
    Driver: '',
    Mode: '',
    Options: m.options ?? [],
    RW: !(m.options ?? []).includes('ro'),
    Propagation: (m.options ?? []).find((o) => /^r?(shared|slave|private)$/.test(o)) ?? '',
  }));
}

function ulimits(c: Container): Json[] {
  return c.config.rlimits.map((r) => ({ Name: r.type, Soft: r.soft, Hard: r.hard }));
}

/** Podman's "Up 3 seconds" / "Exited (0) 2 seconds ago" phrasing for lists. */
export function statusText(c: Container, now = Date.now()): string {
  const ago = (t: string): string => humanDuration(now - Date.parse(t));
  switch (c.state.status) {
    case 'running':
      return `Up ${ago(c.state.startedAt)}`;
    case 'paused':
      return `Up ${ago(c.state.startedAt)} (Paused)`;
    case 'exited':
    case 'stopped':
      return c.state.finishedAt === ZERO_TIME ? 'Exited' : `Exited (${c.state.exitCode}) ${ago(c.state.finishedAt)} ago`;
    case 'created':
    case 'configured':
      return 'Created';
    default:
      return c.state.status;
  }
}

function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(m / 60);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  return `${Math.round(h / 24)} days`;
}

function stateObject(c: Container): Json {
  const { state } = c;
  const status = state.status === 'configured' ? 'created' : state.status;
  return {
    OciVersion: '1.0.2-dev',
    Status: status,
    Running: state.status === 'running',
    Paused: state.status === 'paused',
    Restarting: false,
    OOMKilled: state.oomKilled,
    Dead: false,
    Pid: state.pid,
    ConmonPid: state.conmonPid,
    ExitCode: state.exitCode,
    Error: state.error,
    StartedAt: state.startedAt,
    FinishedAt: state.finishedAt,
    Health: { Status: '', FailingStreak: 0, Log: null },
    CgroupPath: `/podserve/${c.id}`,
    CheckpointedAt: state.checkpointedAt ?? ZERO_TIME,
    RestoredAt: state.restoredAt ?? ZERO_TIME,
    ...(state.checkpointed ? { Checkpointed: true, CheckpointPath: state.checkpointPath ?? '', CheckpointLog: state.checkpointLog ?? '' } : {}),
    ...(state.restored ? { Restored: true } : {}),
  };
}

function resources(c: Container): Json {
  const r = (c.config.spec.resource_limits ?? {}) as {
    memory?: { limit?: number; reservation?: number; swap?: number };
    cpu?: { shares?: number; quota?: number; period?: number; cpus?: string };
    pids?: { limit?: number };
  };
  return {
    CpuShares: r.cpu?.shares ?? 0,
    Memory: r.memory?.limit ?? 0,
    MemoryReservation: r.memory?.reservation ?? 0,
    MemorySwap: r.memory?.swap ?? 0,
    NanoCpus: r.cpu?.quota && r.cpu?.period ? Math.round((r.cpu.quota / r.cpu.period) * 1e9) : 0,
    CpuPeriod: r.cpu?.period ?? 0,
    CpuQuota: r.cpu?.quota ?? 0,
    PidsLimit: r.pids?.limit ?? 2048,
  };
}

/** Podman's InspectContainerData. */
export function libpodInspect(c: Container, opts: { execIds?: string[]; sizeRw?: number; sizeRootFs?: number } = {}): Json {
  const { config } = c;
  const res = resources(c);
  return {
    Id: c.id,
    Created: config.created,
    Path: config.path,
    Args: config.args,
    State: stateObject(c),
    Image: config.imageId,
    ImageDigest: config.imageDigest,
    ImageName: config.imageName,
    Rootfs: '',
    Pod: '',
    ResolvConfPath: `${config.runDir}/resolv.conf`,
    HostnamePath: `${config.runDir}/hostname`,
    HostsPath: `${config.runDir}/hosts`,
    StaticDir: config.bundleDir,
    OCIConfigPath: `${config.bundleDir}/config.json`,
    OCIRuntime: 'runc',
    ConmonPidFile: `${config.runDir}/conmon.pid`,
    PidFile: `${config.runDir}/pidfile`,
    Name: c.name,
    RestartCount: c.state.restartCount,
    Driver: 'overlay',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    EffectiveCaps: config.effectiveCaps,
    BoundingCaps: config.boundingCaps,
    ExecIDs: opts.execIds ?? [],
    GraphDriver: {
      Name: 'overlay',
      Data: {
        MergedDir: `${config.containerDir}/merged`,
        UpperDir: `${config.containerDir}/upper`,
        WorkDir: `${config.containerDir}/work`,
      },
    },
    ...(opts.sizeRw !== undefined ? { SizeRw: opts.sizeRw, SizeRootFs: opts.sizeRootFs ?? 0 } : {}),
    Mounts: mountsOf(c),
    Dependencies: [],
    NetworkSettings: {
      EndpointID: '',
      Gateway: '',
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      MacAddress: '',
      Bridge: '',
      SandboxID: '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: {},
      SandboxKey: '',
    },
    Namespace: '',
    IsInfra: false,
    IsService: false,
    Config: {
      Hostname: config.hostname,
      Domainname: '',
      User: config.user,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: config.terminal,
      OpenStdin: config.stdin,
      StdinOnce: false,
      Env: config.env,
      Cmd: config.command,
      Image: config.imageName,
      Volumes: null,
      WorkingDir: config.workDir,
      Entrypoint: config.entrypoint.join(' '),
      OnBuild: null,
      Labels: config.labels,
      Annotations: config.annotations,
      StopSignal: config.stopSignal,
      HealthcheckOnFailureAction: 'none',
      CreateCommand: config.spec.containerCreateCommand ?? [],
      Umask: config.spec.umask ?? '0022',
      Timeout: config.spec.timeout ?? 0,
      StopTimeout: config.stopTimeout,
      Passwd: true,
      sdNotifyMode: 'container',
    },
    HostConfig: {
      Binds: (config.spec.mounts ?? [])
        .filter((m) => (m.type ?? 'bind') === 'bind')
        .map((m) => `${m.source}:${m.destination}${(m.options ?? []).length ? `:${(m.options ?? []).join(',')}` : ''}`),
      CgroupManager: 'cgroupfs',
      CgroupMode: 'host',
      ContainerIDFile: '',
      LogConfig: { Type: config.logDriver, Config: null, Path: config.logPath, Tag: '', Size: '0B' },
      NetworkMode: networkMode(c),
      PortBindings: {},
      RestartPolicy: { Name: config.restartPolicy, MaximumRetryCount: config.restartRetries },
      AutoRemove: config.autoRemove,
      VolumeDriver: '',
      VolumesFrom: null,
      CapAdd: config.spec.cap_add ?? [],
      CapDrop: config.spec.cap_drop ?? [],
      Dns: [],
      DnsOptions: [],
      DnsSearch: [],
      ExtraHosts: config.spec.hostadd ?? [],
      GroupAdd: config.spec.groups ?? [],
      IpcMode: 'shareable',
      Cgroup: '',
      Cgroups: 'default',
      Links: null,
      OomScoreAdj: config.spec.oom_score_adj ?? 0,
      PidMode: pidMode(c),
      Privileged: config.spec.privileged ?? false,
      PublishAllPorts: false,
      ReadonlyRootfs: config.spec.read_only_filesystem ?? false,
      SecurityOpt: [],
      Tmpfs: Object.fromEntries(
        (config.spec.mounts ?? []).filter((m) => m.type === 'tmpfs').map((m) => [m.destination, (m.options ?? []).join(',')]),
      ),
      UTSMode: 'private',
      UsernsMode: '',
      ShmSize: config.spec.shm_size ?? 65536000,
      Runtime: 'oci',
      ConsoleSize: [0, 0],
      Isolation: '',
      ...res,
      CgroupParent: '',
      BlkioWeight: 0,
      BlkioWeightDevice: null,
      BlkioDeviceReadBps: null,
      BlkioDeviceWriteBps: null,
      BlkioDeviceReadIOps: null,
      BlkioDeviceWriteIOps: null,
      CpuRealtimePeriod: 0,
      CpuRealtimeRuntime: 0,
      CpusetCpus: '',
      CpusetMems: '',
      Devices: [],
      DiskQuota: 0,
      KernelMemory: 0,
      MemorySwappiness: 0,
      OomKillDisable: false,
      Ulimits: ulimits(c),
      CpuCount: 0,
      CpuPercent: 0,
      IOMaximumIOps: 0,
      IOMaximumBandwidth: 0,
      CgroupConf: null,
    },
  };
}

/** One entry of Podman's GET /libpod/containers/json. */
export function libpodListEntry(c: Container, size?: { rw: number; rootFs: number }): Json {
  const { config, state } = c;
  const status = state.status === 'configured' ? 'created' : state.status;
  return {
    AutoRemove: config.autoRemove,
    Command: [...config.entrypoint, ...config.command].length ? [config.path, ...config.args] : [],
    Created: config.created,
    CreatedAt: '',
    Exited: state.status === 'exited' || state.status === 'stopped',
    ExitedAt: unixSeconds(state.finishedAt),
    ExitCode: state.exitCode,
    Id: c.id,
    Image: config.imageName,
    ImageID: config.imageId,
    IsInfra: false,
    Labels: config.labels,
    Mounts: (config.spec.mounts ?? []).map((m) => m.destination),
    Names: [c.name],
    Namespaces: {},
    Networks: [],
    Pid: state.pid,
    Pod: '',
    PodName: '',
    Ports: null,
    Size: size ? { rwSize: size.rw, rootFsSize: size.rootFs } : null,
    StartedAt: unixSeconds(state.startedAt),
    State: status,
    // Podman 4.3.1 leaves it empty; podman-remote formats the status itself (and garbles a given one).
    Status: '',
  };
}

function cpuset(c: Container): { cpus: string; mems: string } {
  const cpu = (c.config.spec.resource_limits as { cpu?: { cpus?: string; mems?: string } } | undefined)?.cpu;
  return { cpus: cpu?.cpus ?? '', mems: cpu?.mems ?? '' };
}

function dockerCapability(name: string): string {
  return name.toUpperCase().replace(/^CAP_/, '');
}

/** Docker's ContainerJSON (GET /containers/{id}/json), with Podman 4.3.1's compat choices where Docker's differ. */
export function dockerInspect(c: Container, opts: { execIds?: string[]; sizeRw?: number; sizeRootFs?: number } = {}): Json {
  const { config, state } = c;
  const res = resources(c);
  const status = state.status === 'configured' ? 'created' : state.status === 'stopped' ? 'exited' : state.status;
  return {
    Id: c.id,
    Created: config.created,
    Path: config.path,
    Args: config.args,
    State: {
      Status: status,
      Running: state.status === 'running' || state.status === 'paused',
      Paused: state.status === 'paused',
      Restarting: false,
      OOMKilled: state.oomKilled,
      Dead: false,
      Pid: state.pid,
      ExitCode: state.exitCode,
      Error: state.error,
      StartedAt: state.startedAt,
      FinishedAt: state.finishedAt,
      // Podman's compat inspect always carries the (empty) health state.
      Health: { Status: '', FailingStreak: 0, Log: null },
    },
    Image: `sha256:${config.imageId}`,
    ResolvConfPath: `${config.runDir}/resolv.conf`,
    HostnamePath: `${config.runDir}/hostname`,
    HostsPath: `${config.runDir}/hosts`,
    LogPath: config.logPath,
    Name: `/${c.name}`,
    RestartCount: state.restartCount,
    Driver: 'overlay',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: opts.execIds ?? [],
    HostConfig: {
      Binds: (config.spec.mounts ?? [])
        .filter((m) => (m.type ?? 'bind') === 'bind')
        .map((m) => `${m.source}:${m.destination}${(m.options ?? []).includes('ro') ? ':ro' : ''}`)
        .sort(),
      ContainerIDFile: '',
      // Docker knows k8s-file as json-file (Podman's compat inspect renames it the same way).
      LogConfig: { Type: config.logDriver === 'k8s-file' ? 'json-file' : config.logDriver, Config: {} },
      NetworkMode: networkMode(c) === 'private' ? 'bridge' : networkMode(c),
      PortBindings: {},
      RestartPolicy: { Name: config.restartPolicy, MaximumRetryCount: config.restartRetries },
      AutoRemove: config.autoRemove,
      VolumeDriver: '',
      VolumesFrom: null,
      // Docker names capabilities without the CAP_ prefix (Podman's compat inspect strips it too).
      CapAdd: (config.spec.cap_add ?? []).map(dockerCapability),
      CapDrop: (config.spec.cap_drop ?? []).map(dockerCapability),
      CgroupnsMode: '',
      Dns: [],
      DnsOptions: [],
      DnsSearch: [],
      ExtraHosts: config.spec.hostadd ?? [],
      GroupAdd: config.spec.groups ?? [],
      IpcMode: 'shareable',
      Cgroup: '',
      Links: null,
      OomScoreAdj: config.spec.oom_score_adj ?? 0,
      PidMode: pidMode(c),
      Privileged: config.spec.privileged ?? false,
      PublishAllPorts: false,
      ReadonlyRootfs: config.spec.read_only_filesystem ?? false,
      SecurityOpt: [],
      UTSMode: config.spec.utsns?.nsmode === 'host' ? 'host' : 'private',
      UsernsMode: '',
      ShmSize: config.spec.shm_size ?? 65536000,
      Runtime: 'runc',
      ConsoleSize: [0, 0],
      Isolation: '',
      ...res,
      CgroupParent: '',
      BlkioWeight: 0,
      BlkioWeightDevice: null,
      BlkioDeviceReadBps: null,
      BlkioDeviceWriteBps: null,
      BlkioDeviceReadIOps: null,
      BlkioDeviceWriteIOps: null,
      CpuRealtimePeriod: 0,
      CpuRealtimeRuntime: 0,
      CpusetCpus: cpuset(c).cpus,
      CpusetMems: cpuset(c).mems,
      Devices: [],
      DeviceCgroupRules: null,
      DeviceRequests: null,
      KernelMemory: 0,
      KernelMemoryTCP: 0,
      MemorySwappiness: 0,
      OomKillDisable: false,
      Ulimits: ulimits(c),
      CpuCount: 0,
      CpuPercent: 0,
      IOMaximumIOps: 0,
      IOMaximumBandwidth: 0,
      MaskedPaths: null,
      ReadonlyPaths: null,
      Init: config.spec.init ?? false,
    },
    GraphDriver: {
      Name: 'overlay',
      // As Podman: the merged directory only while the rootfs is mounted.
      Data: {
        ...(state.mountPoint ? { MergedDir: state.mountPoint } : {}),
        UpperDir: `${config.containerDir}/upper`,
        WorkDir: `${config.containerDir}/work`,
      },
    },
    ...(opts.sizeRw !== undefined ? { SizeRw: opts.sizeRw } : {}),
    SizeRootFs: opts.sizeRootFs ?? 0,
    Mounts: mountsOf(c),
    Config: {
      Hostname: config.hostname,
      Domainname: '',
      User: config.user,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: config.terminal,
      OpenStdin: config.stdin,
      StdinOnce: false,
      Env: config.env,
      Cmd: config.command,
      Image: config.imageName,
      Volumes: null,
      WorkingDir: config.workDir,
      Entrypoint: config.entrypoint,
      OnBuild: null,
      Labels: config.labels,
      StopSignal: String(config.stopSignal),
      StopTimeout: config.stopTimeout,
    },
    NetworkSettings: {
      Bridge: '',
      SandboxID: '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: {},
      SandboxKey: '',
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: '',
      Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      MacAddress: '',
      Networks: {},
    },
  };
}

/** Docker's container summary (GET /containers/json); sizes only when asked (size=1). */
export function dockerListEntry(c: Container, size?: { rw: number; rootFs: number }): Json {
  const { config, state } = c;
  const status = state.status === 'configured' ? 'created' : state.status === 'stopped' ? 'exited' : state.status;
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: config.imageName,
    ImageID: `sha256:${config.imageId}`,
    Command: [config.path, ...config.args].join(' '),
    Created: Math.floor(Date.parse(config.created) / 1000),
    Ports: [],
    ...(size ? { SizeRw: size.rw, SizeRootFs: size.rootFs } : {}),
    Labels: config.labels,
    State: status,
    Status: statusText(c),
    HostConfig: { NetworkMode: networkMode(c) === 'private' ? 'bridge' : networkMode(c) },
    NetworkSettings: { Networks: {} },
    Mounts: mountsOf(c),
  };
}
