/**
 * Running the OCI runtime binary (runc verbs) and the small helpers around it: the environment conmon and
 * runc get, and Podman's classification of runtime error messages.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { RuntimeError } from '../errors.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The environment for conmon and runc, built from an allow-list so nothing of the daemon's own activation
 * leaks into containers: no LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES (Podman 4.3.1 turned LISTEN_FDS into
 * --preserve-fds), no NOTIFY_SOCKET.
 */
export function buildRuntimeEnv(base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {
    PATH: base.PATH || DEFAULT_PATH,
    XDG_RUNTIME_DIR: base.XDG_RUNTIME_DIR || defaultRuntimeDir(),
  };
  for (const [key, value] of Object.entries(base)) {
    if (value === undefined) continue;
    if (key === 'HOME' || key === 'TMPDIR' || key === 'LANG' || key.startsWith('LC_')) env[key] = value;
  }
  return env;
}

function defaultRuntimeDir(): string {
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? '/run' : `/run/user/${uid}`;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  env: Record<string, string>;
  timeoutMs: number;
  logger: Logger;
}

/** Without one trailing newline, as the runtime's output is read (`runc state` JSON, version lines). */
function stripFinalNewline(text: string): string {
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
}

/**
 * Run a command to completion. Never throws for a non-zero exit; throws RuntimeError if it cannot run, is killed
 * by a signal, or times out. Plain child_process (no execa): several run for every container's lifecycle.
 */
export function runCommand(file: string, args: string[], opts: RunOptions): Promise<CommandResult> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    let settled = false;
    child.once('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new RuntimeError(`cannot run ${file}: ${err.message}`, err.message));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      opts.logger.debug({ file, args, exitCode: code, ms: Math.round(ms) }, 'ran runtime command');
      const errText = stripFinalNewline(Buffer.concat(stderr).toString('utf8'));
      if (timedOut) {
        reject(new RuntimeError(`${file} ${args.join(' ')} timed out after ${opts.timeoutMs} ms`, errText));
      } else if (code === null) {
        const reason = `Command was killed with ${signal}: ${file} ${args.join(' ')}`;
        reject(new RuntimeError(`cannot run ${file}: ${reason}`, reason));
      } else {
        resolve({ exitCode: code, stdout: stripFinalNewline(Buffer.concat(stdout).toString('utf8')), stderr: errText, timedOut: false });
      }
    });
  });
}

/** How Podman classifies an OCI runtime's error text (libpod getOCIRuntimeError). */
export type RuntimeErrorKind = 'permission-denied' | 'command-not-found' | 'generic';

/** Podman's sentinel texts for the kinds above; they end the error message. */
export const RuntimeErrorSentinel: Record<RuntimeErrorKind, string> = {
  'permission-denied': 'OCI permission denied',
  'command-not-found': 'OCI runtime attempted to invoke a command that was not found',
  generic: 'OCI runtime error',
};

/**
 * A failure reported by the OCI runtime itself. `causeText` is the runtime's own message; `message` reads
 * like Podman's ("runc: <msg>: OCI runtime error"); `kind` lets the engine map "command not found" to 127
 * and "permission denied" to 126 as Podman does for run/exec.
 */
export class OciRuntimeError extends RuntimeError {
  readonly kind: RuntimeErrorKind;

  constructor(runtimeName: string, runtimeMessage: string) {
    const text = runtimeMessage.trim();
    const kind = classifyRuntimeMessage(text);
    super(`${runtimeName}: ${text}: ${RuntimeErrorSentinel[kind]}`, text);
    this.kind = kind;
  }
}

export function classifyRuntimeMessage(text: string): RuntimeErrorKind {
  if (/permission denied|operation not permitted/i.test(text)) return 'permission-denied';
  if (/executable file not found in|no such file or directory/i.test(text)) return 'command-not-found';
  return 'generic';
}

/**
 * The runtime's own error from its JSON log (`--log-format=json --log <file>`): the last error-level entry's
 * `msg`, else the last entry's. Undefined when the file holds nothing usable.
 */
export function parseRuntimeJsonLog(content: string): string | undefined {
  let lastError: string | undefined;
  let last: string | undefined;
  for (const line of content.split('\n')) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if (typeof entry.msg !== 'string') continue;
      last = entry.msg;
      if (entry.level === 'error' || entry.level === 'fatal' || entry.level === 'panic') lastError = entry.msg;
    } catch {
      // Not JSON (a runtime without --log-format=json support): ignore the line.
    }
  }
  return lastError ?? last;
}

/** The last error's msg from logrus text lines: `time="…" level=error msg="container does not exist"`. */
export function parseRuntimeTextLog(content: string): string | undefined {
  let lastError: string | undefined;
  for (const line of content.split('\n')) {
    const match = /\blevel=(\w+)\s+msg="((?:[^"\\]|\\.)*)"/.exec(line);
    if (!match) continue;
    const [, level, quoted] = match;
    if (level !== 'error' && level !== 'fatal' && level !== 'panic') continue;
    try {
      lastError = JSON.parse(`"${quoted}"`) as string;
    } catch {
      lastError = quoted;
    }
  }
  return lastError;
}

/** Parse `<runtime> --version`: "runc version 1.1.5+ds1\ncommit: …\nspec: 1.0.2-dev…". */
export function parseRuntimeVersion(output: string): { version: string; commit: string; spec: string } {
  const version = /version\s+(\S+)/i.exec(output)?.[1] ?? '';
  const commit = /^commit:\s*(.+)$/im.exec(output)?.[1]?.trim() ?? '';
  const spec = /^spec:\s*(.+)$/im.exec(output)?.[1]?.trim() ?? '';
  return { version, commit, spec };
}
