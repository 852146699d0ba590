/**
 * What a Cloudflare node object keeps in its own SQLite storage (`ctx.storage.sql`), so that a
 * wake after hibernation or eviction finds it: the node's name and how often it woke
 * (`wakes`), each topic's recent messages (its last message and resume window, bounded), and
 * the snapshots of sessions too large for their socket's attachment (see
 * `cloudflare_hibernation.ts`). Writes are synchronous here and committed by the runtime at the
 * end of the event, so nothing is awaited.
 *
 * @example
 * ```ts
 * const storage = new NodeStorage(ctx.storage.sql, { size: 1000, maxAgeMs: 3_600_000 });
 * const wakes = storage.countWake();
 * switchboard.hub.restore(storage.messages("node-1"));
 * switchboard.hub.persistWith((b) => storage.keep(b));
 * ```
 * @module
 */
import { Broadcast } from "../core/broadcast.ts";
import { DEFAULT_HISTORY, type HistoryLimits } from "../resume/history.ts";

/** The part of a Durable Object's `ctx.storage.sql` used here. */
export interface SqlStorage {
  exec(query: string, ...bindings: unknown[]): { toArray(): Record<string, unknown>[] };
}

/** Messages larger than this (payload JSON plus bytes) are not written: a topic's rows go. */
export const MAX_STORED_MESSAGE_BYTES = 128 * 1024;
/** Storage budget for messages when the history sets none. */
const _DEFAULT_STORED_BYTES = 16 * 1024 * 1024;
/** The byte budget is checked every this many writes (a sum over the table). */
const _BUDGET_CHECK_EVERY = 64;

/** The node object's storage: its name, its wakes, topic messages, spilled snapshots. */
export class NodeStorage {
  readonly #sql: SqlStorage;
  /**
   * The node's history limits (`HISTORY_*`; default {@link DEFAULT_HISTORY}). Settable: the
   * node reads its name from this storage before its configuration (and so these) is known.
   */
  limits: HistoryLimits;
  #writes = 0;

  constructor(sql: SqlStorage, limits: HistoryLimits = DEFAULT_HISTORY) {
    this.#sql = sql;
    this.limits = limits;
    sql.exec(
      "CREATE TABLE IF NOT EXISTS switchboard_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    );
    sql.exec(
      "CREATE TABLE IF NOT EXISTS switchboard_messages (topic TEXT NOT NULL, " +
        "stream TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, " +
        "payload TEXT NOT NULL, bin BLOB, bytes INTEGER NOT NULL, " +
        "PRIMARY KEY (topic, stream, seq))",
    );
    sql.exec(
      "CREATE INDEX IF NOT EXISTS switchboard_messages_at ON switchboard_messages (at, seq)",
    );
    sql.exec(
      "CREATE TABLE IF NOT EXISTS switchboard_sessions (id TEXT PRIMARY KEY, " +
        "snapshot TEXT NOT NULL)",
    );
  }

  /** A stored value of the node (its name…), if any. */
  meta(key: string): string | undefined {
    const row = this.#sql.exec("SELECT value FROM switchboard_meta WHERE key = ?", key)
      .toArray()[0];
    return row === undefined ? undefined : String(row.value);
  }

  /** Stores a value of the node. */
  setMeta(key: string, value: string): void {
    this.#sql.exec(
      "INSERT INTO switchboard_meta (key, value) VALUES (?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  /** How many times the node was rebuilt after hibernation or eviction. */
  get wakes(): number {
    return Number(this.meta("wakes") ?? 0);
  }

  /** Counts one more wake; returns the new count. */
  countWake(): number {
    const wakes = this.wakes + 1;
    this.setMeta("wakes", String(wakes));
    return wakes;
  }

  /**
   * Writes a message this node numbered; keeps the topic's newest `size` messages of its stream
   * (a topic's former streams go with age or the byte budget). A message too large to keep is
   * not written and the topic's rows go, so a wake never finds an older one as the last.
   */
  keep(b: Broadcast): void {
    const payload = JSON.stringify(b.payload);
    const bytes = payload.length + (b.binary?.byteLength ?? 0) + b.topic.length + b.event.length;
    if (bytes > MAX_STORED_MESSAGE_BYTES) {
      this.#sql.exec("DELETE FROM switchboard_messages WHERE topic = ?", b.topic);
      return;
    }
    this.#sql.exec(
      "INSERT OR REPLACE INTO switchboard_messages " +
        "(topic, stream, seq, at, event, payload, bin, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      b.topic,
      b.stream,
      b.seq,
      b.at,
      b.event,
      payload,
      b.binary ? b.binary.slice().buffer : null,
      bytes,
    );
    // A range of the primary key: usually the one message that just left the window.
    this.#sql.exec(
      "DELETE FROM switchboard_messages WHERE topic = ? AND stream = ? AND seq <= ?",
      b.topic,
      b.stream,
      b.seq - this.limits.size,
    );
    if (++this.#writes % _BUDGET_CHECK_EVERY === 0) this.#keepBudget(b.at);
  }

  /** The stored messages, oldest first, as broadcasts of `nodeId` (dropping expired ones). */
  messages(nodeId: string, now: number): Broadcast[] {
    this.#dropAged(now);
    const rows = this.#sql.exec(
      "SELECT topic, stream, seq, at, event, payload, bin FROM switchboard_messages " +
        "ORDER BY at, seq",
    ).toArray();
    return rows.map((row) =>
      new Broadcast({
        topic: String(row.topic),
        event: String(row.event),
        payload: JSON.parse(String(row.payload)),
        binary: row.bin instanceof ArrayBuffer ? new Uint8Array(row.bin) : undefined,
        origin: { nodeId },
        stream: String(row.stream),
        seq: Number(row.seq),
        at: Number(row.at),
      })
    );
  }

