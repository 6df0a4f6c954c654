import t from 'tap';
import {
  ALL_CAPABILITIES, DEFAULT_CAPABILITIES, capabilitiesFromMask, mergeCapabilities, normalizeCapability,
} from '../../../src/spec/capabilities.js';

const bounding = [...ALL_CAPABILITIES];

t.test('normalize names', async (t) => {
  t.equal(normalizeCapability('net_admin', 'cap_add'), 'CAP_NET_ADMIN');
  t.equal(normalizeCapability('CAP_SYS_ADMIN', 'cap_add'), 'CAP_SYS_ADMIN');
  t.equal(normalizeCapability('all', 'cap_add'), 'ALL');
  t.throws(() => normalizeCapability('NET_FOO', 'cap_add'), { message: 'cap_add: unknown capability "NET_FOO"', status: 400 });
});

t.test('merge table', async (t) => {
  const base = DEFAULT_CAPABILITIES;
  const table: Array<{ name: string; add?: string[]; drop?: string[]; bound?: string[]; want: string[] }> = [
    { name: 'defaults only', want: [...base].sort() },
    { name: 'add one', add: ['net_admin'], want: [...base, 'CAP_NET_ADMIN'].sort() },
    { name: 'drop one', drop: ['CHOWN'], want: base.filter((c) => c !== 'CAP_CHOWN').sort() },
    { name: 'add existing is a no-op', add: ['CAP_KILL'], want: [...base].sort() },
    { name: 'drop all keeps adds', add: ['NET_RAW'], drop: ['ALL'], want: ['CAP_NET_RAW'] },
    { name: 'drop all alone', drop: ['all'], want: [] },
    { name: 'add all gives the bounding set', add: ['ALL'], want: [...bounding].sort() },
    { name: 'add all minus a drop', add: ['ALL'], drop: ['SYS_ADMIN'], want: bounding.filter((c) => c !== 'CAP_SYS_ADMIN').sort() },
    { name: 'bounding set limits', add: ['SYS_RESOURCE', 'SYS_ADMIN'], bound: bounding.filter((c) => c !== 'CAP_SYS_RESOURCE'), want: [...base, 'CAP_SYS_ADMIN'].sort() },
  ];
  for (const row of table) {
    t.strictSame(mergeCapabilities(base, row.add, row.drop, row.bound ?? bounding), row.want, row.name);
  }
});

t.test('merge errors', async (t) => {
  t.throws(() => mergeCapabilities(DEFAULT_CAPABILITIES, ['ALL'], ['ALL'], bounding), { message: /adding all caps and removing all caps not allowed/ });
  t.throws(() => mergeCapabilities(DEFAULT_CAPABILITIES, ['NET_ADMIN'], ['net_admin'], bounding), { message: /"CAP_NET_ADMIN" cannot be dropped and added/ });
  t.throws(() => mergeCapabilities(DEFAULT_CAPABILITIES, [], ['BOGUS'], bounding), { message: 'cap_drop: unknown capability "BOGUS"' });
});

t.test('capabilities from a /proc status mask', async (t) => {
  // This machine's CapBnd: every capability but CAP_SYS_RESOURCE (bit 24).
  const caps = capabilitiesFromMask('000001fffeffffff');
  t.equal(caps.length, 40);
  t.notOk(caps.includes('CAP_SYS_RESOURCE'));
  t.ok(caps.includes('CAP_CHECKPOINT_RESTORE'));
  t.strictSame(capabilitiesFromMask('0000000000000001'), ['CAP_CHOWN']);
  t.strictSame(capabilitiesFromMask('0000000000000000'), []);
  t.strictSame(capabilitiesFromMask('0000000000000021'), ['CAP_CHOWN', 'CAP_KILL']);
});
