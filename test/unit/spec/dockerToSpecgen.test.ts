import t from 'tap';
import { dockerToSpecgen, parseNamespaceMode, HEALTH_DEFAULTS } from '../../../src/spec/dockerToSpecgen.js';
import { generateOciConfig } from '../../../src/spec/oci.js';
import type { DockerCreateBody } from '../../../schemas/compat-containers.js';
import { dockerCliCreateBody } from './captured-bodies.js';

t.test('the docker CLI body (captured) converts like podman\'s compat handler', async (t) => {
  const spec = dockerToSpecgen(structuredClone(dockerCliCreateBody) as DockerCreateBody, { name: 'web' });
  t.strictSame(spec, {
    image: 'busybox',
    raw_image_name: 'busybox',
    name: 'web',
    entrypoint: ['sh'],
    command: ['-c', 'echo hi'],
    env: { A: 'B' },
    work_dir: '/tmp',
    create_working_dir: true,
    user: '1000',
    terminal: false,
    stdin: false,
    stop_signal: 10,
    annotations: { 'io.kubernetes.cri-o.TTY': 'false' },
    mounts: [
      { destination: '/mnt', type: 'bind', source: '/tmp', options: ['ro'] },
      { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
    ],
    resource_limits: {
      memory: { limit: 67108864, swap: 134217728 },
      cpu: { period: 100000, quota: 50000 },
      pids: { limit: 50 },
    },
    cap_add: ['CAP_NET_ADMIN'],
    remove: true,
    init: true,
    oom_score_adj: 0,
    restart_policy: 'no',
    r_limits: [{ type: 'nofile', soft: 100, hard: 200 }],
    netns: { nsmode: 'bridge' },
  });
});

t.test('field table', async (t) => {
  const conv = (body: DockerCreateBody) => dockerToSpecgen({ Image: 'img', ...body });
  const table: Array<[string, DockerCreateBody, Record<string, unknown>]> = [
    ['Cmd as string', { Cmd: 'ls' }, { command: ['ls'] }],
    ['empty Entrypoint ignored', { Entrypoint: [] }, { entrypoint: undefined }],
    ['Entrypoint [""] kept (clears the image one)', { Entrypoint: [''] }, { entrypoint: [''] }],
    ['Env without = is dropped', { Env: ['A=1', 'LOOKUP', 'B=x=y'] }, { env: { A: '1', B: 'x=y' } }],
    ['Tty and OpenStdin', { Tty: true, OpenStdin: true }, { terminal: true, stdin: true, annotations: { 'io.kubernetes.cri-o.TTY': 'true' } }],
    ['Labels', { Labels: { a: 'b' } }, { labels: { a: 'b' } }],
    ['StopTimeout', { StopTimeout: 3 }, { stop_timeout: 3 }],
    ['Hostname', { Hostname: 'h' }, { hostname: 'h' }],
    ['Healthcheck defaults', { Healthcheck: { Test: ['CMD', 'true'] } }, { healthconfig: { Test: ['CMD', 'true'], ...HEALTH_DEFAULTS } }],
    ['Healthcheck explicit', { Healthcheck: { Test: ['CMD-SHELL', 'x'], Interval: 1e9, Timeout: 2e9, StartPeriod: 3e9, Retries: 4 } },
      { healthconfig: { Test: ['CMD-SHELL', 'x'], Interval: 1e9, Timeout: 2e9, StartPeriod: 3e9, Retries: 4 } }],
    ['Memory with explicit swap', { HostConfig: { Memory: 100, MemorySwap: 300 } }, { resource_limits: { memory: { limit: 100, swap: 300 } } }],
    ['MemorySwap -1 → podman doubles', { HostConfig: { Memory: 100, MemorySwap: -1 } }, { resource_limits: { memory: { limit: 100, swap: 200 } } }],
    ['Reservation, swappiness, OOM', { HostConfig: { MemoryReservation: 50, MemorySwappiness: 10, OomKillDisable: true } },
      { resource_limits: { memory: { reservation: 50, swappiness: 10, disableOOMKiller: true } } }],
    ['CPU fields', { HostConfig: { CpuShares: 512, CpuPeriod: 100000, CpuQuota: 20000, CpusetCpus: '0-1', CpusetMems: '0' } },
      { resource_limits: { cpu: { shares: 512, period: 100000, quota: 20000, cpus: '0-1', mems: '0' } } }],
    ['PidsLimit 0 is kept (unlimited)', { HostConfig: { PidsLimit: 0 } }, { resource_limits: { pids: { limit: 0 } } }],
    ['PidsLimit null is unset', { HostConfig: { PidsLimit: null } }, { resource_limits: undefined }],
    ['Privileged, ReadonlyRootfs (+ podman\'s writable tmpfs dirs)', { HostConfig: { Privileged: true, ReadonlyRootfs: true, Tmpfs: { '/run': 'size=1m' } } }, {
      privileged: true,
      read_only_filesystem: true,
      mounts: [
        { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
        { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'nosuid', 'nodev', 'tmpcopyup'] },
        { destination: '/var/tmp', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'nosuid', 'nodev', 'tmpcopyup'] },
      ],
    }],
    ['RestartPolicy on-failure', { HostConfig: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } } }, { restart_policy: 'on-failure', restart_tries: 3 }],
    ['RestartPolicy always', { HostConfig: { RestartPolicy: { Name: 'always', MaximumRetryCount: 3 } } }, { restart_policy: 'always', restart_tries: undefined }],
    ['NetworkMode host', { HostConfig: { NetworkMode: 'host' } }, { netns: { nsmode: 'host' } }],
    ['NetworkMode none', { HostConfig: { NetworkMode: 'none' } }, { netns: { nsmode: 'none' } }],
    ['NetworkMode container', { HostConfig: { NetworkMode: 'container:abc' } }, { netns: { nsmode: 'container', value: 'abc' } }],
    ['NetworkMode named network', { HostConfig: { NetworkMode: 'mynet' } }, { netns: { nsmode: 'bridge' }, Networks: { mynet: {} } }],
    ['EndpointsConfig', { NetworkingConfig: { EndpointsConfig: { default: {}, net1: { Aliases: ['a'], IPAMConfig: { IPv4Address: '10.0.0.5' }, MacAddress: '02:00:00:00:00:01' } } } },
      { Networks: { net1: { aliases: ['a'], static_ips: ['10.0.0.5'], static_mac: '02:00:00:00:00:01' } } }],
    ['LogConfig', { HostConfig: { LogConfig: { Type: 'k8s-file', Config: { 'max-size': '1m' } } } }, { log_configuration: { driver: 'k8s-file', options: { 'max-size': '1m' } } }],
    ['Namespaces', { HostConfig: { PidMode: 'host', IpcMode: 'shareable', UTSMode: 'host', CgroupnsMode: 'private', UsernsMode: '' } },
      { pidns: { nsmode: 'host' }, ipcns: { nsmode: 'shareable' }, utsns: { nsmode: 'host' }, cgroupns: { nsmode: 'private' }, userns: undefined }],
    ['SecurityOpt', { HostConfig: { SecurityOpt: ['no-new-privileges', 'seccomp=unconfined', 'label=disable', 'unmask=/proc/kcore:/proc/keys', 'apparmor=unconfined'] } },
      { no_new_privileges: true, seccomp_profile_path: 'unconfined', selinux_opts: ['disable'], unmask: ['/proc/kcore', '/proc/keys'], apparmor_profile: 'unconfined' }],
    ['no-new-privileges:false', { HostConfig: { SecurityOpt: ['no-new-privileges:false'] } }, { no_new_privileges: false }],
    ['Devices', { HostConfig: { Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '', CgroupPermissions: '' }] } }, { devices: [{ path: '/dev/fuse:/dev/fuse:rwm' }] }],
    ['PortBindings and ExposedPorts', { ExposedPorts: { '80/tcp': {}, '53/udp': {} }, HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }, { HostPort: '' }] }, PublishAllPorts: true } },
      { portmappings: [{ container_port: 80, host_port: 8080, host_ip: '127.0.0.1', protocol: 'tcp', range: 0 }, { container_port: 80, host_port: 0, host_ip: '', protocol: 'tcp', range: 0 }],
        expose: { 80: 'tcp', 53: 'udp' }, publish_image_ports: true }],
    ['DNS and hosts', { HostConfig: { Dns: ['1.1.1.1'], DnsSearch: ['x'], DnsOptions: ['ndots:2'], ExtraHosts: ['h:1.2.3.4'] } },
      { dns_server: ['1.1.1.1'], dns_search: ['x'], dns_option: ['ndots:2'], hostadd: ['h:1.2.3.4'] }],
    ['Sysctls, ShmSize, GroupAdd, CgroupParent, Runtime', { HostConfig: { Sysctls: { 'net.ipv4.ip_forward': '1' }, ShmSize: 1024, GroupAdd: ['wheel'], CgroupParent: '/cg', Runtime: 'runc' } },
      { sysctl: { 'net.ipv4.ip_forward': '1' }, shm_size: 1024, groups: ['wheel'], cgroup_parent: '/cg', oci_runtime: 'runc' }],
    ['Mounts', { HostConfig: { Mounts: [
      { Type: 'bind', Source: '/src', Target: '/dst', ReadOnly: true, BindOptions: { Propagation: 'rslave', NonRecursive: true } },
      { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1777 } },
      { Type: 'volume', Source: 'data', Target: '/data', VolumeOptions: { NoCopy: true } },
      { Type: 'volume', Target: '/anon' },
    ] } }, {
      mounts: [
        { destination: '/dst', type: 'bind', source: '/src', options: ['ro', 'rslave', 'bind'] },
        { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['size=1048576', 'mode=1777'] },
      ],
      volumes: [{ Name: 'data', Dest: '/data', Options: ['nocopy'] }, { Name: '', Dest: '/anon', Options: [], IsAnonymous: true }],
    }],
    ['Binds and Volumes', { Volumes: { '/data': {}, '/cache': {} }, HostConfig: { Binds: ['named:/data:ro', '/abs:/x:rw,z', '/only'] } }, {
      mounts: [{ destination: '/x', type: 'bind', source: '/abs', options: ['rw', 'z'] }],
      volumes: [
        { Name: 'named', Dest: '/data', Options: ['ro'] },
        { Name: '', Dest: '/only', Options: [], IsAnonymous: true },
        { Name: '', Dest: '/cache', Options: [], IsAnonymous: true },
      ],
    }],
    ['Annotations', { HostConfig: { Annotations: { k: 'v' } } }, { annotations: { 'io.kubernetes.cri-o.TTY': 'false', k: 'v' } }],
  ];
  for (const [name, body, want] of table) {
    const spec = conv(body) as Record<string, unknown>;
    for (const [key, value] of Object.entries(want)) t.strictSame(spec[key], value, `${name}: ${key}`);
  }
});

