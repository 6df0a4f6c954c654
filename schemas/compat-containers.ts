/**
 * Docker's container create body (POST /containers/create): container.Config at the top level plus
 * HostConfig and NetworkingConfig, as Docker Engine API 1.41 defines it (Podman 4.3.1 decodes it into
 * handlers.CreateContainerConfig). Only the fields podserve uses are typed; others pass through.
 * Go clients send null for unset slices, maps and pointers, so every property accepts null.
 */
import { deepNullable } from './nullable.js';

/** Docker's strslice: a JSON array of strings or a single string. */
export type StrSlice = string[] | string | null;

export interface DockerHealthcheck {
  Test?: string[] | null;
  /** Durations in nanoseconds. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface DockerMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean; CreateMountpoint?: boolean } | null;
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string> | null; DriverConfig?: unknown } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

export interface DockerUlimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface DockerDeviceMapping {
  PathOnHost?: string;
  PathInContainer?: string;
  CgroupPermissions?: string;
}

export interface DockerPortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface DockerEndpointSettings {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] | null } | null;
  Links?: string[] | null;
  Aliases?: string[] | null;
  MacAddress?: string;
  IPAddress?: string;
  [other: string]: unknown;
}

export interface DockerHostConfig {
  Binds?: string[] | null;
  ContainerIDFile?: string;
  LogConfig?: { Type?: string; Config?: Record<string, string> | null } | null;
  NetworkMode?: string;
  PortBindings?: Record<string, DockerPortBinding[] | null> | null;
  RestartPolicy?: { Name?: string; MaximumRetryCount?: number } | null;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[] | null;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  CgroupnsMode?: string;
  Dns?: string[] | null;
  DnsOptions?: string[] | null;
  DnsSearch?: string[] | null;
  ExtraHosts?: string[] | null;
  GroupAdd?: string[] | null;
  IpcMode?: string;
  Cgroup?: string;
  Links?: string[] | null;
  OomScoreAdj?: number;
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[] | null;
  StorageOpt?: Record<string, string> | null;
  Tmpfs?: Record<string, string> | null;
  UTSMode?: string;
  UsernsMode?: string;
  ShmSize?: number;
  Sysctls?: Record<string, string> | null;
  Runtime?: string;
  Isolation?: string;
  // Resources
  CpuShares?: number;
  Memory?: number;
  NanoCpus?: number;
  CgroupParent?: string;
  BlkioWeight?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Devices?: DockerDeviceMapping[] | null;
  DeviceCgroupRules?: string[] | null;
  MemoryReservation?: number;
  MemorySwap?: number;
  MemorySwappiness?: number | null;
  OomKillDisable?: boolean | null;
  PidsLimit?: number | null;
  Ulimits?: DockerUlimit[] | null;
  Mounts?: DockerMount[] | null;
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  Init?: boolean | null;
  Annotations?: Record<string, string> | null;
  ConsoleSize?: number[] | null;
}

export interface DockerCreateBody {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, unknown> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: StrSlice;
  Healthcheck?: DockerHealthcheck | null;
  ArgsEscaped?: boolean;
  Image?: string;
  Volumes?: Record<string, unknown> | null;
  WorkingDir?: string;
  Entrypoint?: StrSlice;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild?: string[] | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number | null;
  Shell?: string[] | null;
  HostConfig?: DockerHostConfig | null;
  NetworkingConfig?: { EndpointsConfig?: Record<string, DockerEndpointSettings | null> | null } | null;
  // Podman extensions on the compat body.
  EnvMerge?: string[] | null;
  UnsetEnv?: string[] | null;
  UnsetEnvAll?: boolean;
}

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const int = { type: 'integer' } as const;
const uint = { type: 'integer', minimum: 0 } as const;
const strArray = { type: 'array', items: { type: 'string' } } as const;
const strMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
/** Docker's strslice accepts an array or a single string. Array first: with ajv's coerceTypes:'array' a string is wrapped. */
const strSlice = { anyOf: [strArray, str] } as const;

const hostConfigSchema = {
  type: 'object',
  properties: {
    Binds: strArray,
    ContainerIDFile: str,
    LogConfig: { type: 'object', properties: { Type: str, Config: strMap } },
    NetworkMode: str,
    PortBindings: {
      type: 'object',
      additionalProperties: {
        type: 'array',
        nullable: true,
        items: { type: 'object', properties: { HostIp: str, HostPort: str } },
      },
    },
    RestartPolicy: { type: 'object', properties: { Name: str, MaximumRetryCount: int } },
    AutoRemove: bool,
    VolumeDriver: str,
    VolumesFrom: strArray,
    CapAdd: strArray,
    CapDrop: strArray,
    CgroupnsMode: str,
    Dns: strArray,
    DnsOptions: strArray,
    DnsSearch: strArray,
    ExtraHosts: strArray,
    GroupAdd: strArray,
    IpcMode: str,
    Cgroup: str,
    Links: strArray,
    OomScoreAdj: { type: 'integer', minimum: -1000, maximum: 1000 },
    PidMode: str,
    Privileged: bool,
    PublishAllPorts: bool,
    ReadonlyRootfs: bool,
    SecurityOpt: strArray,
    StorageOpt: strMap,
    Tmpfs: strMap,
    UTSMode: str,
    UsernsMode: str,
    ShmSize: int,
    Sysctls: strMap,
    Runtime: str,
    Isolation: str,
    CpuShares: int,
    Memory: int,
    NanoCpus: int,
    CgroupParent: str,
    BlkioWeight: uint,
    CpuPeriod: int,
    CpuQuota: int,
    CpuRealtimePeriod: int,
    CpuRealtimeRuntime: int,
    CpusetCpus: str,
    CpusetMems: str,
    Devices: {
      type: 'array',
      items: { type: 'object', properties: { PathOnHost: str, PathInContainer: str, CgroupPermissions: str } },
    },
    DeviceCgroupRules: strArray,
    MemoryReservation: int,
    MemorySwap: int,
    MemorySwappiness: int,
    OomKillDisable: bool,
    PidsLimit: int,
    Ulimits: {
      type: 'array',
      items: { type: 'object', properties: { Name: str, Soft: int, Hard: int }, required: ['Name'] },
    },
    Mounts: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          Type: str,
          Source: str,
          Target: str,
          ReadOnly: bool,
          Consistency: str,
          BindOptions: { type: 'object', properties: { Propagation: str, NonRecursive: bool, CreateMountpoint: bool } },
          VolumeOptions: { type: 'object', properties: { NoCopy: bool, Labels: strMap } },
          TmpfsOptions: { type: 'object', properties: { SizeBytes: int, Mode: uint } },
        },
      },
    },
    MaskedPaths: strArray,
    ReadonlyPaths: strArray,
    Init: bool,
    Annotations: strMap,
    ConsoleSize: { type: 'array', items: uint },
  },
} as const;

const rawDockerCreateSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    Hostname: str,
    Domainname: str,
    User: str,
    AttachStdin: bool,
    AttachStdout: bool,
    AttachStderr: bool,
    ExposedPorts: { type: 'object' },
    Tty: bool,
    OpenStdin: bool,
    StdinOnce: bool,
    Env: strArray,
    Cmd: strSlice,
    Healthcheck: {
      type: 'object',
      properties: { Test: strArray, Interval: int, Timeout: int, StartPeriod: int, StartInterval: int, Retries: int },
    },
    ArgsEscaped: bool,
    Image: str,
    Volumes: { type: 'object' },
    WorkingDir: str,
    Entrypoint: strSlice,
    NetworkDisabled: bool,
    MacAddress: str,
    OnBuild: strArray,
    Labels: strMap,
    StopSignal: str,
    StopTimeout: int,
    Shell: strArray,
    HostConfig: hostConfigSchema,
    NetworkingConfig: {
      type: 'object',
      properties: {
        EndpointsConfig: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            nullable: true,
            properties: {
              IPAMConfig: {
                type: 'object',
                properties: { IPv4Address: str, IPv6Address: str, LinkLocalIPs: strArray },
              },
              Links: strArray,
              Aliases: strArray,
              MacAddress: str,
              IPAddress: str,
            },
          },
        },
      },
    },
    EnvMerge: strArray,
    UnsetEnv: strArray,
    UnsetEnvAll: bool,
  },
} as const;

/** JSON Schema for the Docker create body. */
export const dockerCreateSchema = deepNullable(rawDockerCreateSchema);

/** Query of POST /containers/create. */
export const dockerCreateQuerySchema = {
  type: 'object',
  properties: { name: str, platform: str },
} as const;

/** Docker's container.UpdateConfig (POST /containers/{id}/update): the resource fields plus RestartPolicy. */
export type DockerUpdateBody = Pick<
  DockerHostConfig,
  | 'CpuShares' | 'Memory' | 'NanoCpus' | 'CgroupParent' | 'BlkioWeight' | 'CpuPeriod' | 'CpuQuota' | 'CpuRealtimePeriod'
  | 'CpuRealtimeRuntime' | 'CpusetCpus' | 'CpusetMems' | 'MemoryReservation' | 'MemorySwap' | 'MemorySwappiness'
  | 'OomKillDisable' | 'PidsLimit' | 'RestartPolicy' | 'Devices' | 'DeviceCgroupRules' | 'Ulimits'
> & { KernelMemory?: number; KernelMemoryTCP?: number };

const hostProps = hostConfigSchema.properties;

export const dockerUpdateSchema = deepNullable({
  type: 'object',
  additionalProperties: true,
  properties: {
    CpuShares: hostProps.CpuShares,
    Memory: hostProps.Memory,
    NanoCpus: hostProps.NanoCpus,
    CgroupParent: hostProps.CgroupParent,
    BlkioWeight: hostProps.BlkioWeight,
    CpuPeriod: hostProps.CpuPeriod,
    CpuQuota: hostProps.CpuQuota,
    CpuRealtimePeriod: hostProps.CpuRealtimePeriod,
    CpuRealtimeRuntime: hostProps.CpuRealtimeRuntime,
    CpusetCpus: hostProps.CpusetCpus,
    CpusetMems: hostProps.CpusetMems,
    MemoryReservation: hostProps.MemoryReservation,
    MemorySwap: hostProps.MemorySwap,
    MemorySwappiness: hostProps.MemorySwappiness,
    KernelMemory: int,
    KernelMemoryTCP: int,
    OomKillDisable: hostProps.OomKillDisable,
    PidsLimit: hostProps.PidsLimit,
    RestartPolicy: hostProps.RestartPolicy,
    Devices: hostProps.Devices,
    DeviceCgroupRules: hostProps.DeviceCgroupRules,
    Ulimits: hostProps.Ulimits,
  },
} as const);
