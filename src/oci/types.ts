/**
 * The OCI runtime contract the engine drives: libpod's `OCIRuntime` interface (libpod/oci.go), reduced to
 * what podserve needs and expressed with explicit paths instead of a `*Container`. The adapter keeps no
 * per-container state of its own: every call carries the directories it needs, so it works the same after a
 * daemon restart (state lives with the engine, in runc's state dir and in conmon's files).
 */
import type { Readable } from 'node:stream';
import type { CheckpointOutcome, CheckpointSpec, CriuInfo, RestoreSpec } from './checkpoint.js';

/** Pipe ids that prefix every packet on conmon's attach socket (conmon `stdpipe_t`). */
export const AttachPipe = {
  stdin: 1,
  stdout: 2,
  stderr: 3,
} as const;
export type AttachPipeId = (typeof AttachPipe)[keyof typeof AttachPipe];

/** Output of one conmon pipe: one SEQPACKET message (or consecutive ones joined), its pipe-id byte split off. */
export interface AttachPacket {
  /** 2 = stdout, 3 = stderr. A TTY container only ever sends 2. */
  pipe: number;
  data: Buffer;
}

/**
 * A client connection to conmon's attach socket.
 *
 * Output: `packets` is an object-mode Readable of {@link AttachPacket}, in order: one per SEQPACKET message, or
 * several consecutive messages of one pipe joined when conmon had them queued together.
 * It ends when conmon closes the connection (the container or exec process exited and its output was
 * drained). A consumer that stops reading stops the socket reads, so conmon blocks and the container with
 * it, as with Podman (native transport). Without the native addon the fallback library cannot stop reading:
 * output then waits in memory up to a cap, past which `packets` fails rather than growing without bound.
 * Errors reach consumers that listen or iterate; an unconsumed failing connection never crashes the daemon.
 *
 * Input: `write` sends raw stdin bytes (split into messages of at most 32767 bytes, conmon's read size) and
 * resolves once they were handed to the kernel, so awaiting it gives backpressure from the container's stdin.
 */
export interface AttachConnection {
  readonly packets: Readable;
  /**
   * Send stdin bytes to the container. Rejects if the connection is closed or shut down for writing. `data` is
   * sent as it is, not copied: it must not change until the promise settles (socket chunks never do).
   */
  write(data: Uint8Array): Promise<void>;
  /**
   * Half-close: `shutdown(SHUT_WR)` after pending writes. conmon then closes the container's stdin when it
   * was started with `-i` (non-TTY, interactive); output keeps flowing until the process exits.
   */
  closeWrite(): Promise<void>;
  /** Close both directions now. Idempotent. The container is not affected (conmon just forgets this client). */
  close(): void;
  /** True once close() was called or the connection ended or failed. */
  readonly closed: boolean;
}

/** Everything needed to create a container under conmon (`conmon … runc create`). */
export interface ContainerRunSpec {
  /** Container ID; used as runc's container id, conmon's --cid/--cuuid and the exit file's name. */
  id: string;
  /** Container name (conmon -n; shows up in conmon's syslog/journald tags only). */
  name: string;
  /** OCI bundle: holds config.json; conmon puts `attach`, `ctl` and `winsz` here. The rootfs is wherever config.json says. */
  bundleDir: string;
  /** Volatile per-container directory: `pidfile`, `conmon.pid`, `oci-log`. Created if missing. */
  runDir: string;
  /** Directory where conmon writes `<id>` with the exit code. Created if missing. */
  exitDir: string;
  /** k8s-file log path (ignored with logDriver 'none'). */
  logPath: string;
  logDriver: 'k8s-file' | 'none';
  /** conmon --log-size-max in bytes; when reached conmon truncates the log. */
  logSizeMax?: number;
  /** Allocate a pseudo-TTY (conmon -t). config.json's process.terminal must agree. */
  terminal: boolean;
  /** Keep stdin open for attach clients (conmon -i; only meaningful without a terminal). */
  stdin: boolean;
  /** argv run by conmon after the container exited (--exit-command, --exit-command-arg…). */
  exitCommand?: string[];
  /** Seconds conmon waits before running the exit command. */
  exitDelay?: number;
  /** How long to wait for conmon's report (default: the runtime's createTimeoutMs). */
  timeoutMs?: number;
  /** Restore from a checkpoint instead of creating (conmon --restore → `runc restore --detach`): ends up running. */
  restore?: RestoreSpec;
}

export interface CreateResult {
  /** PID of the container's init process (host namespace). */
  pid: number;
  /** PID of the conmon monitor process (from --conmon-pidfile). */
  conmonPid: number;
}

/** `runc state` output, trimmed to what the engine uses (`raw` keeps the rest). */
export interface RuntimeState {
  id: string;
  status: 'creating' | 'created' | 'running' | 'pausing' | 'paused' | 'stopped';
  /** 0 once the container stopped. */
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  raw: Record<string, unknown>;
}

export interface ExitFileInfo {
  /** Exit status as conmon wrote it: WEXITSTATUS, 128+signal, or -1. */
  exitCode: number;
  /** mtime of the exit file: when conmon saw the process end. */
  finishedAt: Date;
}

export interface RuntimeInfo {
  name: string;
  path: string;
  /** Version number, e.g. "1.1.5+ds1". */
  version: string;
  commit: string;
  /** OCI runtime-spec version the runtime implements. */
  spec: string;
  /** The whole `--version` output (Podman's /info shows it verbatim). */
  versionOutput: string;
  /** Distribution package providing the binary ("runc_1.1.5+ds1-1+deb12u1_amd64"), or "" when unknown. */
  package: string;
}

export interface ConmonInfo {
  path: string;
  /** "conmon version 2.1.6, commit: unknown" (Podman's format). */
  version: string;
  package: string;
}