t.test('errors name the Docker field', async (t) => {
  const errors: Array<[DockerCreateBody, string | RegExp]> = [
    [{ Image: '' }, 'Image: no image specified'],
    [{ Image: 'i', HostConfig: { Links: ['a:b'] } }, 'HostConfig.Links: bad parameter: Link is not supported'],
    [{ Image: 'i', StopSignal: 'SIGWAT' }, 'StopSignal: invalid signal: SIGWAT'],
    [{ Image: 'i', HostConfig: { NanoCpus: 1e9, CpuQuota: 5000 } }, 'HostConfig.NanoCpus: NanoCpus conflicts with CpuPeriod and CpuQuota'],
    [{ Image: 'i', HostConfig: { Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 5 }] } }, /^HostConfig\.Ulimits\[0\]: ulimit soft limit must be less than or equal to hard limit/],
    [{ Image: 'i', HostConfig: { Mounts: [{ Type: 'npipe', Target: '/x' }] } }, 'HostConfig.Mounts[0].Type: invalid mount type "npipe"'],
    [{ Image: 'i', HostConfig: { Mounts: [{ Type: 'bind', Target: '/x' }] } }, 'HostConfig.Mounts[0].Source: a bind mount needs a source'],
    [{ Image: 'i', HostConfig: { Binds: ['a:b:c:d'] } }, /^HostConfig\.Binds\[0\]: incorrect volume format/],
    [{ Image: 'i', HostConfig: { Binds: ['/a:relative'] } }, 'HostConfig.Binds[0]: invalid container path "relative", must be an absolute path'],
    [{ Image: 'i', HostConfig: { PidMode: 'weird' } }, 'HostConfig.PidMode: invalid namespace mode "weird"'],
    [{ Image: 'i', HostConfig: { SecurityOpt: ['bogus=1'] } }, 'HostConfig.SecurityOpt: invalid --security-opt "bogus=1"'],
    [{ Image: 'i', HostConfig: { PortBindings: { 'abc/tcp': [] } } }, 'HostConfig.PortBindings: invalid port "abc/tcp"'],
    [{ Image: 'i', HostConfig: { NetworkMode: 'container:' } }, /must provide a container name/],
  ];
  for (const [body, message] of errors) t.throws(() => dockerToSpecgen(body), { message, status: 400 }, String(message));
  t.strictSame(parseNamespaceMode('ns:/proc/1/ns/pid', 'f'), { nsmode: 'path', value: '/proc/1/ns/pid' });
  t.equal(parseNamespaceMode('', 'f'), undefined);
});

t.test('a converted body generates a config', async (t) => {
  const spec = dockerToSpecgen(structuredClone(dockerCliCreateBody) as DockerCreateBody);
  const cfg = generateOciConfig(spec, { Cmd: ['sh'] }, {
    id: 'f'.repeat(64), rootfsPath: '/r', initPath: '/usr/bin/catatonit',
    hostLimits: { nofile: { soft: 1024, hard: 1024 }, nproc: { soft: 1024, hard: 1024 } },
  });
  t.strictSame(cfg.process.args, ['/run/podman-init', '--', 'sh', '-c', 'echo hi']);
  t.strictSame(cfg.process.user, { uid: 1000, gid: 0, umask: 18, additionalGids: [0] });
  t.strictSame(cfg.linux.resources?.cpu, { period: 100000, quota: 50000 });
  t.equal(cfg.process.oomScoreAdj, 0);
});
