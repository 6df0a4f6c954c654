/**
 * Podman's SpecGenerator (body of POST /libpod/containers/create, pkg/specgen/specgen.go at v4.3.1)
 * and the LinuxResources body of POST /libpod/containers/{name}/update.
 * JSON names are Podman's (snake_case, with its few exceptions such as `Networks`, `healthconfig`,
 * `containerCreateCommand`). Unknown fields are accepted; wrong types are rejected; semantic checks
 * (capability names, mount types, signals…) happen in src/spec/oci.ts.
 */
import { deepNullable } from './nullable.js';

// ---------------------------------------------------------------- TypeScript shapes

export type NamespaceMode =
  | '' | 'default' | 'host' | 'path' | 'container' | 'pod' | 'private' | 'shareable' | 'none'
  | 'bridge' | 'slirp4netns' | 'keep-id' | 'no-map' | 'auto';

export interface Namespace {
  nsmode?: NamespaceMode | string;
  value?: string;
}

export interface SpecMount {
  destination?: string;
  type?: string;
  source?: string;
  options?: string[] | null;
  uidMappings?: unknown;
  gidMappings?: unknown;
}

export interface NamedVolume {
  Name?: string;
  Dest?: string;
  Options?: string[] | null;
  IsAnonymous?: boolean;
}

export interface OverlayVolume {
  destination?: string;
  source?: string;
  options?: string[] | null;
}

export interface ImageVolume {
  Source?: string;
  Destination?: string;
  ReadWrite?: boolean;
}

