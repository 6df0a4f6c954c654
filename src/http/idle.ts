import type { Server } from 'node:http';

/**
 * Idle exit, as `podman system service --time N`: the daemon is idle when no request is in flight and no
 * hijacked or streaming connection is open (each counted until its response closes, exactly once). After
 * `seconds` of that, `onIdle` runs. New connections count as activity so a client that just connected is
 * not cut off while its request is on the way.
 */
export class IdleTracker {
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Bumped on every sign of activity, so a decision taken on stale information can be dropped. */
  private generation = 0;

  constructor(
    private readonly seconds: number,
    private readonly onIdle: () => void,
  ) {}

  attach(server: Server): void {
    server.on('connection', () => this.touch());
    this.touch();
  }

  /** Marks one unit of work as begun; the returned function ends it (idempotent). */
  begin(): () => void {
    this.active++;
    this.generation++;
    this.clear();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      this.touch();
    };
  }

  get activeCount(): number {
    return this.active;
  }

  stop(): void {
    this.stopped = true;
    this.clear();
  }

  private touch(): void {
    this.generation++;
    this.clear();
    if (this.seconds <= 0 || this.stopped || this.active > 0) return;
    this.timer = setTimeout(() => {
      // Timers run before the event loop polls for I/O: a client may be waiting in the accept queue right now
      // (a busy machine, or a socket-activated start that took longer than the idle time). Decide after this
      // turn's poll, in which its connection is accepted and touches us.
      const seen = this.generation;
      setImmediate(() => {
        if (seen === this.generation && this.active === 0 && !this.stopped) this.onIdle();
      });
    }, this.seconds * 1000);
    this.timer.unref();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
