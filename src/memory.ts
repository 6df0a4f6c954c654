/**
 * Memory given back when the daemon goes quiet. V8 keeps the heap (young generation included) and glibc keeps
 * the C heap at the size the busiest moment needed, long after it passed: after a burst of requests, a log
 * read or an image load, a daemon that then idles for hours would hold tens of MiB it does not use (measured:
 * 130 MiB after reading a 100 MiB log, 70 MiB once given back). Two stages, through the native addon, each once
 * per quiet period:
 *  - TRIM_AFTER_MS after the last request began, malloc_trim: the C heap's free pages, at no cost to what
 *    follows;
 *  - COLLECT_AFTER_MS after it, V8's low-memory notification: full collections that also shrink the young
 *    generation and drop compiled-code caches. Not sooner, because the requests after it cost more for a
 *    while (measured: 25-32 instead of 19-21 us per _ping): traffic with pauses of a few seconds must not pay
 *    that, a daemon idle for a minute does not mind.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { nativeAddonIfBuilt } from './native.js';

export interface QuietTimes {
  trimAfterMs: number;
  collectAfterMs: number;
}

const DEFAULT_TIMES: QuietTimes = { trimAfterMs: 5_000, collectAfterMs: 60_000 };

export class QuietMemoryReturn {
  private readonly trimTimer: NodeJS.Timeout;
  private readonly collectTimer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly logger: Logger,
    times: QuietTimes = DEFAULT_TIMES,
  ) {
    this.trimTimer = setTimeout(() => this.giveBack('trimMemory'), times.trimAfterMs);
    this.collectTimer = setTimeout(() => this.giveBack('lowMemory'), times.collectAfterMs);
    this.trimTimer.unref();
    this.collectTimer.unref();
  }

  /** A request began: the quiet period starts over (the timers are re-armed, not re-created, per request). */
  activity(): void {
    if (this.stopped) return;
    this.trimTimer.refresh();
    this.collectTimer.refresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.trimTimer);
    clearTimeout(this.collectTimer);
  }

  private giveBack(how: 'trimMemory' | 'lowMemory'): void {
    const call = nativeAddonIfBuilt()?.[how];
    if (!call) return; // no addon built: nothing to call
    const before = residentMiB();
    const started = performance.now();
    call();
    this.logger.debug({ how, rssBeforeMiB: before, rssAfterMiB: residentMiB(), ms: Math.round(performance.now() - started) }, 'memory given back');
  }
}

function residentMiB(): number {
  const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  return Math.round(kib / 1024);
}
