/**
 * A client for the registry HTTP API v2 (the OCI distribution spec, as Docker's and the CNCF
 * distribution registry serve it), over node's http/https:
 * - endpoint discovery by pinging /v2/: https, and with TLS verification off (Podman's
 *   `--tls-verify=false`) https without verification, then plain http;
 * - authentication from the ping's challenge: Bearer tokens fetched from the realm (with Basic
 *   credentials or an identity token), or Basic credentials sent directly;
 * - manifests (fetched with an Accept list for OCI and Docker schema 2, documents and indexes),
 *   blobs (GET following redirects, HEAD), uploads (POST then a monolithic PUT, or a streamed PATCH
 *   and a closing PUT) and manifest PUTs.
 * Errors read like containers/image's, which is what Podman users see.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import { BadRequestError, PodserveError } from '../errors.js';
import { Sha256Counter, sha256Digest } from './digest.js';
import { MediaType } from './types.js';

/** Credentials for one registry, as an auth file or an X-Registry-Auth header holds them. */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (`docker login` with an identity provider). */
  identityToken?: string;
}

/** What a request brought: one set of credentials for any registry, and/or credentials per registry. */
export interface RegistryAuth {
  default?: RegistryCredentials;
  /** Keys as in an auth file: `host[:port]`, optionally with a repository path, or a URL. */
  registries?: Record<string, RegistryCredentials>;
}

/** A registry's error: carries the registry's HTTP status when there was one. */
export class RegistryError extends PodserveError {
  constructor(
    message: string,
    readonly registryStatus?: number,
  ) {
    super(500, message, message);
  }

  /** The same error with `context: ` in front of its message. */
  within(context: string): RegistryError {
    return new RegistryError(`${context}: ${this.message}`, this.registryStatus);
  }
}

/** Manifest media types a pull accepts, most wanted first. */
export const acceptedManifestTypes = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
  MediaType.ociIndex,
  MediaType.dockerManifestList,
] as const;

/** Manifests and configs above this size are refused (containers/image's limit for manifests is 4 MiB). */
const maxManifestBytes = 4 * 1024 * 1024;
const maxErrorBodyBytes = 64 * 1024;
const maxRedirects = 5;
/** Inactivity limit on a registry connection. */
const socketTimeoutMs = 120_000;

// ---------------------------------------------------------------------------------------------
// credentials

