/** The engine's records of containers and exec sessions, as kept in the state store. */
import type { SpecGenerator } from '../../schemas/containers.js';

/** Podman's container states (libpod/define/containerstate.go). */
export type ContainerStatus = 'configured' | 'created' | 'running' | 'paused' | 'stopped' | 'exited' | 'removing';

export interface ContainerConfig {
  id: string;
  name: string;
  /** RFC 3339 with nanoseconds, as Podman prints it. */
  created: string;
  spec: SpecGenerator;
  /** The image as the client named it, the id it resolved to, and its canonical name. */
  rawImageName: string;
  imageId: string;
  imageName: string;
  imageDigest: string;
  /** The process as it will run: entrypoint + command merged with the image's. */
  path: string;
  args: string[];
  entrypoint: string[];
  command: string[];
  env: string[];
  workDir: string;
  user: string;
  hostname: string;
  terminal: boolean;
  stdin: boolean;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  effectiveCaps: string[];
  boundingCaps: string[];
  rlimits: { type: string; soft: number; hard: number }[];
  stopSignal: number;
  stopTimeout: number;
  autoRemove: boolean;
  restartPolicy: '' | 'no' | 'on-failure' | 'always' | 'unless-stopped';
  restartRetries: number;
  logDriver: 'k8s-file' | 'none';
  logPath: string;
  /** Default detach keys from the create spec (empty string = disabled); undefined = daemon default. */
  detachKeys?: string;
  bundleDir: string;
  runDir: string;
  containerDir: string;
}

export interface ContainerState {
  status: ContainerStatus;
  pid: number;
  conmonPid: number;
  exitCode: number;
  /** RFC 3339 nano strings; the zero time when unset, as Podman. */
  startedAt: string;
  finishedAt: string;
  oomKilled: boolean;
  error: string;
  restartCount: number;
  /** Set when a user stopped it: restart policies (except always) then leave it alone. */
  stoppedByUser: boolean;
  /** Merged rootfs while mounted. */
  mountPoint: string;
  checkpointed?: boolean;
  checkpointedAt?: string;
  checkpointPath?: string;
  checkpointLog?: string;
  restored?: boolean;
  restoredAt?: string;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface ExecConfig {
  id: string;
  containerId: string;
  cmd: string[];
  env: string[];
  workDir: string;
  user: string;
  tty: boolean;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  privileged: boolean;
  detachKeys?: string;
  bundleDir: string;
}

export interface ExecState {
  status: 'created' | 'running' | 'stopped';
  pid: number;
  exitCode: number;
  conmonPid?: number;
}

export interface Container {
  id: string;
  name: string;
  config: ContainerConfig;
  state: ContainerState;
}

export interface ExecSession {
  id: string;
  containerId: string;
  config: ExecConfig;
  state: ExecState;
}
