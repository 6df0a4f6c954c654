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
    this.clear();
    if (this.seconds <= 0 || this.stopped || this.active > 0) return;
    this.timer = setTimeout(() => {
      if (this.active === 0 && !this.stopped) this.onIdle();
    }, this.seconds * 1000);
    this.timer.unref();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