/** Maps an auth-file key (`https://index.docker.io/v1/`, `quay.io/org`, …) to `host[:port][/path]`. */
function normalizeAuthKey(key: string): string {
  let k = key.trim();
  const isUrl = /^https?:\/\//.test(k);
  k = k.replace(/^https?:\/\//, '');
  if (isUrl) k = k.split('/')[0]!; // URLs name whole registries
  k = k.replace(/\/+$/, '');
  const [host, ...rest] = k.split('/');
  const h = host === 'registry-1.docker.io' || host === 'index.docker.io' ? 'docker.io' : host!;
  return [h, ...rest].join('/');
}

/**
 * Credentials for `registry`/`repository`: the request's default credentials first (Podman's single
 * X-Registry-Auth), else the most specific matching key of the per-registry map.
 */
export function credentialsFor(auth: RegistryAuth | undefined, registry: string, repository: string): RegistryCredentials | undefined {
  const d = auth?.default;
  if (d && (d.username || d.identityToken)) return d;
  let best: { length: number; creds: RegistryCredentials } | undefined;
  const full = `${registry}/${repository}`;
  for (const [key, creds] of Object.entries(auth?.registries ?? {})) {
    const k = normalizeAuthKey(key);
    if (k !== registry && k !== full && !full.startsWith(`${k}/`)) continue;
    if (!creds.username && !creds.identityToken) continue;
    if (!best || k.length > best.length) best = { length: k.length, creds };
  }
  return best?.creds;
}

interface DockerAuthConfig {
  username?: unknown;
  password?: unknown;
  auth?: unknown;
  identitytoken?: unknown;
}

function toCredentials(c: DockerAuthConfig): RegistryCredentials {
  const out: RegistryCredentials = {};
  if (typeof c.username === 'string' && c.username) out.username = c.username;
  if (typeof c.password === 'string') out.password = c.password;
  if (typeof c.identitytoken === 'string' && c.identitytoken) out.identityToken = c.identitytoken;
  // Docker clients may send only the combined "auth" (base64 of user:password).
  if (!out.username && typeof c.auth === 'string' && c.auth) {
    const plain = Buffer.from(c.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) {
      out.username = plain.slice(0, colon);
      out.password = plain.slice(colon + 1);
    }
  }
  return out;
}

/**
 * Decodes Docker's X-Registry-Auth (one auth config, or a map registry → config, as podman-remote
 * sends it) or X-Registry-Config (always a map; the key "" is the default). Values are base64url
 * (plain base64 accepted) JSON.
 */
export function parseRegistryAuthHeader(value: string, header: 'X-Registry-Auth' | 'X-Registry-Config' = 'X-Registry-Auth'): RegistryAuth {
  const v = value.trim();
  if (v === '' || v === 'null') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(v, 'base64').toString('utf8'));
  } catch (err) {
    throw new BadRequestError(`failed to parse "${header}" header: ${(err as Error).message}`);
  }
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new BadRequestError(`failed to parse "${header}" header: not a JSON object`);
  const entries = Object.entries(parsed as Record<string, unknown>);
  const isMap = header === 'X-Registry-Config' || entries.every(([, e]) => typeof e === 'object' && e !== null && !Array.isArray(e));
  if (!isMap) return { default: toCredentials(parsed as DockerAuthConfig) };
  const registries: Record<string, RegistryCredentials> = {};
  const auth: RegistryAuth = { registries };
  for (const [key, e] of entries) {
    if (typeof e !== 'object' || e === null) continue;
    if (key === '') auth.default = toCredentials(e as DockerAuthConfig);
    else registries[key] = toCredentials(e as DockerAuthConfig);
  }
  return auth;
}

// ---------------------------------------------------------------------------------------------
// challenges and errors

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses WWW-Authenticate values: `Bearer realm="…",service="…",scope="…"`, `Basic realm="…"`. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    const re = /\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*,?/y;
    let current: Challenge | undefined;
    let m: RegExpExecArray | null;
    re.lastIndex = 0;
    while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
      if (m[0] === '') break;
      const [, token, raw] = m;
      if (raw === undefined) {
        // A bare token starts a new challenge (its scheme).
        current = { scheme: token!.toLowerCase(), params: {} };
        out.push(current);
        // "Bearer realm=…": the scheme is followed by a space, not a comma; the regexp consumed it.
        continue;
      }
      if (!current) continue;
      current.params[token!.toLowerCase()] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    }
  }
  return out;
}

/** Formats a registry's error body the way the distribution client does ("manifest unknown: manifest unknown"). */
function describeErrorBody(status: number, body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }> };
    const errors = Array.isArray(parsed.errors) ? parsed.errors : [];
    const texts = errors.map((e) => {
      const code = typeof e.code === 'string' ? e.code.toLowerCase().replace(/_/g, ' ') : 'unknown';
      const message = typeof e.message === 'string' ? e.message : '';
      return message ? `${code}: ${message}` : code;
    });
    if (texts.length === 1) return texts[0]!;
    if (texts.length > 1) return `errors:\n${texts.join('\n')}\n`;
  } catch {
    // not a distribution error body
  }
  if (status === 401) return 'unauthorized: authentication required';
  let text = body.toString('utf8');
  if (text.length > 50) text = `${text.slice(0, 50)}...`;
  return `StatusCode: ${status}, ${text}`;
}

/** A transport error in Go's url.Error form, with node's wording mapped where Go's is well known. */
function transportError(method: string, url: URL, err: unknown): RegistryError {
  const e = err as NodeJS.ErrnoException & { reason?: string };
  let detail = e.message ?? String(err);
  if (e.code === 'ECONNREFUSED') detail = `dial tcp ${url.host}: connect: connection refused`;
  else if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') detail = `dial tcp: lookup ${url.hostname}: no such host`;
  else if (e.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(detail)) detail = 'http: server gave HTTP response to HTTPS client';
  const verb = method.charAt(0) + method.slice(1).toLowerCase();
  return new RegistryError(`${verb} "${url.href}": ${detail}`);
}

