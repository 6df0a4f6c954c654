/**
 * Data shapes of the image store: the OCI / Docker JSON documents it reads and writes, and the
 * records it keeps on disk. Field names of the JSON documents follow the specifications exactly
 * (they are hashed, so nothing here may be renamed).
 */

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Annotation holding an image's name in an OCI index (`org.opencontainers.image.ref.name`). */
export const AnnotationRefName = 'org.opencontainers.image.ref.name';
/** containerd / buildkit put the full name here (Podman reads it first). */
export const AnnotationContainerdName = 'io.containerd.image.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface OciManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface OciIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** One item of a docker-archive's manifest.json. */
export interface DockerArchiveItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  Parent?: string;
  LayerSources?: Record<string, Descriptor>;
}

/** The container configuration inside an image config (OCI ImageConfig plus Docker's extras). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>> | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
  [extra: string]: unknown;
}

export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An image configuration blob (OCI `application/vnd.oci.image.config.v1+json` or Docker's v1 image JSON). */
export interface ImageConfigFile {
  created?: string;
  author?: string;
  architecture?: string;
  variant?: string;
  os?: string;
  config?: ContainerConfig;
  rootfs: { type: string; diff_ids: string[] };
  history?: HistoryEntry[];
  /** Docker-only fields. */
  comment?: string;
  docker_version?: string;
  container?: string;
  container_config?: ContainerConfig;
  [extra: string]: unknown;
}

/** Where and how a layer's original blob is kept, so `save` can write it back. */
export interface LayerBlob {
  /** Digest of the blob as received (compressed or not). */
  digest: string;
  size: number;
  compression: 'gzip' | 'none';
}

/** One unpacked layer, stored once per diff ID and shared by every image that lists it. */
export interface LayerRecord {
  /** `sha256:<hex>` digest of the uncompressed layer tar. */
  diffId: string;
  /** Size in bytes of the uncompressed layer tar. */
  size: number;
  blob: LayerBlob;
}

/** What the store remembers about one image (persisted in images.json). */
export interface ImageRecord {
  /** Hex digest of the config blob, without `sha256:`. */
  id: string;
  /** Fully qualified, tagged names (`localhost/busybox:latest`). Unique across the store. */
  names: string[];
  /** Every name the image ever had, most recent first. */
  namesHistory: string[];
  /** Digest of the first manifest the image was stored with (Podman keeps reporting that one). */
  digest: string;
  /** Every manifest digest this image was stored under. */
  digests: string[];
  /** Size of each of those manifests. */
  manifestSizes: Record<string, number>;
  /** The manifest stored last ("current"): its digest, type, size and annotations (OCI only). */
  manifestDigest: string;
  manifestType: string;
  manifestSize: number;
  annotations: Record<string, string>;
  /** Creation time, as written in the config (RFC 3339); else the time it entered the store. */
  created: string;
  configSize: number;
  config: ImageConfigFile;
  /** Diff IDs, bottom layer first (same order as config.rootfs.diff_ids). */
  layers: string[];
  /** When the record was first written (RFC 3339). */
  storedAt: string;
}

export type ArchiveFormat = 'docker-archive' | 'oci-archive';
