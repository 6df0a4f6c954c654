/**
 * Request bodies captured from real clients (podman-remote 4.3.1 and docker CLI 28.2) by pointing
 * them at a recording unix-socket server; shared by the schema and conversion tests.
 */

/** The body podman-remote 4.3.1 sent for `podman --remote run -d --rm -e A=B -v /tmp:/mnt:ro --tmpfs /t --ulimit nofile=100:200 --cap-add NET_ADMIN --cap-drop chown --memory 64m --pids-limit 50 --stop-signal SIGUSR1 --init -w /tmp -u 1000:1000 --hostname hh --label l=v --read-only busybox echo hi` (captured). */
export const podmanRemoteCreateBody = {
  command: ['echo', 'hi'], httpproxy: true, env: { A: 'B' }, labels: { l: 'v' },
  annotations: { 'io.kubernetes.cri-o.TTY': 'false' }, stop_signal: 10, stop_timeout: 10, log_configuration: {},
  raw_image_name: 'busybox', systemd: 'true', sdnotifyMode: 'container', pidns: {}, utsns: {}, hostname: 'hh',
  remove: true, containerCreateCommand: ['podman', 'run'], init_container_type: '', manage_password: true,
  image: 'busybox', image_volume_mode: 'anonymous', init: true,
  mounts: [
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'nosuid', 'nodev', 'tmpcopyup'] },
    { destination: '/var/tmp', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'nosuid', 'nodev', 'tmpcopyup'] },
    { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'nosuid', 'nodev', 'tmpcopyup'] },
    { destination: '/mnt', type: 'bind', source: '/tmp', options: ['ro'] },
    { destination: '/t', type: 'tmpfs', source: 'tmpfs' },
  ],
  ipcns: {}, work_dir: '/tmp', volatile: true, user: '1000:1000', cap_add: ['NET_ADMIN'], cap_drop: ['chown'],
  seccomp_policy: 'default', userns: {},
  idmappings: { HostUIDMapping: true, HostGIDMapping: true, UIDMap: null, GIDMap: null, AutoUserNs: false },
  read_only_filesystem: true, umask: '0022', cgroupns: {}, cgroups_mode: 'enabled', netns: {}, Networks: null,
  use_image_hosts: false,
  resource_limits: { memory: { limit: 67108864, swap: 134217728 }, pids: { limit: 50 } },
  r_limits: [{ type: 'nofile', hard: 200, soft: 100 }],
};

/** The body docker CLI 28.2 sent (API 1.41) for `docker run -d --rm -e A=B -v /tmp:/mnt:ro --tmpfs /t:size=1m --ulimit nofile=100:200 --cap-add NET_ADMIN --memory 64m --cpus 0.5 --pids-limit 50 --stop-signal SIGUSR1 --init -w /tmp -u 1000 --entrypoint sh busybox -c 'echo hi'` (captured, abridged to the fields it set). */
export const dockerCliCreateBody = {
  Hostname: '', Domainname: '', User: '1000', AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false,
  OpenStdin: false, StdinOnce: false, Env: ['A=B'], Cmd: ['-c', 'echo hi'], Image: 'busybox', Volumes: {},
  WorkingDir: '/tmp', Entrypoint: ['sh'], OnBuild: null, Labels: {}, StopSignal: 'SIGUSR1',
  HostConfig: {
    Binds: ['/tmp:/mnt:ro'], ContainerIDFile: '', LogConfig: { Type: '', Config: {} }, NetworkMode: 'default',
    PortBindings: {}, RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, AutoRemove: true, VolumeDriver: '',
    VolumesFrom: null, ConsoleSize: [0, 0], CapAdd: ['CAP_NET_ADMIN'], CapDrop: null, CgroupnsMode: '', Dns: [],
    DnsOptions: [], DnsSearch: [], ExtraHosts: null, GroupAdd: null, IpcMode: '', Cgroup: '', Links: null,
    OomScoreAdj: 0, PidMode: '', Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false, SecurityOpt: null,
    Tmpfs: { '/t': 'size=1m' }, UTSMode: '', UsernsMode: '', ShmSize: 0, Isolation: '', CpuShares: 0,
    Memory: 67108864, NanoCpus: 500000000, CgroupParent: '', BlkioWeight: 0, BlkioWeightDevice: [],
    CpuPeriod: 0, CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '', CpusetMems: '',
    Devices: [], DeviceCgroupRules: null, DeviceRequests: null, MemoryReservation: 0, MemorySwap: 0,
    MemorySwappiness: -1, OomKillDisable: false, PidsLimit: 50, Ulimits: [{ Name: 'nofile', Hard: 200, Soft: 100 }],
    MaskedPaths: null, ReadonlyPaths: null, Init: true,
  },
  NetworkingConfig: { EndpointsConfig: { default: { IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', IPAddress: '' } } },
};
