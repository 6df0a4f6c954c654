import { formatRFC3339Nano } from './logs.js';

const hrtimeOrigin = process.hrtime.bigint();
const wallOrigin = BigInt(Date.now()) * 1_000_000n;

/** Nanoseconds since the epoch: wall clock at start-up plus the monotonic clock since, for sub-ms digits. */
export function nowNanos(): bigint {
  return wallOrigin + (process.hrtime.bigint() - hrtimeOrigin);
}

/** The current time as Go's RFC3339Nano, in UTC: what Podman prints for Created/StartedAt/FinishedAt. */
export function nowRFC3339Nano(): string {
  return formatRFC3339Nano(nowNanos());
}

/** A Date as RFC3339Nano (millisecond precision). */
export function dateRFC3339Nano(date: Date): string {
  return formatRFC3339Nano(BigInt(date.getTime()) * 1_000_000n);
}
