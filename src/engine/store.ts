/**
 * The embedded state store: SQLite (better-sqlite3) in WAL mode under --root. Chosen over JSON files because
 * every change is one atomic transaction that survives kill -9 of the daemon (WAL replays or discards it whole),
 * name uniqueness is a constraint rather than a race, and the short-lived `container cleanup` process that
 * conmon runs on exit can update the same rows safely while the daemon runs (SQLite's file locking). Podman 5
 * moved from BoltDB to SQLite for the same reasons.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { ConflictError, Sentinel } from '../errors.js';

export interface StoredContainer<C, S> {
  id: string;
  name: string;
  config: C;
  state: S;
}

export interface StoredExec<C, S> {
  id: string;
  containerId: string;
  config: C;
  state: S;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created INTEGER NOT NULL,
  config TEXT NOT NULL,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exec_sessions (
  id TEXT PRIMARY KEY,
  container_id TEXT NOT NULL,
  config TEXT NOT NULL,
  state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exec_by_container ON exec_sessions(container_id);
`;

interface ContainerRow {
  id: string;
  name: string;
  config: string;
  state: string;
}

interface ExecRow {
  id: string;
  container_id: string;
  config: string;
  state: string;
}

export class StateStore<C, S, EC, ES> {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(root: string) {
    this.db = new Database(join(root, 'state.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.stmts = {
      insert: this.db.prepare('INSERT INTO containers (id, name, created, config, state) VALUES (?, ?, ?, ?, ?)'),
      all: this.db.prepare('SELECT id, name, config, state FROM containers ORDER BY created'),
      byId: this.db.prepare('SELECT id, name, config, state FROM containers WHERE id = ?'),
      byName: this.db.prepare('SELECT id, name, config, state FROM containers WHERE name = ?'),
      byPrefix: this.db.prepare("SELECT id, name, config, state FROM containers WHERE id LIKE ? || '%' LIMIT 2"),
      setState: this.db.prepare('UPDATE containers SET state = ? WHERE id = ?'),
      setConfig: this.db.prepare('UPDATE containers SET config = ?, name = ? WHERE id = ?'),
      remove: this.db.prepare('DELETE FROM containers WHERE id = ?'),
      count: this.db.prepare('SELECT COUNT(*) AS n FROM containers'),
      execInsert: this.db.prepare('INSERT INTO exec_sessions (id, container_id, config, state) VALUES (?, ?, ?, ?)'),
      execById: this.db.prepare('SELECT id, container_id, config, state FROM exec_sessions WHERE id = ?'),
      execByContainer: this.db.prepare('SELECT id, container_id, config, state FROM exec_sessions WHERE container_id = ?'),
      execAll: this.db.prepare('SELECT id, container_id, config, state FROM exec_sessions'),
      execSetState: this.db.prepare('UPDATE exec_sessions SET state = ? WHERE id = ?'),
      execRemove: this.db.prepare('DELETE FROM exec_sessions WHERE id = ?'),
      execRemoveByContainer: this.db.prepare('DELETE FROM exec_sessions WHERE container_id = ?'),
    };
  }

  private toContainer(row: ContainerRow | undefined): StoredContainer<C, S> | undefined {
    if (!row) return undefined;
    return { id: row.id, name: row.name, config: JSON.parse(row.config) as C, state: JSON.parse(row.state) as S };
  }

  private toExec(row: ExecRow | undefined): StoredExec<EC, ES> | undefined {
    if (!row) return undefined;
    return { id: row.id, containerId: row.container_id, config: JSON.parse(row.config) as EC, state: JSON.parse(row.state) as ES };
  }

  /** Adds a container; a taken name or id is a 409 with Podman's wording. */
  addContainer(c: StoredContainer<C, S>): void {
    try {
      this.stmts.insert.run(c.id, c.name, Date.now(), JSON.stringify(c.config), JSON.stringify(c.state));
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new ConflictError(
          Sentinel.nameInUse,
          `the container name "${c.name}" is already in use by another container. You have to remove that container to be able to reuse that name: ${Sentinel.nameInUse}`,
        );
      }
      throw err;
    }
  }

  containers(): StoredContainer<C, S>[] {
    return (this.stmts.all.all() as ContainerRow[]).map((r) => this.toContainer(r)!);
  }

  containerById(id: string): StoredContainer<C, S> | undefined {
    return this.toContainer(this.stmts.byId.get(id) as ContainerRow | undefined);
  }

  /** Exact id, exact name, then unique id prefix: Podman's lookup order. */
  lookupContainer(nameOrId: string): StoredContainer<C, S> | undefined {
    const exact = (this.stmts.byId.get(nameOrId) ?? this.stmts.byName.get(nameOrId)) as ContainerRow | undefined;
    if (exact) return this.toContainer(exact);
    if (!/^[0-9a-f]{1,64}$/.test(nameOrId)) return undefined;
    const rows = this.stmts.byPrefix.all(nameOrId) as ContainerRow[];
    if (rows.length > 1) {
      throw new ConflictError('more than one result', `more than one result for container ID ${nameOrId}: more than one result`);
    }
    return this.toContainer(rows[0]);
  }

  setContainerState(id: string, state: S): void {
    this.stmts.setState.run(JSON.stringify(state), id);
  }

  setContainerConfig(id: string, name: string, config: C): void {
    try {
      this.stmts.setConfig.run(JSON.stringify(config), name, id);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new ConflictError(Sentinel.nameInUse, `the container name "${name}" is already in use: ${Sentinel.nameInUse}`);
      }
      throw err;
    }
  }

  removeContainer(id: string): void {
    this.db.transaction(() => {
      this.stmts.execRemoveByContainer.run(id);
      this.stmts.remove.run(id);
    })();
  }

  containerCount(): number {
    return (this.stmts.count.get() as { n: number }).n;
  }

  addExec(e: StoredExec<EC, ES>): void {
    this.stmts.execInsert.run(e.id, e.containerId, JSON.stringify(e.config), JSON.stringify(e.state));
  }

  execById(id: string): StoredExec<EC, ES> | undefined {
    return this.toExec(this.stmts.execById.get(id) as ExecRow | undefined);
  }

  execsOf(containerId: string): StoredExec<EC, ES>[] {
    return (this.stmts.execByContainer.all(containerId) as ExecRow[]).map((r) => this.toExec(r)!);
  }

  execs(): StoredExec<EC, ES>[] {
    return (this.stmts.execAll.all() as ExecRow[]).map((r) => this.toExec(r)!);
  }

  setExecState(id: string, state: ES): void {
    this.stmts.execSetState.run(JSON.stringify(state), id);
  }

  removeExec(id: string): void {
    this.stmts.execRemove.run(id);
  }

  close(): void {
    this.db.close();
  }
}
