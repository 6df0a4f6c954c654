/** The daemon's configuration: podman-like global flags plus the `service` subcommand's options. */
export interface DaemonConfig {
  /** Persistent state: store, images, container dirs, logs. */
  root: string;
  /** Volatile state: sockets, pid files, exit files. */
  runRoot: string;
  logLevel: LogLevel;
  /** OCI runtime binary; its basename is the runtime's name. */
  runtimePath: string;
  conmonPath: string;
  /** CRIU binary runc uses for checkpoint/restore (`runc --criu`). */
  criuPath?: string;
  /** Where to listen: unix:///path or tcp://host:port. */
  uri: string;
  /** Idle seconds before exiting; 0 = never. */
  idleTimeoutSec: number;
  /** Group that may use the unix socket (mode 0660); undefined = root's group. */
  socketGroup?: string;
  tls?: { cert: string; key: string; ca: string };
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

export const DEFAULTS = {
  root: '/var/lib/podserve',
  runRoot: '/run/podserve',
  uri: 'unix:///run/podserve/podserve.sock',
  /** As `podman system service` (containers.conf service_timeout). */
  idleTimeoutSec: 5,
  logLevel: 'warn' as LogLevel,
} as const;
