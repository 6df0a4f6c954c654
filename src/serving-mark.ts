/**
 * The serving mark: while a daemon serves, `<runroot>/serving.pid` holds its pid and start time. conmon runs the
 * exit command on every container exit, and when a daemon serves that run root it has nothing to do (the daemon
 * watches the exit files itself). The exit command therefore starts as a few lines of /bin/sh that look for a
 * live mark and stop there; only without one does it go on to `podserve container cleanup`, which starts Node
 * (about 60 ms of CPU per container exit, on every exit, otherwise).
 *
 * The start time (field 22 of /proc/PID/stat) guards against a stale mark whose pid was reused: a daemon killed
 * with SIGKILL leaves its mark behind, and no other process can have that pid with that start time.
 */
import { readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export function servingMarkPath(runRoot: string): string {
  return join(runRoot, 'serving.pid');
}

/** Start time of a process in clock ticks since boot, as /proc/PID/stat field 22 gives it. */
export function processStartTime(pid: number | 'self' = 'self'): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "pid (comm) ": the command name may hold spaces and parentheses, nothing after it does.
  const rest = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return rest[19] ?? '';
}

/** Marks this process as the daemon serving `runRoot` (call once it accepts connections). */
export async function writeServingMark(runRoot: string): Promise<void> {
  const path = servingMarkPath(runRoot);
  const tmp = `${path}.${process.pid}`;
  await writeFile(tmp, `${process.pid} ${processStartTime()}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/** Removes the mark if it is this process's (call as soon as shutting down begins). */
export async function removeServingMark(runRoot: string): Promise<void> {
  const path = servingMarkPath(runRoot);
  let content = '';
  try {
    content = readFileSync(path, 'utf8');
  } catch {
    return;
  }
  if (content.split(' ')[0] === String(process.pid)) await rm(path, { force: true });
}

/**
 * `sh -c GATE name MARK COMMAND…`: exits 0 when MARK names a live process with the recorded start time, else
 * execs COMMAND. Only shell built-ins run before that decision (no fork).
 */
export const EXIT_COMMAND_GATE = [
  'mark=$1; shift',
  'if [ -r "$mark" ] && read -r pid start <"$mark" && [ -r "/proc/$pid/stat" ] && read -r stat <"/proc/$pid/stat"; then',
  '  started() { shift 19; [ "$1" = "$start" ]; }',
  '  started ${stat##*) } && exit 0',
  'fi',
  'exec "$@"',
].join('\n');

/** Wraps an exit command so that it does not run while a daemon serves `runRoot`. */
export function gatedExitCommand(runRoot: string, command: string[]): string[] {
  return ['/bin/sh', '-c', EXIT_COMMAND_GATE, 'podserve-exit', servingMarkPath(runRoot), ...command];
}
