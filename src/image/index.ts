/** Public surface of the image store. */
export { ImageStore } from './store.js';
export type {
  ImageStoreOptions,
  LoadResult,
  ImportOptions,
  InUseCheck,
  RemoveOptions,
  RemoveReport,
  PruneOptions,
  PruneReportEntry,
  ListOptions,
  StoreInfo,
  StagedImage,
  IncomingLayer,
  TransferSource,
} from './store.js';
export {
  toLibpodImageData,
  toDockerImageInspect,
  toLibpodListEntry,
  toDockerListEntry,
  toHistoryResponse,
  repoTags,
  repoDigests,
  type ImageDetails,
  type ImageHistoryItem,
} from './inspect.js';
export { normalizeName, parseNormalizedNamed, parseReference, formatReference, ReferenceError } from './reference.js';
export { applyChanges, parseSignal } from './changes.js';
export type { ImageRecord, LayerRecord, ArchiveFormat, ImageConfigFile, ContainerConfig } from './types.js';
export { pullImage, type PullOptions, type PulledImage, type TransferEvent } from './pull.js';
export { pushImage, type PushOptions, type PushResult } from './push.js';
export { RegistryClient, RegistryError, parseRegistryAuthHeader, credentialsFor, type RegistryAuth, type RegistryCredentials } from './registry.js';
