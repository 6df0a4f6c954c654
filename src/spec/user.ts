/**
 * Resolves a container user spec ("", "1000", "nobody", "1000:100", "app:staff") to uid, gid,
 * supplementary gids and home directory from the image's /etc/passwd and /etc/group contents,
 * with runc's libcontainer/user rules (which Podman uses):
 * - no user → uid 0 / gid 0 / home "/" unless passwd has an entry for uid 0;
 * - a numeric user missing from passwd is used as is; a missing name is an error;
 * - without an explicit group, the supplementary groups are those listing the user as member.
 */
import { BadRequestError } from '../errors.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ExecUser {
  uid: number;
  gid: number;
  /** Supplementary gids implied by group membership (only when no group was given). */
  sgids: number[];
  home: string;
}

const MAX_ID = 2 ** 31 - 1;

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const id = Number(text);
  return id <= MAX_ID ? id : undefined;
}

/** Parses /etc/passwd text; malformed lines are skipped like runc does. */
export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const fields = trimmed.split(':');
    const uid = parseId(fields[2] ?? '');
    const gid = parseId(fields[3] ?? '');
    if (uid === undefined || gid === undefined) continue;
    entries.push({ name: fields[0] ?? '', uid, gid, home: fields[5] ?? '' });
  }
  return entries;
}

/** Parses /etc/group text. */
export function parseGroup(text: string | undefined): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const fields = trimmed.split(':');
    const gid = parseId(fields[2] ?? '');
    if (gid === undefined) continue;
    const members = (fields[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
    entries.push({ name: fields[0] ?? '', gid, members });
  }
  return entries;
}

/**
 * Resolves `userSpec` against passwd/group contents. Throws BadRequestError naming `field` when a
 * user or group name cannot be found or an id is out of range.
 */
export function resolveUser(
  userSpec: string | undefined,
  passwdText: string | undefined,
  groupText: string | undefined,
  field = 'user',
): ExecUser {
  const spec = userSpec ?? '';
  const colon = spec.indexOf(':');
  const userArg = colon === -1 ? spec : spec.slice(0, colon);
  const groupArg = colon === -1 ? '' : spec.slice(colon + 1);
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);

  let uid = 0;
  let gid = 0;
  let home = '/';
  let userName = '';

  const numericUser = parseId(userArg);
  if (userArg !== '' && numericUser === undefined && /^\d+$/.test(userArg)) {
    throw new BadRequestError(`${field}: uid ${userArg} is out of range`);
  }
  const lookupUid = userArg === '' ? 0 : numericUser;
  const found = passwd.find((p) => (userArg !== '' && p.name === userArg) || (lookupUid !== undefined && p.uid === lookupUid));
  if (found) {
    uid = found.uid;
    gid = found.gid;
    home = found.home || '/';
    userName = found.name;
  } else if (userArg !== '') {
    if (numericUser === undefined) {
      throw new BadRequestError(`${field}: unable to find user ${userArg}: no matching entries in passwd file`);
    }
    uid = numericUser;
  }

  let sgids: number[] = [];
  if (groupArg !== '') {
    const numericGroup = parseId(groupArg);
    const group = groups.find((g) => g.name === groupArg || (numericGroup !== undefined && g.gid === numericGroup));
    if (group) gid = group.gid;
    else if (numericGroup !== undefined) gid = numericGroup;
    else throw new BadRequestError(`${field}: unable to find group ${groupArg}: no matching entries in group file`);
  } else if (userName !== '') {
    sgids = groups.filter((g) => g.members.includes(userName)).map((g) => g.gid);
  }
  return { uid, gid, sgids: [...new Set(sgids)], home };
}

/** Resolves supplementary group names or ids (spec `groups`) to gids. */
export function resolveGroups(names: readonly string[], groupText: string | undefined, field = 'groups'): number[] {
  const groups = parseGroup(groupText);
  return names.map((name) => {
    const numeric = parseId(name);
    const group = groups.find((g) => g.name === name || (numeric !== undefined && g.gid === numeric));
    if (group) return group.gid;
    if (numeric !== undefined) return numeric;
    throw new BadRequestError(`${field}: unable to find group ${name}: no matching entries in group file`);
  });
}
