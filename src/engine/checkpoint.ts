/**
 * Checkpoint and restore of containers with CRIU (Podman 4.3.1's libpod/container_internal_common.go
 * checkpoint/restore/exportCheckpoint and pkg/checkpoint): in place, and through archives in Podman's layout
 * (checkpoint/, config.dump, spec.dump, network.status, stats-dump, ctr.log, rootfs-diff.tar, deleted.files).
 *
 * Both run under the container's lock, so exit handling waits: when CRIU kills the dumped processes, conmon's
 * exit file is consumed here (the container becomes exited + checkpointed, no 'died'). Failures leave the
 * container as it was and remove what the attempt wrote; CRIU's own error (from its log) is in the message.
 * Archives stream both ways: an export is assembled from hard links in a private directory after the lock is
 * released (so a restore meanwhile cannot pull files from under the reader), an import is unpacked from the
 * request body as it arrives. Both directories are removed on every path.
 */
import { copyFile, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { DaemonConfig } from '../config.js';
import { BadRequestError, ConflictError, InternalError, PodserveError, RuntimeError, Sentinel, stateImproper } from '../errors.js';
import type { ImageStore } from '../image/store.js';
import { readCriuStatistics, type CriuInfo, type CriuStatistics } from '../oci/checkpoint.js';
import type { OCIRuntime } from '../oci/types.js';
import { applyRootfsDiff, createRootfsDiff, decompressed, DELETED_FILES, extractTar, packArchive, ROOTFS_DIFF_TAR, type PackItem } from './checkpoint-archive.js';
import { freshState } from './containers.js';
import { NAME_PATTERN, newId } from './names.js';
import { nowRFC3339Nano } from './time.js';
import { ZERO_TIME, type Container, type ContainerConfig, type ContainerState } from './types.js';

// Podman's names for the files of a checkpoint (checkpointctl's metadata package).
export const CHECKPOINT_DIR = 'checkpoint';
export const PRE_CHECKPOINT_DIR = 'pre-checkpoint';
export const CONFIG_DUMP = 'config.dump';
export const SPEC_DUMP = 'spec.dump';
export const NETWORK_STATUS = 'network.status';
export const STATS_DUMP = 'stats-dump';
export const STATS_RESTORE = 'stats-restore';
export const DUMP_LOG = 'dump.log';
export const RESTORE_LOG = 'restore.log';
const DEVSHM_TAR = 'devshm-checkpoint.tar';
const ARTIFACTS = 'artifacts';
const CTR_LOG = 'ctr.log';

/** What src/engine/containers.ts lends checkpoint/restore: its lock and the internals a start or an exit uses. */
export interface CheckpointAccess {
  readonly exitDir: string;
  /** Runs `work` under the container's lock (start, stop, exit handling wait meanwhile). */
  locked<T>(id: string, work: () => Promise<T>): Promise<T>;
  /** Stores a state and tells waiters. */
  save(c: Container, state: ContainerState): Container;
  emit(c: Container, status: string, extra?: Record<string, string>): void;
  /** The container's processes are gone: record its exec sessions as ended. */
  execsExited(c: Container): Promise<void>;
  /** /etc/hosts, /etc/hostname, /etc/resolv.conf in the run dir; returns destination → source. */
  writeEtcFiles(c: Container): Promise<Record<string, string>>;
  exitCommand(id: string): string[];
  /** Adds a container record (409 when its id or name is taken). */
  add(c: Container): void;
  /** Forgets a container record (a failed import), without an event. */
  forget(id: string): void;
}

export interface CheckpointDeps {
  config: DaemonConfig;
  logger: Logger;
  oci: OCIRuntime;
  images: ImageStore;
  access: CheckpointAccess;
  lookup(nameOrId: string): Container;
  tryLookup(nameOrId: string): Container | undefined;
  /** Force-removes a container (an exported `--rm` container once its archive was read). */
  remove(id: string): Promise<unknown>;
}

/** Query of POST /libpod/containers/{name}/checkpoint. */
export interface CheckpointOptions {
  keep?: boolean;
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  /** Stream the checkpoint as an archive (CheckpointResult.archive). */
  export?: boolean;
  ignoreRootFS?: boolean;
  ignoreVolumes?: boolean;
  preCheckpoint?: boolean;
  withPrevious?: boolean;
  fileLocks?: boolean;
  printStats?: boolean;
}

/** Query of POST /libpod/containers/{name}/restore. */
export interface RestoreOptions {
  keep?: boolean;
  tcpEstablished?: boolean;
  ignoreRootFS?: boolean;
  ignoreVolumes?: boolean;
  ignoreStaticIP?: boolean;
  ignoreStaticMAC?: boolean;
  printStats?: boolean;
  fileLocks?: boolean;
  /** Import only: the restored container's name (a new ID too). */
  name?: string;
}

/** Podman's entities.CheckpointReport as JSON. */
export interface CheckpointReport {
  Id: string;
  RawInput: string;
  runtime_checkpoint_duration: number;
  criu_statistics: CriuStatistics | null;
}

/** Podman's entities.RestoreReport as JSON. */
export interface RestoreReport {
  Id: string;
  RawInput: string;
  runtime_restore_duration: number;
  criu_statistics: CriuStatistics | null;
}

export interface CheckpointResult {
  report: CheckpointReport;
  /** With `export`: the archive, streamed (its staging directory goes away when it ends or is destroyed). */
  archive?: Readable;
}

/** What podserve keeps in config.dump besides Podman's key fields: its own container config. */
interface ConfigDump {
  id?: string;
  name?: string;
  rootfsImageID?: string;
  rootfsImageName?: string;
  podserve?: { version: number; config: ContainerConfig };
}

type OciSpec = Record<string, unknown> & {
  root?: { path?: string; readonly?: boolean };
  mounts?: { destination?: string; source?: string; type?: string; options?: string[] }[];
  linux?: Record<string, unknown> & { cgroupsPath?: string };
};

export class CheckpointService {
  constructor(private readonly deps: CheckpointDeps) {}

  private get log(): Logger {
    return this.deps.logger;
  }

  /** /info's host.criu: the CRIU runc is given, its version and whether it works here. */
  criuInfo(): Promise<CriuInfo> {
    return this.deps.oci.criuInfo();
  }

  /** 500 with CRIU's own words when it is missing, too old or unusable on this kernel. */
  private async requireCriu(): Promise<void> {
    const info = await this.deps.oci.criuInfo();
    if (!info.available) {
      const message = info.error ?? `CRIU (${info.path}) is not available`;
      throw new RuntimeError(message, message);
    }
  }

  // ------------------------------------------------------------------------------------------ checkpoint

  async checkpoint(nameOrId: string, opts: CheckpointOptions): Promise<CheckpointResult> {
    if (opts.withPrevious && opts.preCheckpoint) throw new BadRequestError('--with-previous can not be used with --pre-checkpoint');
    const target = this.deps.lookup(nameOrId);
    let exportDir: string | undefined;
    let autoRemove = false;
    const report = await this.deps.access.locked(target.id, async () => {
      const c = this.deps.lookup(target.id);
      await this.requireCriu();
      if (c.state.status !== 'running') throw stateImproper(`"${c.state.status}" is not running, cannot checkpoint`);
      if (c.config.autoRemove && !opts.export) {
        throw new InternalError("cannot checkpoint containers that have been started with '--rm' unless '--export' is used");
      }
      const result = await this.checkpointLocked(c, opts);
      exportDir = result.exportDir;
      autoRemove = c.config.autoRemove && !opts.leaveRunning && !opts.preCheckpoint;
      return { ...result.report, RawInput: nameOrId };
    });
    if (!exportDir) return { report };
    const dir = exportDir;
    const archive = packArchive(await this.exportItems(dir, opts), this.log, async () => {
      await rm(dir, { recursive: true, force: true });
      if (autoRemove) await this.deps.remove(target.id).catch((err: unknown) => this.log.warn({ err, id: target.id }, 'removing an exported --rm container failed'));
    });
    return { report, archive };
  }

  private async checkpointLocked(c: Container, opts: CheckpointOptions): Promise<{ report: CheckpointReport; exportDir?: string }> {
    const { bundleDir } = c.config;
    const finalImages = join(bundleDir, opts.preCheckpoint ? PRE_CHECKPOINT_DIR : CHECKPOINT_DIR);
    if (opts.withPrevious) {
      const pre = join(bundleDir, PRE_CHECKPOINT_DIR);
      if (!(await exists(pre))) throw new InternalError(`stat ${pre}: no such file or directory`);
    }
    // CRIU writes into a fresh directory; a previous checkpoint stays intact until this one succeeded.
    const staging = join(bundleDir, `${basename(finalImages)}.new`);
    const dumpFiles = [DUMP_LOG, STATS_DUMP, CONFIG_DUMP, SPEC_DUMP].map((f) => join(bundleDir, f));
    await Promise.all([staging, ...dumpFiles].map((p) => rm(p, { recursive: true, force: true })));
    if (opts.export) await this.writeDumps(c);

    let durationUs: number;
    try {
      ({ durationUs } = await this.deps.oci.checkpointContainer(c.id, {
        bundleDir,
        imagePath: staging,
        leaveRunning: opts.leaveRunning,
        tcpEstablished: opts.tcpEstablished,
        fileLocks: opts.fileLocks,
        preDump: opts.preCheckpoint,
        parentPath: opts.withPrevious ? `../${PRE_CHECKPOINT_DIR}` : undefined,
      }));
    } catch (err) {
      // CRIU resumed the processes; remove every trace of the attempt (its error is in the message).
      await Promise.all([staging, ...dumpFiles].map((p) => rm(p, { recursive: true, force: true })));
      throw err;
    }
    await rm(finalImages, { recursive: true, force: true });
    await rename(staging, finalImages);
    if (opts.withPrevious) {
      // CRIU may record the parent as an absolute path (criu#116); the bundle must stay relocatable.
      await rm(join(finalImages, 'parent'), { force: true });
      await symlink(`../${PRE_CHECKPOINT_DIR}`, join(finalImages, 'parent'));
    }
    await writeFile(join(bundleDir, NETWORK_STATUS), '{}', { mode: 0o600 });
    const stats = opts.printStats ? await readCriuStatistics(join(bundleDir, STATS_DUMP)) : null;
    const stopped = !opts.leaveRunning && !opts.preCheckpoint;

    let state: ContainerState = {
      ...c.state,
      checkpointPath: finalImages,
      checkpointLog: opts.keep || opts.preCheckpoint ? join(bundleDir, DUMP_LOG) : '',
    };
    if (stopped) {
      state = await this.releaseDumped(c, state);
    }
    let exportDir: string | undefined;
    try {
      if (opts.export) exportDir = await this.stageExport(c, finalImages, opts);
    } finally {
      if (!opts.keep && !opts.preCheckpoint) {
        await Promise.all(dumpFiles.map((p) => rm(p, { force: true })));
      }
      const saved = this.deps.access.save(c, state);
      this.deps.access.emit(saved, 'checkpoint');
    }
    return {
      report: {
        Id: c.id,
        RawInput: '',
        runtime_checkpoint_duration: opts.printStats ? durationUs : 0,
        criu_statistics: opts.printStats ? (stats ?? {}) : null,
      },
      exportDir,
    };
  }

  /**
   * CRIU killed the dumped processes: let conmon record the end, then release what the run held (runc's state,
   * the exit file, the rootfs mount) as an exit would, without a 'died' event or restart policy.
   */
  private async releaseDumped(c: Container, state: ContainerState): Promise<ContainerState> {
    const { oci } = this.deps;
    const { exitDir } = this.deps.access;
    await oci.waitExitFile(exitDir, c.id, 5000).catch(() => null);
    await this.deps.access.execsExited(c).catch((err: unknown) => this.log.warn({ err, id: c.id }, 'recording exec session exits failed'));
    await oci.deleteContainer(c.id).catch((err: unknown) => this.log.warn({ err, id: c.id }, 'runc delete after checkpoint failed'));
    await unlink(oci.exitFilePath(exitDir, c.id)).catch(() => undefined);
    await this.deps.images.unmountRootfs(c.config.containerDir).catch((err: unknown) => this.log.warn({ err, id: c.id }, 'unmount after checkpoint failed'));
    const now = nowRFC3339Nano();
    return {
      ...state,
      status: 'exited',
      pid: 0,
      conmonPid: 0,
      exitCode: 0,
      finishedAt: now,
      error: '',
      mountPoint: '',
      stoppedByUser: true,
      checkpointed: true,
      checkpointedAt: now,
      restored: false,
      restoredAt: undefined,
    };
  }

  /** config.dump (Podman's key fields + podserve's config) and spec.dump (the OCI config the container ran with). */
  private async writeDumps(c: Container): Promise<void> {
    const dump: ConfigDump & Record<string, unknown> = {
      id: c.id,
      name: c.name,
      rootfsImageID: c.config.imageId,
      rootfsImageName: c.config.imageName,
      RawImageName: c.config.rawImageName,
      command: [c.config.path, ...c.config.args],
      createdTime: c.config.created,
      stopSignal: c.config.stopSignal,
      stopTimeout: c.config.stopTimeout,
      logDriver: c.config.logDriver,
      runtime: basename(this.deps.config.runtimePath),
      podserve: { version: 1, config: c.config },
    };
    const spec = await readFile(join(c.config.bundleDir, 'config.json'));
    await Promise.all([
      writeFile(join(c.config.bundleDir, CONFIG_DUMP), JSON.stringify(dump), { mode: 0o600 }),
      writeFile(join(c.config.bundleDir, SPEC_DUMP), spec, { mode: 0o600 }),
    ]);
  }

  /**
   * The archive's content, in a private directory of hard links (images, log, stats) and moved files (dumps),
   * plus the rootfs diff. Nothing in it changes when the container is restored or checkpointed again meanwhile.
   */
  private async stageExport(c: Container, images: string, opts: CheckpointOptions): Promise<string> {
    const { bundleDir } = c.config;
    const dir = await mkdtemp(join(await this.tmpDir(), 'cp-export-'));
    try {
      await mkdir(join(dir, ARTIFACTS));
      await linkTree(images, join(dir, basename(images)));
      for (const f of [CONFIG_DUMP, SPEC_DUMP]) await rename(join(bundleDir, f), join(dir, f));
      await writeFile(join(dir, NETWORK_STATUS), '{}', { mode: 0o600 });
      await link(join(bundleDir, STATS_DUMP), join(dir, STATS_DUMP)).catch(() => undefined);
      if (c.config.logDriver === 'k8s-file') {
        // A custom log path may be on another file system: copy what a link cannot share.
        await link(c.config.logPath, join(dir, CTR_LOG)).catch(() => copyFile(c.config.logPath, join(dir, CTR_LOG)).catch(() => undefined));
      }
      if (!opts.ignoreRootFS) await createRootfsDiff(join(c.config.containerDir, 'upper'), dir, this.log);
      return dir;
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Members in Podman's order (exportCheckpoint's includeFiles). */
  private async exportItems(dir: string, opts: CheckpointOptions): Promise<PackItem[]> {
    const names = [ARTIFACTS, CONFIG_DUMP, SPEC_DUMP, NETWORK_STATUS, STATS_DUMP, CTR_LOG, opts.preCheckpoint ? PRE_CHECKPOINT_DIR : CHECKPOINT_DIR, ROOTFS_DIFF_TAR, DELETED_FILES];
    return names.map((name) => ({ name, path: join(dir, name) }));
  }

  private async tmpDir(): Promise<string> {
    const dir = join(this.deps.config.root, 'tmp');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  // ------------------------------------------------------------------------------------------ restore

  /** Restore in place from the container's own checkpoint. */
  async restore(nameOrId: string, opts: RestoreOptions): Promise<RestoreReport> {
    const target = this.deps.lookup(nameOrId);
    return this.deps.access.locked(target.id, async () => {
      const c = this.deps.lookup(target.id);
      await this.requireCriu();
      if (!['configured', 'exited', 'stopped'].includes(c.state.status)) {
        throw stateImproper(`container ${c.id} is running or paused, cannot restore`);
      }
      const report = await this.restoreLocked(c, opts);
      return { ...report, RawInput: nameOrId };
    });
  }

  /**
   * Restore from an archive (the request body): a new container is made from its config.dump/spec.dump, with
   * the old ID and name, or a new ID under `opts.name`, and restored. On failure nothing of it remains.
   */
  async restoreFromArchive(body: Readable, opts: RestoreOptions): Promise<RestoreReport> {
    if (opts.name !== undefined && opts.name !== '' && !NAME_PATTERN.test(opts.name)) {
      body.resume();
      throw new BadRequestError(`container name "${opts.name}" must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument`);
    }
    const staging = await mkdtemp(join(await this.tmpDir(), 'cp-import-'));
    let created: Container | undefined;
    try {
      const members = await extractTar(await decompressed(body, this.log), staging, { owners: false, logger: this.log, what: 'checkpoint archive' });
      if (members === 0) throw new BadRequestError('the checkpoint archive is empty or not a tar archive');
      const { config: old, spec } = await readDumps(staging);
      await this.requireCriu();
      if (!(await exists(join(staging, CHECKPOINT_DIR, 'inventory.img')))) {
        throw new InternalError(`a complete checkpoint for this container cannot be found, cannot restore: ${CHECKPOINT_DIR}/inventory.img is missing from the archive`);
      }
      const image = this.deps.images.lookup(old.imageId) ?? this.deps.images.lookup(old.imageName) ?? this.deps.images.lookup(old.rawImageName);
      if (!image) {
        throw new PodserveError(500, Sentinel.noSuchImage, `the checkpoint needs image ${old.imageName} (${old.imageId.slice(0, 12)}), which is not here: load it first: ${Sentinel.noSuchImage}`);
      }
      const newName = opts.name ? opts.name : undefined;
      const id = newName ? newId() : old.id;
      const name = newName ?? old.name;
      for (const taken of [id, name]) {
        if (this.deps.tryLookup(taken)) {
          throw new ConflictError(
            Sentinel.nameInUse,
            `the container name "${name}" or ID ${id.slice(0, 12)} is already in use. Remove that container or restore under another name: ${Sentinel.nameInUse}`,
          );
        }
      }
      // runc's state is per host: another daemon (or a leftover) may run this ID; never touch that container.
      if (await this.deps.oci.state(id).catch(() => null)) {
        throw new ConflictError(Sentinel.ctrExists, `container ID ${id.slice(0, 12)} already exists in the runtime on this host: restore under a new name: ${Sentinel.ctrExists}`);
      }
      const containerDir = join(this.deps.config.root, 'containers', id);
      const bundleDir = join(containerDir, 'userdata');
      const logInBundle = old.logPath === join(old.bundleDir, CTR_LOG);
      const config: ContainerConfig = {
        ...old,
        id,
        name,
        spec: { ...old.spec, name },
        imageId: image.record.id,
        containerDir,
        bundleDir,
        runDir: join(this.deps.config.runRoot, 'containers', id),
        logPath: logInBundle ? join(bundleDir, CTR_LOG) : old.logPath,
      };
      await mkdir(bundleDir, { recursive: true, mode: 0o700 });
      const record: Container = {
        id,
        name,
        config,
        state: {
          ...freshState(),
          status: 'exited',
          stoppedByUser: true,
          checkpointed: true,
          checkpointPath: join(bundleDir, CHECKPOINT_DIR),
        },
      };
      try {
        this.deps.access.add(record);
      } catch (err) {
        await rm(containerDir, { recursive: true, force: true });
        throw err;
      }
      created = record;
      for (const f of [CHECKPOINT_DIR, STATS_DUMP, NETWORK_STATUS, ROOTFS_DIFF_TAR, DELETED_FILES, DEVSHM_TAR, ARTIFACTS]) {
        if (await exists(join(staging, f))) await rename(join(staging, f), join(bundleDir, f));
      }
      if (config.logDriver === 'k8s-file' && (await exists(join(staging, CTR_LOG)))) {
        await rename(join(staging, CTR_LOG), config.logPath).catch(async () => {
          // Another file system (a custom log path): copy instead.
          await writeFile(config.logPath, await readFile(join(staging, CTR_LOG)));
        });
      }
      const restored = record;
      return await this.deps.access.locked(id, () => this.restoreLocked(restored, opts, { spec, oldId: old.id }));
    } catch (err) {
      // Whatever the body's state, read it to its end so the client gets the error rather than a reset.
      body.unpipe();
      body.resume();
      if (created) await this.discardImported(created);
      throw err;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Removes every trace of a container made by a failed import. */
  private async discardImported(c: Container): Promise<void> {
    await this.deps.oci.deleteContainer(c.id).catch(() => undefined);
    await this.deps.images.unmountRootfs(c.config.containerDir).catch(() => undefined);
    await Promise.all([
      rm(c.config.containerDir, { recursive: true, force: true }),
      rm(c.config.runDir, { recursive: true, force: true }),
      unlink(this.deps.oci.exitFilePath(this.deps.access.exitDir, c.id)).catch(() => undefined),
    ]);
    this.deps.access.forget(c.id);
  }

  /**
   * Under the lock: mount the rootfs, write config.json (the one the container ran with; for an import the
   * archive's spec.dump retargeted to this host), apply an imported rootfs diff, and have conmon run
   * `runc restore`. On failure the container is as before (an import is discarded by the caller).
   */
  private async restoreLocked(c: Container, opts: RestoreOptions, imported?: { spec: OciSpec; oldId: string }): Promise<RestoreReport> {
    const { config } = c;
    const images = join(config.bundleDir, CHECKPOINT_DIR);
    if (!(await exists(join(images, 'inventory.img')))) {
      throw new InternalError(
        `a complete checkpoint for this container cannot be found, cannot restore: stat ${join(images, 'inventory.img')}: no such file or directory`,
      );
    }
    const attemptFiles = [RESTORE_LOG, STATS_RESTORE].map((f) => join(config.bundleDir, f));
    await Promise.all(attemptFiles.map((p) => rm(p, { force: true })));
    await mkdir(config.runDir, { recursive: true, mode: 0o700 });
    const mountPoint = await this.deps.images.mountRootfs(config.imageId, config.containerDir);
    try {
      const bindMounts = await this.deps.access.writeEtcFiles(c);
      const spec = imported ? imported.spec : (JSON.parse(await readFile(join(config.bundleDir, 'config.json'), 'utf8')) as OciSpec);
      retargetSpec(spec, { rootfs: mountPoint, bindMounts, oldId: imported?.oldId ?? c.id, newId: c.id });
      await writeFile(join(config.bundleDir, 'config.json'), JSON.stringify(spec));
      if (imported && !opts.ignoreRootFS) await applyRootfsDiff(config.bundleDir, mountPoint, this.log);
      const restored = await this.deps.oci.restoreContainer(
        {
          id: c.id,
          name: c.name,
          bundleDir: config.bundleDir,
          runDir: config.runDir,
          exitDir: this.deps.access.exitDir,
          logPath: config.logPath,
          logDriver: config.logDriver,
          terminal: config.terminal,
          stdin: config.stdin,
          exitCommand: this.deps.access.exitCommand(c.id),
          timeoutMs: restoreTimeoutMs(),
        },
        { imagePath: images, tcpEstablished: opts.tcpEstablished, fileLocks: opts.fileLocks },
      );
      const stats = opts.printStats ? await readCriuStatistics(join(config.bundleDir, STATS_RESTORE)) : null;
      if (!opts.keep) {
        const leftovers = [CHECKPOINT_DIR, PRE_CHECKPOINT_DIR, RESTORE_LOG, DUMP_LOG, STATS_DUMP, STATS_RESTORE, DEVSHM_TAR, NETWORK_STATUS, ROOTFS_DIFF_TAR, DELETED_FILES];
        await Promise.all(leftovers.map((f) => rm(join(config.bundleDir, f), { recursive: true, force: true })));
      }
      const now = nowRFC3339Nano();
      const saved = this.deps.access.save(c, {
        ...c.state,
        status: 'running',
        pid: restored.pid,
        conmonPid: restored.conmonPid,
        exitCode: 0,
        error: '',
        oomKilled: false,
        mountPoint,
        startedAt: c.state.startedAt === ZERO_TIME ? now : c.state.startedAt,
        stoppedByUser: false,
        checkpointed: false,
        checkpointedAt: undefined,
        checkpointPath: opts.keep ? images : '',
        checkpointLog: '',
        restored: true,
        restoredAt: now,
      });
      this.deps.access.emit(saved, 'restore');
      return {
        Id: c.id,
        RawInput: '',
        runtime_restore_duration: opts.printStats ? restored.durationUs : 0,
        criu_statistics: opts.printStats ? (stats ?? {}) : null,
      };
    } catch (err) {
      await this.deps.images.unmountRootfs(config.containerDir).catch((e: unknown) => this.log.warn({ err: e, id: c.id }, 'unmount after a failed restore'));
      await Promise.all(attemptFiles.map((p) => rm(p, { force: true })));
      throw err;
    }
  }
}

/**
 * How long a restore may take before it counts as failed: conmon's create timeout (240 s) unless
 * PODSERVE_RESTORE_TIMEOUT_MS says otherwise. CRIU can hang on a damaged image; the failure path then cleans up.
 */
function restoreTimeoutMs(): number | undefined {
  const value = Number(process.env.PODSERVE_RESTORE_TIMEOUT_MS);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

/** config.dump and spec.dump of an unpacked archive; 400 when they are missing or not podserve's. */
async function readDumps(dir: string): Promise<{ config: ContainerConfig; spec: OciSpec }> {
  let dump: ConfigDump;
  let spec: OciSpec;
  try {
    dump = JSON.parse(await readFile(join(dir, CONFIG_DUMP), 'utf8')) as ConfigDump;
    spec = JSON.parse(await readFile(join(dir, SPEC_DUMP), 'utf8')) as OciSpec;
  } catch (err) {
    throw new BadRequestError(`invalid checkpoint archive: ${CONFIG_DUMP} and ${SPEC_DUMP} are needed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const config = dump.podserve?.config;
  if (!config || typeof config !== 'object' || typeof config.id !== 'string' || typeof config.imageId !== 'string') {
    throw new BadRequestError(
      `this checkpoint archive was not written by podserve (${CONFIG_DUMP} has no podserve section); podserve restores its own archives`,
    );
  }
  if (typeof spec !== 'object' || spec === null || typeof spec.root !== 'object') {
    throw new BadRequestError(`invalid checkpoint archive: ${SPEC_DUMP} is not an OCI runtime configuration`);
  }
  return { config, spec };
}

/**
 * Points a dumped OCI config at this host: the new rootfs mount, this container's /etc files (bind mounts are
 * matched by destination, as CRIU matches external mounts), and the cgroup named after the new ID.
 */
function retargetSpec(spec: OciSpec, to: { rootfs: string; bindMounts: Record<string, string>; oldId: string; newId: string }): void {
  spec.root = { ...(spec.root ?? {}), path: to.rootfs };
  for (const m of spec.mounts ?? []) {
    const source = m.destination ? to.bindMounts[m.destination] : undefined;
    if (source && m.type === 'bind') m.source = source;
  }
  if (spec.linux && typeof spec.linux.cgroupsPath === 'string' && to.oldId !== to.newId) {
    spec.linux.cgroupsPath = spec.linux.cgroupsPath.split(to.oldId).join(to.newId);
  }
}

/** Mirrors a directory tree with hard links (symlinks copied as links). */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { mode: 0o700 });
  for (const name of await readdir(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    const st = await lstat(src);
    if (st.isDirectory()) await linkTree(src, dst);
    else if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
    else await link(src, dst);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