  /** A session snapshot kept here because it outgrew its socket's attachment. */
  spilled(id: string): string | undefined {
    const row = this.#sql.exec("SELECT snapshot FROM switchboard_sessions WHERE id = ?", id)
      .toArray()[0];
    return row === undefined ? undefined : String(row.snapshot);
  }

  /** Keeps (or, with `undefined`, forgets) a session's snapshot. */
  spill(id: string, snapshot: string | undefined): void {
    if (snapshot === undefined) {
      this.#sql.exec("DELETE FROM switchboard_sessions WHERE id = ?", id);
      return;
    }
    this.#sql.exec(
      "INSERT OR REPLACE INTO switchboard_sessions (id, snapshot) VALUES (?, ?)",
      id,
      snapshot,
    );
  }

  /** Forgets spilled snapshots of sockets that are gone (closed while nobody listened). */
  keepSpilled(live: ReadonlySet<string>): void {
    const rows = this.#sql.exec("SELECT id FROM switchboard_sessions").toArray();
    for (const { id } of rows) {
      if (!live.has(String(id))) this.spill(String(id), undefined);
    }
  }

  /**
   * Drops messages past the window's age, but never a topic's newest: it is the topic's last
   * message, which a status page's late joiner gets however old it is (as in memory).
   */
  #dropAged(now: number): void {
    this.#sql.exec(
      "DELETE FROM switchboard_messages AS m WHERE at < ? AND at < " +
        "(SELECT MAX(at) FROM switchboard_messages AS newer WHERE newer.topic = m.topic)",
      now - this.limits.maxAgeMs,
    );
  }

  /**
   * Drops messages past the window's age (of any topic and stream: a topic's former streams
   * go this way), then, past the byte budget, the oldest messages of any topic.
   */
  #keepBudget(now: number): void {
    this.#dropAged(now);
    const budget = this.limits.maxBytes ?? _DEFAULT_STORED_BYTES;
    const total = Number(
      this.#sql.exec("SELECT COALESCE(SUM(bytes), 0) AS total FROM switchboard_messages")
        .toArray()[0].total,
    );
    if (total <= budget) return;
    // A tenth of the budget below it, so the next writes do not each evict again.
    this.#sql.exec(
      "DELETE FROM switchboard_messages WHERE rowid IN (SELECT rowid FROM (SELECT rowid, " +
        "SUM(bytes) OVER (ORDER BY at, seq) AS running FROM switchboard_messages) " +
        "WHERE running <= ?)",
      total - budget * 0.9,
    );
  }
}
