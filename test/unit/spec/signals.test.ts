import t from 'tap';
import { allSignals, parseSignal, signalName, tryParseSignal } from '../../../src/spec/signals.js';
import { BadRequestError } from '../../../src/errors.js';

t.test('names and numbers parse like podman', async (t) => {
  const table: Array<[string | number, number | undefined]> = [
    ['SIGTERM', 15], ['TERM', 15], ['term', 15], ['sigterm', 15], ['15', 15], [15, 15], ['-9', 9], ['KILL', 9],
    ['SIGKILL', 9], ['hup', 1], ['USR1', 10], ['SIGUSR2', 12], ['CHLD', 17], ['CLD', 17], ['IOT', 6], ['POLL', 29],
    ['WINCH', 28], ['SIGRTMIN', 34], ['RTMIN+3', 37], ['SIGRTMIN+15', 49], ['RTMAX-14', 50], ['RTMAX', 64],
    ['rtmax-1', 63], ['RTMIN+20', 54], [' TERM ', 15], ['64', 64],
    // invalid
    ['0', undefined], [0, undefined], ['65', undefined], [65, undefined], [1.5, undefined], ['SIGFOO', undefined],
    ['', undefined], ['RTMIN-1', undefined], ['RTMAX+1', undefined], ['RTMIN+31', undefined], ['SIG', undefined],
  ];
  for (const [input, expected] of table) t.equal(tryParseSignal(input), expected, `parse ${JSON.stringify(input)}`);
});

t.test('parseSignal throws BadRequestError naming the field', async (t) => {
  t.equal(parseSignal('SIGINT', 'stop_signal'), 2);
  const err = t.throws(() => parseSignal('SIGNOPE', 'stop_signal')) as BadRequestError;
  t.ok(err instanceof BadRequestError);
  t.equal(err.status, 400);
  t.equal(err.message, 'stop_signal: invalid signal: SIGNOPE');
  t.throws(() => parseSignal(99), { message: 'invalid signal: 99' });
});

t.test('names for numbers', async (t) => {
  t.equal(signalName(15), 'SIGTERM');
  t.equal(signalName(17), 'SIGCHLD');
  t.equal(signalName(6), 'SIGABRT');
  t.equal(signalName(29), 'SIGIO');
  t.equal(signalName(34), 'SIGRTMIN');
  t.equal(signalName(37), 'SIGRTMIN+3');
  t.equal(signalName(50), 'SIGRTMAX-14');
  t.equal(signalName(64), 'SIGRTMAX');
  t.equal(signalName(0), undefined);
  t.equal(signalName(65), undefined);
  const all = allSignals();
  t.equal(all.length, 64 - 2, 'every number except 32 and 33 (glibc-reserved) has a name');
  for (const { name, number } of all) t.equal(tryParseSignal(name), number, `${name} round-trips`);
});
