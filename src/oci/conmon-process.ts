/**
 * Starting conmon and speaking its pipe protocol (conmon.md §2–§4): the command lines Podman 4.3.1 builds,
 * the sync/start/attach pipes at fds 3/4/5, and the one-line JSON messages conmon writes on them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { RuntimeError } from '../errors.js';

/** Fields common to container and exec command lines (Podman's sharedConmonArgs). */
export interface SharedConmonArgs {
  /** --cid: the container's ID (also for exec sessions). */
  ctrId: string;
  /** --cuuid: the container ID again, or the exec session ID. */
  uuid: string;
  runtimePath: string;
  bundleDir: string;
  pidFile: string;
  name?: string;
  exitDir: string;
  runtimeFlags: string[];
  /** `k8s-file:<path>` or `none`. */
  logDriver: string;
  logLevel: string;
  logSizeMax?: number;
  /** The runtime's JSON error log (--runtime-arg --log-format=json --runtime-arg --log --runtime-arg=<file>). */
  ociLog?: string;
  conmonPidFile: string;
  exitCommand?: string[];
  exitDelay?: number;
}

function sharedArgs(a: SharedConmonArgs): string[] {
  const args = ['--api-version', '1', '-c', a.ctrId, '-u', a.uuid, '-r', a.runtimePath, '-b', a.bundleDir, '-p', a.pidFile];
  if (a.name) args.push('-n', a.name);
  args.push('--exit-dir', a.exitDir, '--full-attach');
  for (const flag of a.runtimeFlags) args.push('--runtime-arg', flag);
  args.push('-l', a.logDriver, '--log-level', a.logLevel);
  if (a.logSizeMax !== undefined && a.logSizeMax > 0) args.push('--log-size-max', String(a.logSizeMax));
  if (a.ociLog) args.push('--runtime-arg', '--log-format=json', '--runtime-arg', '--log', `--runtime-arg=${a.ociLog}`);
  return args;
}

function exitCommandArgs(a: SharedConmonArgs): string[] {
  const args: string[] = [];
  const [command, ...rest] = a.exitCommand ?? [];
  if (command === undefined) return args;
  args.push('--exit-command', command);
  for (const arg of rest) args.push('--exit-command-arg', arg);
  if (a.exitDelay !== undefined && a.exitDelay > 0) args.push('--exit-delay', String(a.exitDelay));
  return args;
}

/** conmon argv for `runc create` (Podman's createOCIContainer order). */
export function containerConmonArgs(a: SharedConmonArgs & { terminal: boolean; stdin: boolean }): string[] {
  const args = sharedArgs(a);
  if (a.terminal) args.push('-t');
  else if (a.stdin) args.push('-i');
  args.push('--conmon-pidfile', a.conmonPidFile);
  args.push(...exitCommandArgs(a));
  return args;
}

/** conmon argv for `runc exec` (Podman's startExec). --conmon-pidfile lets an aborted session be killed. */
export function execConmonArgs(a: SharedConmonArgs & { terminal: boolean; attachStdin: boolean; processSpec: string }): string[] {
  const args = sharedArgs(a);
  if (a.terminal) args.push('-t');
  if (a.attachStdin) args.push('-i');
  args.push('-e', '--exec-attach', '--exec-process-spec', a.processSpec);
  args.push('--conmon-pidfile', a.conmonPidFile);
  args.push(...exitCommandArgs(a));
  return args;
}

/** pino level → conmon --log-level. */
export function conmonLogLevel(level: string): string {
  switch (level) {
    case 'trace':
    case 'debug':
    case 'info':
      return level;
    case 'warn':
      return 'warning';
    default:
      return 'error';
  }
}

/** One message conmon writes on a pipe: `{"data": N[, "message": "…"]}\n`. */
export interface PipeMessage {
  data: number;
  message?: string;
}

export function parsePipeMessage(line: string): PipeMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new RuntimeError(`invalid message from conmon: ${JSON.stringify(line.slice(0, 200))}`, line);
  }
  const obj = parsed as { data?: unknown; message?: unknown };
  if (typeof obj !== 'object' || obj === null || typeof obj.data !== 'number') {
    throw new RuntimeError(`invalid message from conmon: ${JSON.stringify(line.slice(0, 200))}`, line);
  }
  return typeof obj.message === 'string' ? { data: obj.data, message: obj.message } : { data: obj.data };
}

