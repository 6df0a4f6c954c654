import t from 'tap';
import { parseGroup, parsePasswd, resolveGroups, resolveUser } from '../../../src/spec/user.js';

const passwd = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  'broken line',
  'nohome:x:1001:1001::',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
].join('\n');
const group = [
  'root:x:0:',
  'wheel:x:10:root,app',
  'staff:x:50:app',
  'app:x:1000:',
  'nogroup:x:65534:',
].join('\n');

t.test('parsers', async (t) => {
  t.equal(parsePasswd(passwd).length, 5);
  t.strictSame(parsePasswd('app:x:1000:1000:App:/home/app:/bin/sh')[0], { name: 'app', uid: 1000, gid: 1000, home: '/home/app' });
  t.strictSame(parseGroup(group)[1], { name: 'wheel', gid: 10, members: ['root', 'app'] });
  t.strictSame(parsePasswd(undefined), []);
});

t.test('resolution table (runc semantics)', async (t) => {
  const table: Array<[string, { uid: number; gid: number; sgids: number[]; home: string }]> = [
    ['', { uid: 0, gid: 0, sgids: [10], home: '/root' }],
    ['root', { uid: 0, gid: 0, sgids: [10], home: '/root' }],
    ['0', { uid: 0, gid: 0, sgids: [10], home: '/root' }],
    ['app', { uid: 1000, gid: 1000, sgids: [10, 50], home: '/home/app' }],
    ['1000', { uid: 1000, gid: 1000, sgids: [10, 50], home: '/home/app' }],
    ['app:staff', { uid: 1000, gid: 50, sgids: [], home: '/home/app' }],
    ['app:4242', { uid: 1000, gid: 4242, sgids: [], home: '/home/app' }],
    ['4242', { uid: 4242, gid: 0, sgids: [], home: '/' }],
    ['4242:4343', { uid: 4242, gid: 4343, sgids: [], home: '/' }],
    ['nohome', { uid: 1001, gid: 1001, sgids: [], home: '/' }],
    ['nobody:nogroup', { uid: 65534, gid: 65534, sgids: [], home: '/nonexistent' }],
  ];
  for (const [spec, want] of table) t.strictSame(resolveUser(spec, passwd, group), want, `user "${spec}"`);
});

t.test('no passwd file', async (t) => {
  t.strictSame(resolveUser('', undefined, undefined), { uid: 0, gid: 0, sgids: [], home: '/' });
  t.strictSame(resolveUser('1000:1000', undefined, undefined), { uid: 1000, gid: 1000, sgids: [], home: '/' });
  t.throws(() => resolveUser('app', undefined, undefined), { message: 'user: unable to find user app: no matching entries in passwd file', status: 400 });
});

t.test('errors name the field', async (t) => {
  t.throws(() => resolveUser('ghost', passwd, group, 'User'), { message: 'User: unable to find user ghost: no matching entries in passwd file' });
  t.throws(() => resolveUser('app:ghosts', passwd, group), { message: 'user: unable to find group ghosts: no matching entries in group file' });
  t.throws(() => resolveUser('99999999999', passwd, group), { message: /out of range/ });
});

t.test('supplementary groups', async (t) => {
  t.strictSame(resolveGroups(['wheel', '77', 'staff'], group), [10, 77, 50]);
  t.throws(() => resolveGroups(['ghosts'], group), { message: 'groups: unable to find group ghosts: no matching entries in group file' });
});
