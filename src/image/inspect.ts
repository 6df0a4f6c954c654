/**
 * Shapes image records into the JSON bodies of the API: Podman's ImageData (libpod inspect),
 * Docker's ImageInspect (compat inspect), the ImageSummary of GET /images/json (both trees) and
 * the history entries. Pure functions: everything they need is in an ImageDetails.
 */
import { MediaType, type ContainerConfig, type HistoryEntry, type ImageRecord } from './types.js';
import { parseNormalizedNamed, parseReference, repositoryName } from './reference.js';

/** A record plus the facts that depend on the rest of the store. */
export interface ImageDetails {
  record: ImageRecord;
  /** Bytes as Podman counts them: uncompressed layers plus stored metadata. */
  size: number;
  /** ID of the parent image ("" when none). */
  parentId: string;
  /** No names and no children. */
  dangling: boolean;
  /** Containers using the image (0 unless the caller knows better). */
  containers: number;
  /** Unpacked layer directories, top layer first. */
  layerDirs: string[];
}

export interface GraphDriverData {
  Name: 'overlay';
  Data: Record<string, string>;
}

/** Names that carry a tag, as stored (`localhost/busybox:latest`). */
export function repoTags(record: ImageRecord): string[] {
  return record.names.filter((n) => {
    try {
      return parseReference(n).tag !== undefined;
    } catch {
      return false;
    }
  });
}

/** `<repository>@<digest>` for every name and every manifest digest, sorted. */
export function repoDigests(record: ImageRecord): string[] {
  const out = new Set<string>();
  for (const name of record.names) {
    let repo: string;
    try {
      repo = repositoryName(parseNormalizedNamed(name));
    } catch {
      continue;
    }
    for (const d of [...record.digests, record.digest]) if (d) out.add(`${repo}@${d}`);
  }
  return [...out].sort();
}

export function graphDriver(layerDirs: readonly string[]): GraphDriverData {
  const data: Record<string, string> = {};
  if (layerDirs.length > 1) data.LowerDir = layerDirs.slice(1).join(':');
  if (layerDirs.length > 0) {
    data.UpperDir = layerDirs[0]!;
    // Podman reports the work directory next to the top layer's diff; it only exists per container here.
    data.WorkDir = layerDirs[0]!.replace(/\/diff$/, '/work');
  }
  return { Name: 'overlay', Data: data };
}

/** The OCI ImageConfig subset (Podman's `Config` in ImageData), without empty fields. */
export function ociImageConfig(config: ContainerConfig | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!config) return out;
  const nonEmpty = (v: unknown): boolean =>
    v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);
  for (const key of ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal'] as const) {
    if (nonEmpty(config[key])) out[key] = config[key];
  }
  if (config.ArgsEscaped === true) out.ArgsEscaped = true;
  return out;
}

/** History entries in Go's field order, empty fields omitted. */
export function normalizedHistory(history: readonly HistoryEntry[] | undefined): HistoryEntry[] | null {
  if (!history) return null;
  return history.map((h) => {
    const e: HistoryEntry = {};
    if (h.created) e.created = h.created;
    if (h.created_by) e.created_by = h.created_by;
    if (h.author) e.author = h.author;
    if (h.comment) e.comment = h.comment;
    if (h.empty_layer) e.empty_layer = true;
    return e;
  });
}

function isOciManifest(record: ImageRecord): boolean {
  return record.manifestType === MediaType.ociManifest;
}

export function imageComment(record: ImageRecord): string {
  if (isOciManifest(record)) return record.config.history?.[0]?.comment ?? '';
  return typeof record.config.comment === 'string' ? record.config.comment : '';
}

export function imageLabels(record: ImageRecord): Record<string, string> | null {
  const labels = record.config.config?.Labels;
  return labels && Object.keys(labels).length > 0 ? labels : null;
}

/** Seconds since the epoch of an RFC 3339 time (0 when unparseable). */
export function unixSeconds(rfc3339: string | undefined): number {
  const ms = rfc3339 ? Date.parse(rfc3339) : Number.NaN;
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
}

/** Podman's ImageData (GET /libpod/images/{name}/json). */
export function toLibpodImageData(d: ImageDetails): Record<string, unknown> {
  const { record } = d;
  const config = record.config;
  const data: Record<string, unknown> = {
    Id: record.id,
    Digest: record.digest,
    RepoTags: repoTags(record),
    RepoDigests: repoDigests(record),
    Parent: d.parentId,
    Comment: imageComment(record),
    Created: config.created ?? null,
    Config: ociImageConfig(config.config),
    Version: config.docker_version ?? '',
    Author: config.author ?? '',
    Architecture: config.architecture ?? '',
    Os: config.os ?? '',
    Size: d.size,
    VirtualSize: d.size,
    GraphDriver: graphDriver(d.layerDirs),
    RootFS: { Type: config.rootfs.type, Layers: [...config.rootfs.diff_ids] },
    Labels: imageLabels(record),
    Annotations: isOciManifest(record) ? { ...record.annotations } : {},
    ManifestType: record.manifestType,
    User: config.config?.User ?? '',
    History: normalizedHistory(config.history),
    NamesHistory: [...record.namesHistory],
  };
  if (!isOciManifest(record)) {
    const health = config.container_config?.Healthcheck ?? config.config?.Healthcheck;
    if (health) data.Healthcheck = health;
  }
  return data;
}

