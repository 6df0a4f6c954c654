/**
 * Typed errors shared by every layer. Each carries the HTTP status the API answers with and keeps
 * Podman's sentinel wording ("no such container", …): podman-remote matches on those substrings.
 * Nothing here knows about Fastify; the server's error handler turns them into
 * {"cause","message","response"} bodies.
 */
export class PodserveError extends Error {
  /** HTTP status the API replies with. */
  readonly status: number;
  /** Root cause as Podman reports it in the `cause` field (its sentinel text). */
  readonly causeText: string;

  constructor(status: number, causeText: string, message?: string) {
    super(message ?? causeText);
    this.status = status;
    this.causeText = causeText;
    this.name = new.target.name;
  }
}

/** Podman's sentinel texts, kept verbatim: clients grep for them. */
export const Sentinel = {
  noSuchContainer: 'no such container',
  /** containers/storage's ErrImageUnknown, which Podman 4.3.1 reports for unknown images. */
  noSuchImage: 'image not known',
  noSuchExec: 'no such exec session',
  stateImproper: 'container state improper',
  nameInUse: 'name or ID already in use',
  ctrExists: 'container already exists',
  invalidArg: 'invalid argument',
  imageInUse: 'image is in use by a container',
  detached: 'detached from container',
  ctrRemoved: 'container has already been removed',
  execSessionStateInvalid: 'exec session state improper',
} as const;

export class NotFoundError extends PodserveError {
  constructor(causeText: string, message?: string) {
    super(404, causeText, message);
  }
}

export class ConflictError extends PodserveError {
  constructor(causeText: string, message?: string) {
    super(409, causeText, message);
  }
}

export class BadRequestError extends PodserveError {
  constructor(message: string, causeText: string = Sentinel.invalidArg) {
    super(400, causeText, message);
  }
}

export class InternalError extends PodserveError {
  constructor(message: string, causeText?: string) {
    super(500, causeText ?? message, message);
  }
}

/** The runtime (runc, conmon, criu) failed; `causeText` is its own stderr. */
export class RuntimeError extends PodserveError {
  constructor(message: string, runtimeStderr: string) {
    super(500, runtimeStderr.trim() || message, message);
  }
}

export const noSuchContainer = (nameOrId: string): NotFoundError =>
  new NotFoundError(Sentinel.noSuchContainer, `no container with name or ID "${nameOrId}" found: ${Sentinel.noSuchContainer}`);

export const noSuchImage = (nameOrId: string): NotFoundError =>
  new NotFoundError(Sentinel.noSuchImage, `${nameOrId}: image not known`);

export const noSuchExec = (id: string): NotFoundError =>
  new NotFoundError(Sentinel.noSuchExec, `no exec session with ID ${id} found: ${Sentinel.noSuchExec}`);

/**
 * An illegal state change. Podman 4.3.1's libpod handlers answer these with 500; the Docker-compatible routes
 * turn them into 409 (see routes/compat).
 */
export const stateImproper = (message: string): PodserveError =>
  new PodserveError(500, Sentinel.stateImproper, `${message}: ${Sentinel.stateImproper}`);
