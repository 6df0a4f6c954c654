/**
 * Image references ("docker.io/library/busybox:1.36@sha256:…"), following the grammar of the
 * distribution project that Podman uses, and Podman's normalisation rules on top of it:
 * unqualified names become `localhost/<name>` when stored, and `docker.io/library/<name>` when a
 * Docker-style lookup is wanted.
 */

const alphaNumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]*)';
const nameComponent = `${alphaNumeric}(?:${separator}${alphaNumeric})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domain = `${domainComponent}(?:\\.${domainComponent})*(?::[0-9]+)?`;
const tag = '[\\w][\\w.-]{0,127}';
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const name = `(?:${domain}/)?${nameComponent}(?:/${nameComponent})*`;

const referenceRe = new RegExp(`^(${name})(?::(${tag}))?(?:@(${digest}))?$`);
const anchoredNameRe = new RegExp(`^(?:(${domain})/)?(${nameComponent}(?:/${nameComponent})*)$`);
const tagRe = new RegExp(`^${tag}$`);
export const fullIdRe = /^[a-f0-9]{64}$/;
const sha256DigestRe = /^sha256:[a-f0-9]{64}$/;

const defaultDomain = 'docker.io';
const legacyDefaultDomain = 'index.docker.io';
const officialRepoPrefix = 'library/';
const maxNameLength = 255;

export class ReferenceError extends Error {}

/** A parsed reference. `domain` is empty for references that were not normalised. */
export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

/** Repository name: domain and path. */
export function repositoryName(ref: Reference): string {
  return ref.domain ? `${ref.domain}/${ref.path}` : ref.path;
}

export function formatReference(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Parses without normalising (like distribution's `reference.Parse`). */
export function parseReference(s: string): Reference {
  const m = referenceRe.exec(s);
  if (!m) {
    if (s === '') throw new ReferenceError('repository name must have at least one component');
    if (referenceRe.test(s.toLowerCase())) throw new ReferenceError('repository name must be lowercase');
    throw new ReferenceError(`invalid reference format: "${s}"`);
  }
  const [, nameText, tagText, digestText] = m;
  if (nameText!.length > maxNameLength) {
    throw new ReferenceError(`repository name must not be more than ${maxNameLength} characters`);
  }
  const parts = anchoredNameRe.exec(nameText!);
  const ref: Reference = parts ? { domain: parts[1] ?? '', path: parts[2]! } : { domain: '', path: nameText! };
  if (tagText !== undefined) ref.tag = tagText;
  if (digestText !== undefined) {
    if (digestText.startsWith('sha256:') && !sha256DigestRe.test(digestText)) {
      throw new ReferenceError(`invalid checksum digest format: "${digestText}"`);
    }
    ref.digest = digestText;
  }
  return ref;
}

function splitDockerDomain(s: string): { domain: string; remainder: string } {
  const i = s.indexOf('/');
  let domainPart: string;
  let remainder: string;
  if (i === -1 || (!/[.:]/.test(s.slice(0, i)) && s.slice(0, i) !== 'localhost')) {
    domainPart = defaultDomain;
    remainder = s;
  } else {
    domainPart = s.slice(0, i);
    remainder = s.slice(i + 1);
  }
  if (domainPart === legacyDefaultDomain) domainPart = defaultDomain;
  if (domainPart === defaultDomain && !remainder.includes('/')) remainder = officialRepoPrefix + remainder;
  return { domain: domainPart, remainder };
}

/** Docker's normalisation: `busybox` → `docker.io/library/busybox` (like `ParseNormalizedNamed`). */
export function parseNormalizedNamed(s: string): Reference {
  if (fullIdRe.test(s)) {
    throw new ReferenceError(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const { domain: d, remainder } = splitDockerDomain(s);
  const colon = remainder.indexOf(':');
  const remoteName = colon > -1 ? remainder.slice(0, colon) : remainder;
  if (remoteName.toLowerCase() !== remoteName) {
    throw new ReferenceError('invalid reference format: repository name must be lowercase');
  }
  return parseReference(`${d}/${remainder}`);
}

/** Adds `:latest` when the reference has neither tag nor digest. */
export function tagNameOnly(ref: Reference): Reference {
  if (ref.tag === undefined && ref.digest === undefined) return { ...ref, tag: 'latest' };
  return ref;
}

/** Drops the tag of a reference that has both a tag and a digest (the digest wins, as in Docker). */
export function stripTagIfDigested(ref: Reference): Reference {
  if (ref.tag !== undefined && ref.digest !== undefined) {
    const { tag: _dropped, ...rest } = ref;
    return rest;
  }
  return ref;
}

function isQualifiedDomain(d: string): boolean {
  return /[.:]/.test(d) || d === 'localhost';
}

/**
 * Podman's normalisation for names it stores: unqualified names get `localhost/`, `docker.io`
 * names get `library/`, untagged names get `:latest` (libimage `NormalizeName`).
 */
export function normalizeName(s: string): string {
  const ref = parseReference(s);
  let text = s;
  if (!isQualifiedDomain(ref.domain)) text = `localhost/${formatReference(ref).replace(/^\/+/, '')}`;
  const named = stripTagIfDigested(parseNormalizedNamed(text));
  return formatReference(tagNameOnly(named));
}

/** A short name has no registry part (`busybox`, `library/busybox`, `foo/bar:1`). */
export function isShortName(s: string): boolean {
  try {
    return !isQualifiedDomain(parseReference(s).domain);
  } catch {
    return false;
  }
}

/**
 * The fully qualified names a user-supplied name may stand for, in lookup order:
 * `localhost/<name>` (and every search registry) for short names, the name itself otherwise,
 * then the Docker Hub spelling for backwards compatibility.
 */
export function lookupCandidates(s: string, searchRegistries: readonly string[] = []): string[] {
  const ref = parseReference(s);
  const out: string[] = [];
  if (isQualifiedDomain(ref.domain)) {
    out.push(formatReference(tagNameOnly(parseNormalizedNamed(s))));
  } else {
    for (const registry of ['localhost', ...searchRegistries]) {
      out.push(formatReference(tagNameOnly(parseNormalizedNamed(`${registry}/${s}`))));
    }
  }
  try {
    out.push(formatReference(tagNameOnly(stripTagIfDigested(parseNormalizedNamed(s)))));
  } catch {
    // Not expressible as a Docker Hub name: the other candidates stay.
  }
  return [...new Set(out)];
}

/** Splits a stored name into repository and tag (`<none>` when it has none). */
export function splitRepoTag(storedName: string): { repo: string; tag: string } {
  try {
    const ref = parseReference(storedName);
    return { repo: repositoryName(ref), tag: ref.tag ?? '<none>' };
  } catch {
    return { repo: storedName, tag: '<none>' };
  }
}

export function isValidTag(t: string): boolean {
  return tagRe.test(t);
}