/** A started conmon: the intermediate process plus the parent ends of its pipes. */
export class ConmonProcess {
  readonly child: ChildProcess;
  readonly sync: Duplex;
  readonly start: Duplex;
  readonly attachPipe: Duplex | null;
  /** Resolves when the first conmon process exits (it forks the monitor and exits 0). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderrText = '';
  private readonly stderrDone: Promise<void>;
  private readonly readers = new Map<Duplex, LineReader>();

  constructor(conmonPath: string, args: string[], opts: { env: Record<string, string>; cwd: string; withAttachPipe: boolean; logger: Logger }) {
    opts.logger.debug({ conmonPath, args }, 'running conmon');
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'];
    if (opts.withAttachPipe) stdio.push('pipe');
    const env = { ...opts.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' } as Record<string, string>;
    if (opts.withAttachPipe) env._OCI_ATTACHPIPE = '5';
    // detached: conmon gets its own session, like Podman's Setpgid, so a Ctrl-C to the daemon's process
    // group does not reach it (conmon calls setsid() itself for the monitor).
    this.child = spawn(conmonPath, args, { cwd: opts.cwd, env, stdio, detached: true });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
      this.child.once('error', (err) => {
        this.stderrText += `${err.message}\n`;
        resolve({ code: -1, signal: null });
      });
    });
    const pipe = (fd: number): Duplex => {
      const stream = this.child.stdio[fd] as Duplex | null | undefined;
      if (!stream) throw new RuntimeError('conmon pipes missing', `cannot set up fd ${fd} for conmon`);
      // The monitor keeps its end open for the container's lifetime; errors here (EPIPE after it exits)
      // are expected and must not crash the daemon.
      stream.on('error', (err) => opts.logger.debug({ err, fd }, 'conmon pipe error'));
      return stream;
    };
    this.sync = pipe(3);
    this.start = pipe(4);
    this.attachPipe = opts.withAttachPipe ? pipe(5) : null;
    for (const stream of [this.sync, this.attachPipe]) {
      if (stream) this.readers.set(stream, new LineReader(stream));
    }
    const stderr = this.child.stderr;
    this.stderrDone = new Promise<void>((resolve) => {
      if (!stderr) return resolve();
      stderr.setEncoding('utf8');
      stderr.on('data', (chunk: string) => {
        if (this.stderrText.length < 65536) this.stderrText += chunk;
      });
      stderr.once('close', () => resolve());
      stderr.once('error', () => resolve());
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Write one start byte (conmon blocks on it: once before forking, once more for --exec-attach). */
  writeStartByte(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.start.write(Buffer.from([0]), (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Release conmon (first start byte; Podman would place it in a cgroup before this) and wait for the
   * intermediate process to exit. If conmon died early, its own error is reported rather than EPIPE.
   */
  async begin(timeoutMs: number): Promise<void> {
    const wrote = this.writeStartByte().then(
      () => null,
      (err: unknown) => err,
    );
    await this.waitIntermediate(timeoutMs);
    const writeError = await wrote;
    if (writeError) throw new RuntimeError('cannot signal conmon to start', String(writeError));
  }

  /** Wait for the intermediate process; a non-zero exit is conmon failing before it forked (bad flags, ...). */
  async waitIntermediate(timeoutMs: number): Promise<void> {
    const result = await withTimeout(this.exited, timeoutMs, 'conmon did not fork in time');
    if (result.code !== 0) {
      await withTimeout(this.stderrDone, 1000, '').catch(() => undefined);
      const stderr = this.stderrText.trim();
      const how = result.signal ? `signal ${result.signal}` : `exit status ${result.code}`;
      throw new RuntimeError(`conmon failed: ${how}${stderr ? `: ${stderr}` : ''}`, stderr || `conmon failed: ${how}`);
    }
  }

  /** Read one JSON line from the sync or attach pipe. */
  async readMessage(stream: Duplex, timeoutMs: number, what: string): Promise<PipeMessage> {
    const reader = this.readers.get(stream);
    if (!reader) throw new RuntimeError('not a message pipe', what);
    const line = await withTimeout(reader.nextLine(), timeoutMs, `timed out waiting for conmon (${what})`);
    if (line === null) {
      const stderr = this.stderrText.trim();
      throw new RuntimeError(`conmon exited without reporting (${what})`, stderr || `conmon closed the ${what} pipe`);
    }
    return parsePipeMessage(line);
  }

  /** Drop our pipe ends. The monitor sees EOF/EPIPE later, which it ignores. */
  close(): void {
    for (const stream of [this.sync, this.start, this.attachPipe]) stream?.destroy();
    this.child.stderr?.destroy();
  }

  /** Kill the intermediate process if it is somehow still there (used on failure paths). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Splits a byte stream into newline-terminated lines; resolves null at EOF. */
class LineReader {
  private buffer = '';
  private readonly lines: string[] = [];
  private ended = false;
  private waiter: ((line: string | null) => void) | null = null;

  constructor(stream: Duplex) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.deliver();
    });
    const onEnd = (): void => {
      this.ended = true;
      this.deliver();
    };
    stream.once('end', onEnd);
    stream.once('close', onEnd);
  }

  private deliver(): void {
    if (!this.waiter) return;
    if (this.lines.length > 0) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(this.lines.shift() as string);
    } else if (this.ended) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(null);
    }
  }

  nextLine(): Promise<string | null> {
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.deliver();
    });
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RuntimeError(message, message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