export interface LinuxDeviceSpec {
  path: string;
  type?: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface DeviceCgroupRule {
  allow?: boolean;
  type?: string;
  major?: number | null;
  minor?: number | null;
  access?: string;
}

export interface LinuxMemoryResources {
  limit?: number | null;
  reservation?: number | null;
  swap?: number | null;
  kernel?: number | null;
  kernelTCP?: number | null;
  swappiness?: number | null;
  disableOOMKiller?: boolean | null;
  useHierarchy?: boolean | null;
}

export interface LinuxCpuResources {
  shares?: number | null;
  quota?: number | null;
  period?: number | null;
  realtimeRuntime?: number | null;
  realtimePeriod?: number | null;
  cpus?: string;
  mems?: string;
}

export interface LinuxThrottleDevice {
  major?: number;
  minor?: number;
  rate?: number;
}

export interface LinuxWeightDevice {
  major?: number;
  minor?: number;
  weight?: number | null;
  leafWeight?: number | null;
}

export interface LinuxBlockIO {
  weight?: number | null;
  leafWeight?: number | null;
  weightDevice?: LinuxWeightDevice[] | null;
  throttleReadBpsDevice?: LinuxThrottleDevice[] | null;
  throttleWriteBpsDevice?: LinuxThrottleDevice[] | null;
  throttleReadIOPSDevice?: LinuxThrottleDevice[] | null;
  throttleWriteIOPSDevice?: LinuxThrottleDevice[] | null;
}

/** runtime-spec LinuxResources as Podman accepts it (resource_limits, and the update body). */
export interface LinuxResources {
  devices?: DeviceCgroupRule[] | null;
  memory?: LinuxMemoryResources | null;
  cpu?: LinuxCpuResources | null;
  pids?: { limit?: number } | null;
  blockIO?: LinuxBlockIO | null;
  hugepageLimits?: Array<{ pageSize?: string; limit?: number }> | null;
  network?: { classID?: number | null; priorities?: Array<{ name?: string; priority?: number }> | null } | null;
  rdma?: Record<string, { hcaHandles?: number | null; hcaObjects?: number | null }> | null;
  unified?: Record<string, string> | null;
}

export interface PosixRlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface LogConfig {
  driver?: string;
  path?: string;
  size?: number;
  options?: Record<string, string> | null;
}

/** Durations are integer nanoseconds, as Go's time.Duration marshals them. */
export interface HealthConfig {
  Test?: string[] | null;
  StartPeriod?: number;
  Interval?: number;
  Timeout?: number;
  Retries?: number;
}

export interface PortMapping {
  host_ip?: string;
  container_port?: number;
  host_port?: number;
  range?: number;
  protocol?: string;
}

export interface PerNetworkOptions {
  static_ips?: string[] | null;
  aliases?: string[] | null;
  static_mac?: string;
  interface_name?: string;
}

export interface SecretSpec {
  Source?: string;
  Target?: string;
  UID?: number;
  GID?: number;
  Mode?: number;
}

/** Podman's SpecGenerator, the body of POST /libpod/containers/create. */
export interface SpecGenerator {
  // ContainerBasicConfig
  name?: string;
  pod?: string;
  entrypoint?: string[] | null;
  command?: string[] | null;
  env_host?: boolean;
  httpproxy?: boolean;
  env?: Record<string, string> | null;
  terminal?: boolean;
  stdin?: boolean;
  labels?: Record<string, string> | null;
  annotations?: Record<string, string> | null;
  /** Podman sends a number (syscall.Signal); a name is accepted too. */
  stop_signal?: number | string | null;
  stop_timeout?: number | null;
  timeout?: number;
  log_configuration?: LogConfig | null;
  conmon_pid_file?: string;
  raw_image_name?: string;
  image_os?: string;
  image_arch?: string;
  image_variant?: string;
  restart_policy?: string;
  restart_tries?: number | null;
  oci_runtime?: string;
  systemd?: string;
  sdnotifyMode?: string;
  namespace?: string;
  pidns?: Namespace | null;
  utsns?: Namespace | null;
  hostname?: string;
  hostusers?: string[] | null;
  sysctl?: Record<string, string> | null;
  remove?: boolean;
  containerCreateCommand?: string[] | null;
  timezone?: string;
  dependencyContainers?: string[] | null;
  secret_env?: Record<string, string> | null;
  init_container_type?: string;
  personality?: { domain?: string; flags?: string[] | null } | null;
  envmerge?: string[] | null;
  unsetenv?: string[] | null;
  unsetenvall?: boolean;
  manage_password?: boolean | null;
  passwd_entry?: string;
  // ContainerStorageConfig
  image?: string;
  rootfs?: string;
  rootfs_overlay?: boolean;
  image_volume_mode?: string;
  volumes_from?: string[] | null;
  init?: boolean;
  init_path?: string;
  mounts?: SpecMount[] | null;
  volumes?: NamedVolume[] | null;
  overlay_volumes?: OverlayVolume[] | null;
  image_volumes?: ImageVolume[] | null;
  devices?: LinuxDeviceSpec[] | null;
  device_cgroup_rule?: DeviceCgroupRule[] | null;
  devices_from?: string[] | null;
  host_device_list?: LinuxDeviceSpec[] | null;
  ipcns?: Namespace | null;
  shm_size?: number | null;
  work_dir?: string;
  create_working_dir?: boolean;
  storage_opts?: Record<string, string> | null;
  rootfs_propagation?: string;
  secrets?: SecretSpec[] | null;
  volatile?: boolean;
  chroot_directories?: string[] | null;
  // ContainerSecurityConfig
  privileged?: boolean;
  user?: string;
  groups?: string[] | null;
  cap_add?: string[] | null;
  cap_drop?: string[] | null;
  selinux_opts?: string[] | null;
  apparmor_profile?: string;
  seccomp_policy?: string;
  seccomp_profile_path?: string;
  no_new_privileges?: boolean;
  userns?: Namespace | null;
  idmappings?: Record<string, unknown> | null;
  read_only_filesystem?: boolean;
  umask?: string;
  procfs_opts?: string[] | null;
  mask?: string[] | null;
  unmask?: string[] | null;
  // ContainerCgroupConfig
  cgroupns?: Namespace | null;
  cgroups_mode?: string;
  cgroup_parent?: string;
  // ContainerNetworkConfig
  netns?: Namespace | null;
  portmappings?: PortMapping[] | null;
  publish_image_ports?: boolean;
  expose?: Record<string, string> | null;
  Networks?: Record<string, PerNetworkOptions> | null;
  cni_networks?: string[] | null;
  use_image_resolve_conf?: boolean;
  dns_server?: string[] | null;
  dns_search?: string[] | null;
  dns_option?: string[] | null;
  use_image_hosts?: boolean;
  hostadd?: string[] | null;
  network_options?: Record<string, string[]> | null;
  // ContainerResourceConfig
  resource_limits?: LinuxResources | null;
  r_limits?: PosixRlimit[] | null;
  oom_score_adj?: number | null;
  weightDevice?: Record<string, LinuxWeightDevice> | null;
  throttleReadBpsDevice?: Record<string, LinuxThrottleDevice> | null;
  throttleWriteBpsDevice?: Record<string, LinuxThrottleDevice> | null;
  throttleReadIOPSDevice?: Record<string, LinuxThrottleDevice> | null;
  throttleWriteIOPSDevice?: Record<string, LinuxThrottleDevice> | null;
  unified?: Record<string, string> | null;
  cpu_period?: number;
  cpu_quota?: number;
  // ContainerHealthCheckConfig
  healthconfig?: HealthConfig | null;
  health_check_on_failure_action?: number;
}

// ---------------------------------------------------------------- JSON Schemas

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const int = { type: 'integer' } as const;
const uint = { type: 'integer', minimum: 0 } as const;
const strArray = { type: 'array', items: { type: 'string' } } as const;
const strMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

const namespaceSchema = {
  type: 'object',
  properties: { nsmode: str, value: str },
} as const;

const throttleDeviceSchema = {
  type: 'object',
  properties: { major: int, minor: int, rate: uint },
} as const;

const weightDeviceSchema = {
  type: 'object',
  properties: { major: int, minor: int, weight: uint, leafWeight: uint },
} as const;

const deviceCgroupSchema = {
  type: 'object',
  properties: { allow: bool, type: str, major: int, minor: int, access: str },
} as const;

/** runtime-spec LinuxResources (camelCase keys). Memory values may be -1 (unlimited). */
export const linuxResourcesSchema = {
  type: 'object',
  properties: {
    devices: { type: 'array', items: deviceCgroupSchema },
    memory: {
      type: 'object',
      properties: {
        limit: int, reservation: int, swap: int, kernel: int, kernelTCP: int,
        swappiness: uint, disableOOMKiller: bool, useHierarchy: bool,
      },
    },
    cpu: {
      type: 'object',
      properties: {
        shares: uint, quota: int, period: uint, realtimeRuntime: int, realtimePeriod: uint, cpus: str, mems: str,
      },
    },
    pids: { type: 'object', properties: { limit: int } },
    blockIO: {
      type: 'object',
      properties: {
        weight: uint,
        leafWeight: uint,
        weightDevice: { type: 'array', items: weightDeviceSchema },
        throttleReadBpsDevice: { type: 'array', items: throttleDeviceSchema },
        throttleWriteBpsDevice: { type: 'array', items: throttleDeviceSchema },
        throttleReadIOPSDevice: { type: 'array', items: throttleDeviceSchema },
        throttleWriteIOPSDevice: { type: 'array', items: throttleDeviceSchema },
      },
    },
    hugepageLimits: {
      type: 'array',
      items: { type: 'object', properties: { pageSize: str, limit: uint } },
    },
    network: {
      type: 'object',
      properties: {
        classID: uint,
        priorities: { type: 'array', items: { type: 'object', properties: { name: str, priority: uint } } },
      },
    },
    rdma: { type: 'object', additionalProperties: { type: 'object' } },
    unified: strMap,
  },
} as const;

const mountSchema = {
  type: 'object',
  properties: { destination: str, type: str, source: str, options: strArray },
} as const;

const deviceSchema = {
  type: 'object',
  properties: { path: str, type: str, major: int, minor: int, fileMode: uint, uid: uint, gid: uint },
} as const;

const rawSpecGeneratorSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    // ContainerBasicConfig
    name: str,
    pod: str,
    entrypoint: strArray,
    command: strArray,
    env_host: bool,
    httpproxy: bool,
    env: strMap,
    terminal: bool,
    stdin: bool,
    labels: strMap,
    annotations: strMap,
    stop_signal: { anyOf: [int, str] },
    stop_timeout: uint,
    timeout: uint,
    log_configuration: {
      type: 'object',
      properties: { driver: str, path: str, size: int, options: strMap },
    },
    conmon_pid_file: str,
    raw_image_name: str,
    image_os: str,
    image_arch: str,
    image_variant: str,
    restart_policy: str,
    restart_tries: uint,
    oci_runtime: str,
    systemd: str,
    sdnotifyMode: str,
    namespace: str,
    pidns: namespaceSchema,
    utsns: namespaceSchema,
    hostname: str,
    hostusers: strArray,
    sysctl: strMap,
    remove: bool,
    containerCreateCommand: strArray,
    timezone: str,
    dependencyContainers: strArray,
    secret_env: strMap,
    init_container_type: str,
    personality: { type: 'object', properties: { domain: str, flags: strArray } },
    envmerge: strArray,
    unsetenv: strArray,
    unsetenvall: bool,
    manage_password: bool,
    passwd_entry: str,
    // ContainerStorageConfig
    image: str,
    rootfs: str,
    rootfs_overlay: bool,
    image_volume_mode: str,
    volumes_from: strArray,
    init: bool,
    init_path: str,
    mounts: { type: 'array', items: mountSchema },
    volumes: {
      type: 'array',
      items: { type: 'object', properties: { Name: str, Dest: str, Options: strArray, IsAnonymous: bool } },
    },
    overlay_volumes: {
      type: 'array',
      items: { type: 'object', properties: { destination: str, source: str, options: strArray } },
    },
    image_volumes: {
      type: 'array',
      items: { type: 'object', properties: { Source: str, Destination: str, ReadWrite: bool } },
    },
    devices: { type: 'array', items: deviceSchema },
    device_cgroup_rule: { type: 'array', items: deviceCgroupSchema },
    devices_from: strArray,
    host_device_list: { type: 'array', items: deviceSchema },
    ipcns: namespaceSchema,
    shm_size: uint,
    work_dir: str,
    create_working_dir: bool,
    storage_opts: strMap,
    rootfs_propagation: str,
    secrets: {
      type: 'array',
      items: { type: 'object', properties: { Source: str, Target: str, UID: uint, GID: uint, Mode: uint } },
    },
    volatile: bool,
    chroot_directories: strArray,
    // ContainerSecurityConfig
    privileged: bool,
    user: str,
    groups: strArray,
    cap_add: strArray,
    cap_drop: strArray,
    selinux_opts: strArray,
    apparmor_profile: str,
    seccomp_policy: str,
    seccomp_profile_path: str,
    no_new_privileges: bool,
    userns: namespaceSchema,
    idmappings: { type: 'object' },
    read_only_filesystem: bool,
    umask: str,
    procfs_opts: strArray,
    mask: strArray,
    unmask: strArray,
    // ContainerCgroupConfig
    cgroupns: namespaceSchema,
    cgroups_mode: str,
    cgroup_parent: str,
    // ContainerNetworkConfig
    netns: namespaceSchema,
    portmappings: {
      type: 'array',
      items: {
        type: 'object',
        properties: { host_ip: str, container_port: uint, host_port: uint, range: uint, protocol: str },
      },
    },
    publish_image_ports: bool,
    expose: strMap,
    Networks: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: { static_ips: strArray, aliases: strArray, static_mac: str, interface_name: str },
      },
    },
    cni_networks: strArray,
    use_image_resolve_conf: bool,
    dns_server: strArray,
    dns_search: strArray,
    dns_option: strArray,
    use_image_hosts: bool,
    hostadd: strArray,
    network_options: { type: 'object', additionalProperties: strArray },
    // ContainerResourceConfig
    resource_limits: linuxResourcesSchema,
    r_limits: {
      type: 'array',
      items: {
        type: 'object',
        properties: { type: str, hard: uint, soft: uint },
        required: ['type'],
      },
    },
    oom_score_adj: { type: 'integer', minimum: -1000, maximum: 1000 },
    weightDevice: { type: 'object', additionalProperties: weightDeviceSchema },
    throttleReadBpsDevice: { type: 'object', additionalProperties: throttleDeviceSchema },
    throttleWriteBpsDevice: { type: 'object', additionalProperties: throttleDeviceSchema },
    throttleReadIOPSDevice: { type: 'object', additionalProperties: throttleDeviceSchema },
    throttleWriteIOPSDevice: { type: 'object', additionalProperties: throttleDeviceSchema },
    unified: strMap,
    cpu_period: uint,
    cpu_quota: int,
    // ContainerHealthCheckConfig
    healthconfig: {
      type: 'object',
      properties: { Test: strArray, StartPeriod: int, Interval: int, Timeout: int, Retries: int },
    },
    health_check_on_failure_action: int,
  },
} as const;

/** JSON Schema for the SpecGenerator body (every property also accepts null, as Go does). */
export const specGeneratorSchema = deepNullable(rawSpecGeneratorSchema);

/** Body of POST /libpod/containers/{name}/update: a runtime-spec LinuxResources object. */
export const containerUpdateSchema = deepNullable(linuxResourcesSchema);

export type ContainerUpdateBody = LinuxResources;
