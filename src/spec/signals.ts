/**
 * Linux signal names ↔ numbers, parsed the way Podman does (pkg/signal): a number, or a name with or
 * without the SIG prefix in any case, including the real-time forms RTMIN+n and RTMAX-n.
 */
import { BadRequestError } from '../errors.js';

export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

/** Canonical names (without SIG) for the classic signals on x86_64/arm64 Linux. */
const CLASSIC_SIGNALS: ReadonlyArray<readonly [string, number]> = [
  ['HUP', 1], ['INT', 2], ['QUIT', 3], ['ILL', 4], ['TRAP', 5], ['ABRT', 6], ['BUS', 7], ['FPE', 8],
  ['KILL', 9], ['USR1', 10], ['SEGV', 11], ['USR2', 12], ['PIPE', 13], ['ALRM', 14], ['TERM', 15],
  ['STKFLT', 16], ['CHLD', 17], ['CONT', 18], ['STOP', 19], ['TSTP', 20], ['TTIN', 21], ['TTOU', 22],
  ['URG', 23], ['XCPU', 24], ['XFSZ', 25], ['VTALRM', 26], ['PROF', 27], ['WINCH', 28], ['IO', 29],
  ['PWR', 30], ['SYS', 31],
];

/** Alternative names accepted on input but never produced. */
const ALIASES: ReadonlyArray<readonly [string, number]> = [['IOT', 6], ['CLD', 17], ['POLL', 29]];

const NAME_TO_NUMBER = new Map<string, number>();
const NUMBER_TO_NAME = new Map<number, string>();

for (const [name, num] of CLASSIC_SIGNALS) {
  NAME_TO_NUMBER.set(name, num);
  NUMBER_TO_NAME.set(num, name);
}
for (const [name, num] of ALIASES) NAME_TO_NUMBER.set(name, num);
// Real-time signals: Podman names the lower half RTMIN+n and the upper half RTMAX-n.
NAME_TO_NUMBER.set('RTMIN', SIGRTMIN);
NUMBER_TO_NAME.set(SIGRTMIN, 'RTMIN');
for (let n = 1; n <= 15; n++) {
  NAME_TO_NUMBER.set(`RTMIN+${n}`, SIGRTMIN + n);
  NUMBER_TO_NAME.set(SIGRTMIN + n, `RTMIN+${n}`);
}
for (let n = 14; n >= 1; n--) {
  NAME_TO_NUMBER.set(`RTMAX-${n}`, SIGRTMAX - n);
  NUMBER_TO_NAME.set(SIGRTMAX - n, `RTMAX-${n}`);
}
NAME_TO_NUMBER.set('RTMAX', SIGRTMAX);
NUMBER_TO_NAME.set(SIGRTMAX, 'RTMAX');

/**
 * Parses a signal given as a name ("SIGTERM", "term", "RTMIN+3") or a number (15, "15", "-9").
 * Returns undefined when it is not a valid Linux signal (numbers must be 1..64).
 */
export function tryParseSignal(raw: string | number): number | undefined {
  if (typeof raw === 'number') {
    return Number.isInteger(raw) && raw >= 1 && raw <= SIGRTMAX ? raw : undefined;
  }
  // Podman's ParseSignalNameOrNumber strips one leading dash (as in `kill -9`).
  const text = raw.trim().replace(/^-/, '');
  if (/^\d+$/.test(text)) return tryParseSignal(Number(text));
  const upper = text.toUpperCase();
  const bare = upper.startsWith('SIG') ? upper.slice(3) : upper;
  // RTMIN+n / RTMAX-n beyond the named range are still valid numbers (e.g. RTMIN+20 = RTMAX-10).
  const rt = /^RT(MIN|MAX)([+-]\d+)?$/.exec(bare);
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
    const offset = rt[2] === undefined ? 0 : Number(rt[2]);
    if ((rt[1] === 'MIN' && offset < 0) || (rt[1] === 'MAX' && offset > 0)) return undefined;
    const num = base + offset;
    return num >= SIGRTMIN && num <= SIGRTMAX ? num : undefined;
  }
  return NAME_TO_NUMBER.get(bare);
}

/**
 * Like tryParseSignal but throws BadRequestError("invalid signal: X") naming `field` when given,
 * e.g. parseSignal('SIGFOO', 'stop_signal') → `stop_signal: invalid signal: SIGFOO`.
 */
export function parseSignal(raw: string | number, field?: string): number {
  const num = tryParseSignal(raw);
  if (num === undefined) {
    const message = `invalid signal: ${String(raw)}`;
    throw new BadRequestError(field ? `${field}: ${message}` : message);
  }
  return num;
}

/** "SIGTERM" for 15, "SIGRTMIN+3" for 37; undefined outside 1..64. */
export function signalName(num: number): string | undefined {
  const name = NUMBER_TO_NAME.get(num);
  return name === undefined ? undefined : `SIG${name}`;
}

/** All canonical signal names with the SIG prefix, by number. */
export function allSignals(): Array<{ name: string; number: number }> {
  return [...NUMBER_TO_NAME.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([number, name]) => ({ name: `SIG${name}`, number }));
}