async function readBody(res: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) {
      res.destroy();
      throw new RegistryError(`${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function discard(res: IncomingMessage): void {
  res.resume();
  res.on('error', () => undefined);
}

/** Media type of a manifest whose Content-Type is missing or generic, from its fields. */
export function guessManifestType(bytes: Buffer, contentType: string | undefined): string {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if ((acceptedManifestTypes as readonly string[]).includes(ct)) return ct;
  let doc: { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: { mediaType?: unknown } | null; signatures?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    return ct;
  }
  if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
  if (doc.schemaVersion === 1) return doc.signatures ? 'application/vnd.docker.distribution.manifest.v1+prettyjws' : 'application/vnd.docker.distribution.manifest.v1+json';
  if (Array.isArray(doc.manifests)) return MediaType.ociIndex;
  if (doc.config && typeof doc.config === 'object') {
    return doc.config.mediaType === MediaType.dockerConfig ? MediaType.dockerManifest : MediaType.ociManifest;
  }
  return ct;
}

/** Registries Docker treats as insecure without being told: loopback addresses and localhost. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:\d+$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

// ---------------------------------------------------------------------------------------------
// the client

export interface RegistryClientOptions {
  /** Registry as named in the reference (`docker.io`, `127.0.0.1:5000`). */
  registry: string;
  /** Repository path (`library/busybox`). */
  repository: string;
  /** What the token must allow. */
  actions: ReadonlyArray<'pull' | 'push'>;
  /**
   * true: https with certificate verification only. false: https without verification, then
   * plain http. Undefined: verification, except for loopback registries (Docker's default).
   */
  tlsVerify?: boolean;
  credentials?: RegistryCredentials;
  logger: Logger;
  signal?: AbortSignal;
}

interface SendOptions {
  method: string;
  url: URL;
  headers?: OutgoingHttpHeaders;
  /** A Buffer can be sent again after an authentication retry; a stream cannot. */
  body?: Buffer | Readable;
  /** Send the Authorization header (only ever to the registry's own host). */
  authorize?: boolean;
}

interface CallOptions {
  headers?: OutgoingHttpHeaders;
  body?: Buffer | Readable;
  expect: readonly number[];
  /** Follow 3xx redirects (blob downloads). */
  follow?: boolean;
}

/** Counts bytes flowing through and reports them. */
class ProgressStream extends Transform {
  bytes = 0;
  constructor(private readonly onBytes?: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface UploadSource {
  /** Opens the bytes to send (called once). */
  open: () => Readable;
  /** Known digest and size: the upload is one PUT. Otherwise it is streamed with PATCH and the digest computed. */
  digest?: string;
  size?: number;
}

export class RegistryClient {
  readonly registry: string;
  readonly repository: string;
  /** host[:port] requests go to. */
  private readonly endpoint: string;
  private readonly insecure: boolean;
  private readonly credentials?: RegistryCredentials;
  private readonly logger: Logger;
  private readonly signal?: AbortSignal;
  private readonly scope: string;
  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 8 });
  private readonly httpsAgent: HttpsAgent;
  private scheme: 'https' | 'http' = 'https';
  private challenges: Challenge[] = [];
  private authorization?: string;
  private tokenExpiresAt = Infinity;

  private constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.repository = opts.repository;
    this.endpoint = opts.registry === 'docker.io' ? 'registry-1.docker.io' : opts.registry;
    this.insecure = opts.tlsVerify === false || (opts.tlsVerify === undefined && isLoopbackRegistry(opts.registry));
    this.credentials = opts.credentials;
    this.logger = opts.logger;
    this.signal = opts.signal;
    this.scope = `repository:${opts.repository}:${opts.actions.join(',')}`;
    this.httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: !this.insecure });
  }

  /** Finds the registry's endpoint (https, or http when allowed) and authenticates for the repository. */
  static async connect(opts: RegistryClientOptions): Promise<RegistryClient> {
    const client = new RegistryClient(opts);
    try {
      await client.ping();
      await client.authenticate();
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Releases pooled connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** `registry/repository`, as errors name it. */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  private url(pathOrUrl: string): URL {
    return new URL(pathOrUrl, `${this.scheme}://${this.endpoint}`);
  }

  private send(o: SendOptions): Promise<IncomingMessage> {
    const headers: OutgoingHttpHeaders = { 'User-Agent': 'podserve (containers/image compatible)', ...o.headers };
    if (o.authorize !== false && this.authorization && o.url.host === this.endpoint) headers.Authorization = this.authorization;
    if (Buffer.isBuffer(o.body)) headers['Content-Length'] = String(o.body.length);
    const isHttps = o.url.protocol === 'https:';
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = (isHttps ? httpsRequest : httpRequest)(
        o.url,
        { method: o.method, headers, agent: isHttps ? this.httpsAgent : this.httpAgent, signal: this.signal },
        (res) => {
          res.setTimeout(socketTimeoutMs, () => res.destroy(new Error(`no data from the registry for ${socketTimeoutMs / 1000} s`)));
          resolve(res);
        },
      );
      req.setTimeout(socketTimeoutMs, () => req.destroy(new Error(`no answer from the registry for ${socketTimeoutMs / 1000} s`)));
      req.on('error', (err) => reject(transportError(o.method, o.url, err)));
      if (o.body === undefined) req.end();
      else if (Buffer.isBuffer(o.body)) req.end(o.body);
      else {
        const body = o.body;
        body.on('error', (err) => req.destroy(err));
        // A registry that answers before taking the whole body (a refusal) leaves the source paused: release it.
        req.once('close', () => {
          if (!body.readableEnded) body.destroy();
        });
        body.pipe(req);
      }
    });
  }

  private async ping(): Promise<void> {
    const attempt = async (scheme: 'https' | 'http'): Promise<void> => {
      const url = new URL(`${scheme}://${this.endpoint}/v2/`);
      const res = await this.send({ method: 'GET', url, authorize: false });
      const body = await readBody(res, maxErrorBodyBytes, 'registry ping reply');
      if (res.statusCode !== 200 && res.statusCode !== 401) throw new RegistryError(describeErrorBody(res.statusCode ?? 0, body), res.statusCode);
      this.challenges = parseChallenges(res.headers['www-authenticate']);
      this.scheme = scheme;
    };
    try {
      await attempt('https');
    } catch (err) {
      if (!this.insecure || this.signal?.aborted) throw asRegistryError(err).within(`pinging container registry ${this.endpoint}`);
      this.logger.debug({ registry: this.registry, err: (err as Error).message }, 'https ping failed; trying http');
      try {
        await attempt('http');
      } catch (err2) {
        throw asRegistryError(err2).within(`pinging container registry ${this.endpoint}`);
      }
    }
  }

  /** Sets the Authorization header the registry's challenge asks for (a token for our scope, or Basic). */
  private async authenticate(extraScope?: string): Promise<void> {
    const bearer = this.challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const scopes = [this.scope];
      if (extraScope && extraScope !== this.scope) scopes.push(extraScope);
      this.authorization = `Bearer ${await this.fetchToken(bearer, scopes)}`;
      return;
    }
    const basic = this.challenges.find((c) => c.scheme === 'basic');
    if (basic && this.credentials?.username) {
      this.authorization = `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password ?? ''}`).toString('base64')}`;
    }
  }

  private async fetchToken(challenge: Challenge, scopes: string[]): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError(`registry ${this.registry} sent a bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(`registry ${this.registry} sent an invalid token realm "${realm}"`);
    }
    const service = challenge.params.service;
    const creds = this.credentials;
    let res: IncomingMessage;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'containers/image' });
      if (service) form.set('service', service);
      form.set('scope', scopes.join(' '));
      res = await this.send({
        method: 'POST',
        url,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
        authorize: false,
      });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: OutgoingHttpHeaders = {};
      if (creds?.username) headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
      res = await this.send({ method: 'GET', url, headers, authorize: false });
    }
    const body = await readBody(res, maxErrorBodyBytes, 'token reply');
    if (res.statusCode === 401) {
      throw new RegistryError(`unable to retrieve auth token: invalid username/password: ${describeErrorBody(401, body)}`, 401);
    }
    if (res.statusCode !== 200) throw new RegistryError(`requesting bearer token: ${describeErrorBody(res.statusCode ?? 0, body)}`, res.statusCode);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      throw new RegistryError('requesting bearer token: the reply is not JSON');
    }
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : typeof parsed.access_token === 'string' ? parsed.access_token : '';
    if (!token) throw new RegistryError('requesting bearer token: the reply holds no token');
    const lifetime = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    this.tokenExpiresAt = Date.now() + lifetime * 1000;
    return token;
  }

  /** Renews a bearer token about to expire (before a request whose body cannot be sent twice). */
  private async freshen(): Promise<void> {
    if (this.authorization?.startsWith('Bearer ') && Date.now() > this.tokenExpiresAt - 20_000) await this.authenticate();
  }

  /**
   * One request to the registry with authentication retry (once, for bodies that can be replayed),
   * redirects when asked, and the registry's error turned into a RegistryError.
   */
  private async call(method: string, pathOrUrl: string, o: CallOptions): Promise<IncomingMessage> {
    if (o.body !== undefined && !Buffer.isBuffer(o.body)) await this.freshen();
    let url = this.url(pathOrUrl);
    let retried = false;
    for (let redirects = 0; ; ) {
      const res = await this.send({ method, url, headers: o.headers, body: o.body });
      const status = res.statusCode ?? 0;
      if (status === 401 && !retried && (o.body === undefined || Buffer.isBuffer(o.body)) && url.host === this.endpoint) {
        discard(res);
        retried = true;
        const challenges = parseChallenges(res.headers['www-authenticate']);
        if (challenges.length > 0) this.challenges = challenges;
        const bearer = this.challenges.find((c) => c.scheme === 'bearer');
        await this.authenticate(bearer?.params.scope);
        continue;
      }
      if (o.follow && [301, 302, 303, 307, 308].includes(status) && res.headers.location) {
        discard(res);
        if (++redirects > maxRedirects) throw new RegistryError(`stopped after ${maxRedirects} redirects`);
        url = new URL(res.headers.location, url);
        continue;
      }
      if (!o.expect.includes(status)) {
        const body = await readBody(res, maxErrorBodyBytes, 'error reply').catch(() => Buffer.alloc(0));
        throw new RegistryError(describeErrorBody(status, body), status);
      }
      return res;
    }
  }

  /** Fetches a manifest by tag or digest; a digest reference is verified. */
  async getManifest(tagOrDigest: string): Promise<FetchedManifest> {
    const res = await this.call('GET', `/v2/${this.repository}/manifests/${tagOrDigest}`, {
      headers: { Accept: acceptedManifestTypes.join(', ') },
      expect: [200],
    });
    const bytes = await readBody(res, maxManifestBytes, `manifest ${tagOrDigest}`);
    const digest = sha256Digest(bytes);
    if (tagOrDigest.includes(':') && tagOrDigest !== digest) {
      throw new RegistryError(`manifest digest ${digest} does not match the requested ${tagOrDigest}`);
    }
    return { bytes, mediaType: guessManifestType(bytes, res.headers['content-type']), digest };
  }

  /** Starts downloading a blob; the caller reads (and verifies) the stream. */
  async getBlob(digest: string): Promise<{ stream: IncomingMessage; size?: number }> {
    const res = await this.call('GET', `/v2/${this.repository}/blobs/${digest}`, { expect: [200], follow: true });
    const length = Number(res.headers['content-length']);
    return { stream: res, size: Number.isFinite(length) && res.headers['content-length'] !== undefined ? length : undefined };
  }

  /** A small blob (a config) read whole, size-limited and verified. */
  async getBlobBytes(digest: string, limit = maxManifestBytes * 8): Promise<Buffer> {
    const { stream } = await this.getBlob(digest);
    const bytes = await readBody(stream, limit, `blob ${digest}`);
    const actual = sha256Digest(bytes);
    if (actual !== digest) throw new RegistryError(`Digest did not match, expected ${digest}, got ${actual}`);
    return bytes;
  }

  /** Size of the blob if the repository has it. */
  async blobExists(digest: string): Promise<number | undefined> {
    const res = await this.call('HEAD', `/v2/${this.repository}/blobs/${digest}`, { expect: [200, 404], follow: true });
    discard(res);
    if (res.statusCode === 404) return undefined;
    const length = Number(res.headers['content-length']);
    return Number.isFinite(length) ? length : 0;
  }

  /**
   * Uploads a blob: POST for an upload session, then either one PUT with the whole body (digest and
   * size known) or a streamed PATCH followed by a PUT naming the digest computed on the way.
   */
  async uploadBlob(source: UploadSource, onBytes?: (bytes: number) => void): Promise<{ digest: string; size: number }> {
    const start = await this.call('POST', `/v2/${this.repository}/blobs/uploads/`, { expect: [202], headers: { 'Content-Length': '0' } });
    discard(start);
    let location = this.uploadLocation(start);
    const progress = new ProgressStream(onBytes);
    const input = source.open();
    input.on('error', (err) => progress.destroy(err));
    const body = input.pipe(progress);

    if (source.digest !== undefined && source.size !== undefined) {
      const url = this.url(location);
      url.searchParams.append('digest', source.digest);
      const res = await this.call('PUT', url.href, {
        body,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(source.size) },
        expect: [201],
      });
      discard(res);
      if (progress.bytes !== source.size) throw new RegistryError(`uploaded ${progress.bytes} bytes, expected ${source.size}`);
      this.checkDigestHeader(res, source.digest);
      return { digest: source.digest, size: source.size };
    }

    const counter = new Sha256Counter();
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, cb): void {
        counter.update(chunk);
        cb(null, chunk);
      },
    });
    body.on('error', (err) => hashing.destroy(err));
    const patched = await this.call('PATCH', location, {
      body: body.pipe(hashing),
      headers: { 'Content-Type': 'application/octet-stream' },
      expect: [202],
    });
    discard(patched);
    location = this.uploadLocation(patched);
    const digest = counter.digest();
    const url = this.url(location);
    url.searchParams.append('digest', digest);
    const res = await this.call('PUT', url.href, { body: Buffer.alloc(0), expect: [201] });
    discard(res);
    this.checkDigestHeader(res, digest);
    return { digest, size: counter.bytes };
  }

  private uploadLocation(res: IncomingMessage): string {
    const location = res.headers.location;
    if (!location) throw new RegistryError('the registry did not say where to upload (no Location header)');
    return new URL(location, this.url('/')).href;
  }

  private checkDigestHeader(res: IncomingMessage, expected: string): void {
    const got = res.headers['docker-content-digest'];
    if (typeof got === 'string' && got && got !== expected) {
      throw new RegistryError(`the registry stored digest ${got}, expected ${expected}`);
    }
  }

  /** Stores a manifest under a tag or digest; returns its digest. */
  async putManifest(tagOrDigest: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.call('PUT', `/v2/${this.repository}/manifests/${tagOrDigest}`, {
      body: bytes,
      headers: { 'Content-Type': mediaType },
      expect: [200, 201, 202],
    });
    discard(res);
    const digest = sha256Digest(bytes);
    this.checkDigestHeader(res, digest);
    return digest;
  }

  /** Every tag of the repository (following pagination links). */
  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${this.repository}/tags/list`;
    for (let pages = 0; next && pages < 1000; pages++) {
      const res = await this.call('GET', next, { expect: [200] });
      const body = await readBody(res, maxManifestBytes, 'tag list');
      let parsed: { tags?: unknown };
      try {
        parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
      } catch {
        throw new RegistryError('the tag list is not JSON');
      }
      if (Array.isArray(parsed.tags)) for (const t of parsed.tags) if (typeof t === 'string') tags.push(t);
      const link = res.headers.link;
      const m = typeof link === 'string' ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
      next = m ? m[1] : undefined;
    }
    return tags;
  }
}

function asRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  return new RegistryError(err instanceof Error ? err.message : String(err));
}

/** Wraps any error of a registry operation in a RegistryError with `context` in front. */
export function registryError(context: string, err: unknown): RegistryError {
  return asRegistryError(err).within(context);
}
