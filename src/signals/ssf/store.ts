/**
 * What the receiver keeps across restarts, in the agent's database: every accepted `jti` (so a
 * re-delivered SET is answered as before and processed once), and per transmitter the stream it
 * manages with the push authorization vigil generated for it.
 *
 * Replay protection stays exact while the storage stays bounded: `jti`s are kept until their `iat`
 * leaves the transmitter's `max_set_age` (older SETs are refused anyway), and when more than
 * `max_remembered` are held the oldest go and the newest `iat` dropped becomes the horizon: SETs
 * issued at or before it are refused as too old, because a repeat of them could no longer be told.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { ensureSchema, storeError, transaction } from "../../db/sqlite.ts";

const DDL = `
CREATE TABLE IF NOT EXISTS ssf_jti (
  transmitter TEXT NOT NULL,
  jti TEXT NOT NULL,
  iat INTEGER NOT NULL,
  PRIMARY KEY (transmitter, jti)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ssf_jti_by_iat ON ssf_jti (iat);
CREATE TABLE IF NOT EXISTS ssf_streams (
  transmitter TEXT PRIMARY KEY,
  data TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ssf_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`;

/** The stream vigil manages at one transmitter, as remembered. */
export interface StoredStream {
  readonly stream_id: string;
  /** The `authorization_header` vigil gave the transmitter for pushes (push streams). Secret. */
  readonly authorization?: string;
  /** The push URL registered with it. */
  readonly endpoint_url?: string;
  /** The stream's `aud`, so SETs are checked before the stream is read again after a restart. */
  readonly aud?: readonly string[];
}

export class SsfStore {
  readonly #db: DatabaseSync;
  readonly #seen: StatementSync;
  readonly #remember: StatementSync;
  #pending: { row: [string, string, number]; resolve(): void; reject(err: unknown): void }[] = [];
  #forgottenBefore: number | undefined;

  constructor(db: DatabaseSync) {
    this.#db = db;
    ensureSchema(db, "ssf", 1, DDL);
    this.#seen = db.prepare("SELECT 1 AS hit FROM ssf_jti WHERE transmitter = ? AND jti = ?");
    this.#remember = db.prepare("INSERT OR IGNORE INTO ssf_jti (transmitter, jti, iat) VALUES (?, ?, ?)");
    const row = db.prepare("SELECT value FROM ssf_meta WHERE key = 'forgotten_before'").get() as { value: string } | undefined;
    this.#forgottenBefore = row ? Number(row.value) : undefined;
  }

  /** This transmitter's `jti` was accepted before. */
  seen(transmitter: string, jti: string): boolean {
    try {
      return this.#seen.get(transmitter, jti) !== undefined;
    } catch (err) {
      throw storeError("cannot read the SSF jti table", err);
    }
  }

  /**
   * Records an accepted `jti`; resolves once it is committed. The `jti`s handed over within one turn
   * of the event loop share a transaction: under load one commit (and one write of each B-tree page)
   * serves many SETs.
   */
  remember(transmitter: string, jti: string, iat: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ row: [transmitter, jti, iat], resolve, reject });
      if (this.#pending.length === 1) setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    const batch = this.#pending;
    this.#pending = [];
    try {
      transaction(this.#db, () => {
        for (const { row } of batch) this.#remember.run(...row);
      });
      for (const p of batch) p.resolve();
    } catch (err) {
      const failure = storeError("cannot record an SSF jti", err);
      for (const p of batch) p.reject(failure);
    }
  }

  /** `iat` (epoch seconds) at or before which `jti`s may have been forgotten because of the row cap. */
  get forgottenBefore(): number | undefined {
    return this.#forgottenBefore;
  }

  /**
   * Forgets `jti`s whose `iat` left their transmitter's window (`maxAgeSeconds` per transmitter; a
   * transmitter no longer configured keeps `fallbackAgeSeconds`), then the oldest beyond `maxRows`.
   * Returns how many were forgotten.
   */
  prune(nowSeconds: number, maxAgeSeconds: ReadonlyMap<string, number>, fallbackAgeSeconds: number, maxRows: number): number {
    try {
      let removed = 0;
      for (const [transmitter, age] of maxAgeSeconds) {
        removed += Number(this.#db.prepare("DELETE FROM ssf_jti WHERE transmitter = ? AND iat < ?").run(transmitter, nowSeconds - age).changes);
      }
      const names = [...maxAgeSeconds.keys()];
      const others = names.length === 0 ? "" : ` AND transmitter NOT IN (${names.map(() => "?").join(", ")})`;
      removed += Number(this.#db.prepare(`DELETE FROM ssf_jti WHERE iat < ?${others}`).run(nowSeconds - fallbackAgeSeconds, ...names).changes);
      const { n } = this.#db.prepare("SELECT COUNT(*) AS n FROM ssf_jti").get() as { n: number };
      if (n > maxRows) {
        const excess = n - maxRows;
        const { horizon } = this.#db.prepare("SELECT MAX(iat) AS horizon FROM (SELECT iat FROM ssf_jti ORDER BY iat LIMIT ?)").get(excess) as { horizon: number };
        // Everything up to the horizon goes, so no jti at or before it survives by chance.
        removed += Number(this.#db.prepare("DELETE FROM ssf_jti WHERE iat <= ?").run(horizon).changes);
        this.#forgottenBefore = Math.max(this.#forgottenBefore ?? horizon, horizon);
        this.#db.prepare("INSERT INTO ssf_meta (key, value) VALUES ('forgotten_before', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(this.#forgottenBefore));
      }
      return removed;
    } catch (err) {
      throw storeError("cannot prune the SSF jti table", err);
    }
  }

  /** How many `jti`s are remembered. */
  count(): number {
    return (this.#db.prepare("SELECT COUNT(*) AS n FROM ssf_jti").get() as { n: number }).n;
  }

  loadStream(transmitter: string): StoredStream | undefined {
    try {
      const row = this.#db.prepare("SELECT data FROM ssf_streams WHERE transmitter = ?").get(transmitter) as { data: string } | undefined;
      return row ? (JSON.parse(row.data) as StoredStream) : undefined;
    } catch (err) {
      throw storeError("cannot read the SSF stream table", err);
    }
  }

  saveStream(transmitter: string, stream: StoredStream): void {
    try {
      this.#db
        .prepare("INSERT INTO ssf_streams (transmitter, data) VALUES (?, ?) ON CONFLICT(transmitter) DO UPDATE SET data = excluded.data")
        .run(transmitter, JSON.stringify(stream));
    } catch (err) {
      throw storeError("cannot record an SSF stream", err);
    }
  }

  forgetStream(transmitter: string): void {
    try {
      this.#db.prepare("DELETE FROM ssf_streams WHERE transmitter = ?").run(transmitter);
    } catch (err) {
      throw storeError("cannot forget an SSF stream", err);
    }
  }
}