/** An exec session (conmon -e). */
export interface ExecSessionSpec {
  sessionId: string;
  /** Per-session directory (conmon -b): gets `attach`, `ctl`, `exec_pid`, `exit/`, the process spec. Created if missing. */
  bundleDir: string;
  /** OCI `process` object for `runc exec --process` (args, env, cwd, user, capabilities…). `terminal` is forced to match. */
  process: Record<string, unknown>;
  terminal: boolean;
  /**
   * Initial terminal size, written into the process spec (`consoleSize`) so runc sizes the pty before the
   * process runs. A resize through `ctl` in preStart is not enough: conmon applies it only once the pty
   * exists, which races with the process's first look at its size.
   */
  consoleSize?: { height: number; width: number };
  /** Open the process's stdin to attach clients (conmon -i). */
  attachStdin: boolean;
  /** Do not connect to the attach socket; the result's `attach` is null. */
  detach?: boolean;
  exitCommand?: string[];
  exitDelay?: number;
  /**
   * Runs after conmon is ready and (unless detached) the attach socket is connected, but before the process
   * is started: the place to hijack the HTTP connection and apply the initial terminal size, so no output is
   * lost. If it throws, the session is torn down and the error is rethrown.
   */
  preStart?: (conn: AttachConnection | null) => Promise<void>;
  timeoutMs?: number;
}

export interface ExecTarget {
  /** Container ID (runc's id). */
  id: string;
  /** Container name, for conmon -n. */
  name?: string;
}

export interface ExecResult {
  /** Host PID of the exec'd process. */
  pid: number;
  attach: AttachConnection | null;
}

export interface StopOptions {
  /** Directory of the container's exit file: the stop wait is woken by conmon writing it. */
  exitDir?: string;
  /** Signal every process of the container (runc kill --all). */
  all?: boolean;
}

/** libpod's OCIRuntime contract (podserve subset). All failures of the runtime itself are RuntimeError. */
export interface OCIRuntime {
  readonly name: string;
  readonly path: string;

  /** conmon + `runc create`: the container ends in state "created" with conmon holding its stdio. */
  createContainer(spec: ContainerRunSpec): Promise<CreateResult>;
  /** `runc start`. */
  startContainer(id: string): Promise<void>;
  /** `runc kill [--all] <id> <signal>`. A container that is not running gives a 409 stateImproper error. */
  killContainer(id: string, signal: number, all?: boolean): Promise<void>;
  /**
   * Send stopSignal, wait up to timeoutSec for the container to exit, then SIGKILL and wait again (5 s).
   * timeoutSec 0 kills at once. A paused container is thawed after the first signal so it can act on it.
   * With opts.exitDir, returns once conmon wrote the exit file (readable right away). Throws if the container
   * survives SIGKILL.
   */
  stopContainer(id: string, timeoutSec: number, stopSignal: number, opts?: StopOptions): Promise<void>;
  /** `runc delete --force`; a container runc does not know is not an error. */
  deleteContainer(id: string): Promise<void>;
  pauseContainer(id: string): Promise<void>;
  unpauseContainer(id: string): Promise<void>;
  /** `runc state`, or null when runc does not know the container. */
  state(id: string): Promise<RuntimeState | null>;
  /** `runc update --resources <file>` with an OCI LinuxResources object. */
  updateResources(id: string, resources: Record<string, unknown>): Promise<void>;

  exitFilePath(exitDir: string, id: string): string;
  /** The exit file, or null when it does not exist (yet). */
  readExitFile(exitDir: string, id: string): Promise<ExitFileInfo | null>;
  /** Resolves with the exit file once conmon wrote it, or null after timeoutMs. Event driven (fs.watch). */
  waitExitFile(exitDir: string, id: string, timeoutMs: number, signal?: AbortSignal): Promise<ExitFileInfo | null>;

  attachSocketPath(bundleDir: string): string;
  /** Connect to `<bundleDir>/attach` (any path length). */
  attach(bundleDir: string): Promise<AttachConnection>;
  /** Write `1 <h> <w>` to `<bundleDir>/ctl`; works while the container is still "created". */
  attachResize(bundleDir: string, height: number, width: number): Promise<void>;
  /** Is this PID a live conmon process? */
  conmonAlive(conmonPid: number): Promise<boolean>;

  execContainer(ctr: ExecTarget, session: ExecSessionSpec): Promise<ExecResult>;
  execResize(sessionBundleDir: string, height: number, width: number): Promise<void>;
  /** Exit code from `<session>/exit/<ctrId>`, waiting up to waitMs for it (0 = just look). Null if absent. */
  readExecExitCode(sessionBundleDir: string, ctrId: string, waitMs?: number): Promise<number | null>;
  /** SIGTERM the exec'd process, wait timeoutSec, then SIGKILL (timeout 0 = SIGKILL at once). */
  execStop(pid: number, timeoutSec: number): Promise<void>;

  runtimeInfo(): Promise<RuntimeInfo>;
  conmonInfo(): Promise<ConmonInfo>;

  /** `runc --criu <criu> checkpoint …` (src/oci/checkpoint.ts). Failures carry CRIU's errors from dump.log. */
  checkpointContainer(id: string, spec: CheckpointSpec): Promise<CheckpointOutcome>;
  /**
   * conmon + `runc restore --detach` from `restore.imagePath`: like createContainer, but the container ends up
   * running. Failures carry CRIU's errors from restore.log; nothing of the attempt is left running.
   */
  restoreContainer(spec: ContainerRunSpec, restore: RestoreSpec): Promise<CreateResult & CheckpointOutcome>;
  /** The CRIU binary given to runc: version and whether it works on this host (cached once it does). */
  criuInfo(): Promise<CriuInfo>;
}
