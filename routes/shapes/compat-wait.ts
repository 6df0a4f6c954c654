/**
 * Docker's wait conditions (POST /containers/{id}/wait?condition=) over the engine's change notifications, and
 * the body Docker answers with: `{"StatusCode": N, "Error": null | {"Message": …}}`.
 */
import type { ContainerManager } from '../../src/engine/containers.js';
import type { Container, ContainerStatus } from '../../src/engine/types.js';
import { PodserveError } from '../../src/errors.js';

export type DockerWaitCondition = 'not-running' | 'next-exit' | 'removed';

export interface DockerWaitBody {
  StatusCode: number;
  Error: { Message: string } | null;
}

/** Podman's notRunningStates: never started, initialised, exited, or on the way out. */
const NOT_RUNNING: readonly ContainerStatus[] = ['configured', 'created', 'exited', 'stopped', 'removing'];

/** Validates the `condition` query value; absent or empty means not-running, as in Docker. */
export function dockerWaitCondition(raw: string | undefined): DockerWaitCondition {
  if (raw === undefined || raw === '') return 'not-running';
  if (raw === 'not-running' || raw === 'next-exit' || raw === 'removed') return raw;
  throw new PodserveError(
    400,
    'not a valid docker condition',
    `failed to parse query parameter 'condition': "${raw}": not a valid docker condition`,
  );
}

/** When the wait is over, given the container as it was at request time. */
function predicate(initial: Container, condition: DockerWaitCondition): (now: Container | undefined) => boolean {
  switch (condition) {
    case 'removed':
      return (now) => now === undefined;
    case 'next-exit':
      // Every exit stamps a new finish time, so "the next exit" is the first exited state with another one.
      return (now) => now === undefined || (now.state.status === 'exited' && now.state.finishedAt !== initial.state.finishedAt);
    case 'not-running':
      return (now) => now === undefined || NOT_RUNNING.includes(now.state.status);
  }
}

/**
 * Subscribes at once (call it before answering anything) and resolves with Docker's body once the condition
 * holds, or undefined when `signal` aborted (the client went away).
 */
export async function dockerWaitOutcome(
  containers: ContainerManager,
  initial: Container,
  condition: DockerWaitCondition,
  signal: AbortSignal,
): Promise<DockerWaitBody | undefined> {
  try {
    const reached = await containers.waitFor(initial.id, predicate(initial, condition), signal);
    if (reached === undefined) {
      // Removed meanwhile (docker run --rm, AutoRemove): the engine remembers how it ended.
      return { StatusCode: containers.removedExitCode(initial.id) ?? initial.state.exitCode, Error: null };
    }
    return { StatusCode: reached.state.exitCode, Error: null };
  } catch (err) {
    if (signal.aborted) return undefined;
    return { StatusCode: -1, Error: { Message: err instanceof Error ? err.message : String(err) } };
  }
}