/** Docker's port set: "80" and "80/tcp" → "80/tcp"; "53/udp" stays. */
function portSet(ports: ContainerConfig['ExposedPorts']): Record<string, Record<string, never>> {
  const out: Record<string, Record<string, never>> = {};
  for (const key of Object.keys(ports ?? {})) {
    const [port, proto] = key.split('/');
    out[`${port}/${(proto || 'tcp').toLowerCase()}`] = {};
  }
  return out;
}

function dockerContainerConfig(fields: Partial<Record<string, unknown>>): Record<string, unknown> {
  const c: Record<string, unknown> = {
    Hostname: fields.Hostname ?? '',
    Domainname: '',
    User: fields.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
  };
  if (fields.ExposedPorts && Object.keys(fields.ExposedPorts).length > 0) c.ExposedPorts = fields.ExposedPorts;
  Object.assign(c, {
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: fields.Env ?? null,
    Cmd: fields.Cmd ?? null,
    Image: '',
    Volumes: fields.Volumes ?? null,
    WorkingDir: fields.WorkingDir ?? '',
    Entrypoint: fields.Entrypoint ?? null,
    OnBuild: null,
    Labels: fields.Labels ?? null,
  });
  if (fields.StopSignal) c.StopSignal = fields.StopSignal;
  return c;
}

/** Docker's ImageInspect as Podman's compat API fills it (GET /images/{name}/json). */
export function toDockerImageInspect(d: ImageDetails): Record<string, unknown> {
  const { record } = d;
  const cfg = record.config.config ?? {};
  const volumes = cfg.Volumes && Object.keys(cfg.Volumes).length > 0 ? cfg.Volumes : null;
  const gd = graphDriver(d.layerDirs);
  return {
    Id: `sha256:${record.id}`,
    RepoTags: repoTags(record),
    RepoDigests: repoDigests(record),
    Parent: d.parentId,
    Comment: imageComment(record),
    Created: record.created,
    Container: '',
    ContainerConfig: dockerContainerConfig({ Hostname: record.id.slice(0, 11), Volumes: volumes }),
    DockerVersion: record.config.docker_version ?? '',
    Author: record.config.author ?? '',
    Config: dockerContainerConfig({
      User: cfg.User,
      ExposedPorts: portSet(cfg.ExposedPorts),
      Env: cfg.Env?.length ? cfg.Env : null,
      Cmd: cfg.Cmd?.length ? cfg.Cmd : null,
      Volumes: volumes,
      WorkingDir: cfg.WorkingDir,
      Entrypoint: cfg.Entrypoint?.length ? cfg.Entrypoint : null,
      Labels: imageLabels(record),
      StopSignal: cfg.StopSignal,
    }),
    Architecture: record.config.architecture ?? '',
    Os: record.config.os ?? '',
    Size: d.size,
    VirtualSize: d.size,
    GraphDriver: { Data: gd.Data, Name: gd.Name },
    RootFS: { Type: record.config.rootfs.type, Layers: [...record.config.rootfs.diff_ids] },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}

/** Podman's ImageSummary (GET /libpod/images/json). */
export function toLibpodListEntry(d: ImageDetails): Record<string, unknown> {
  const { record } = d;
  const entry: Record<string, unknown> = {
    Id: record.id,
    ParentId: d.parentId,
    RepoTags: record.names.length > 0 ? [...record.names] : null,
    RepoDigests: repoDigests(record),
    Created: unixSeconds(record.created),
    Size: d.size,
    SharedSize: 0,
    VirtualSize: d.size,
    Labels: imageLabels(record),
    Containers: d.containers,
  };
  if (d.dangling) entry.Dangling = true;
  if (record.names.length > 0) entry.Names = [...record.names];
  if (record.digest) entry.Digest = record.digest;
  if (record.namesHistory.length > 0) entry.History = [...record.namesHistory];
  return entry;
}

/** The compat list entry: the same summary with a `sha256:`-prefixed Id (as Podman 4.3 sends it). */
export function toDockerListEntry(d: ImageDetails): Record<string, unknown> {
  return { ...toLibpodListEntry(d), Id: `sha256:${d.record.id}` };
}

export interface ImageHistoryItem {
  id: string;
  created: string | undefined;
  createdBy: string;
  size: number;
  comment: string;
  tags: string[] | null;
}

/** GET /images/{name}/history entries (both trees). */
export function toHistoryResponse(items: readonly ImageHistoryItem[]): Array<Record<string, unknown>> {
  return items.map((h) => ({
    Id: h.id,
    Created: unixSeconds(h.created),
    CreatedBy: h.createdBy,
    Tags: h.tags,
    Size: h.size,
    Comment: h.comment,
  }));
}
