/**
 * Memory given back when the daemon goes quiet. V8 keeps the heap (young generation included) and glibc keeps
 * the C heap at the size the busiest moment needed, long after it passed: after a burst of requests, a log
 * read or an image load, a daemon that then idles for hours would hold tens of MiB it does not use (measured:
 * 130 MiB after reading a 100 MiB log, 70 MiB once given back). Once no request has begun for QUIET_MS, one
 * V8 low-memory notification (full collections that also shrink the young generation) and a malloc_trim run,
 * through the native addon; then nothing until requests come again. It costs a few tens of milliseconds once
 * per quiet period, when nobody waits.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { nativeAddon } from './native.js';

const QUIET_MS = 1500;

export class QuietMemoryReturn {
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly logger: Logger,
    quietMs = QUIET_MS,
  ) {
    this.timer = setTimeout(() => this.giveBack(), quietMs);
    this.timer.unref();
  }

  /** A request began: the quiet period starts over (one timer, re-armed, whatever the request rate). */
  activity(): void {
    if (!this.stopped) this.timer.refresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private giveBack(): void {
    let lowMemory: () => boolean;
    try {
      lowMemory = nativeAddon().lowMemory;
    } catch {
      return; // no addon built: nothing to call
    }
    const before = residentMiB();
    const started = performance.now();
    lowMemory();
    this.logger.debug({ rssBeforeMiB: before, rssAfterMiB: residentMiB(), ms: Math.round(performance.now() - started) }, 'memory given back');
  }
}

function residentMiB(): number {
  const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  return Math.round(kib / 1024);
}
