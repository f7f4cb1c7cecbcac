import { createHash } from "node:crypto";
import { redact } from "../util/redact.ts";
import { resultSlot, type AccessLevel, type CheckResult } from "../policy/model.ts";
import { isUnsettled, recordInSteps, type AuditEntry, type AuditEvent, type AuditQuery, type DecidedGeneration, type DesiredEnforcement, type EnforcementEvent, type EnforcementKey, type EnforcementRecord, type EvaluationRecord, type StateStore, type StoredState } from "./contract.ts";
import { applyEnforcementEvent, byFirstFailure, desire, isUnreconciled, supersede } from "./enforcement.ts";
import type { KeyValueEntry } from "../plugin/state.ts";

/**
 * A StateStore in memory: for one-shot CLI evaluations (`check`, `explain`) that must not write to
 * the agent's data, and for tests. Same semantics as the embedded store, nothing durable.
 */
export class MemoryStore implements StateStore {
  readonly #states = new Map<string, StoredState>();
  /** (subject, check) → slot → newest result. */
  readonly #results = new Map<string, Map<string, CheckResult>>();
  readonly #audit: AuditEntry[] = [];
  readonly #maxAudit: number;

  constructor(options: { maxAudit?: number } = {}) {
    this.#maxAudit = options.maxAudit ?? 10_000;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async getState(policy: string, subject: string): Promise<StoredState | undefined> {
    return this.#states.get(`${policy}\u0000${subject}`);
  }

  async getStates(policy: string, subjects: readonly string[]): Promise<Map<string, StoredState>> {
    const out = new Map<string, StoredState>();
    for (const s of subjects) {
      const st = this.#states.get(`${policy}\u0000${s}`);
      if (st) out.set(s, st);
    }
    return out;
  }

  async listStates(filter: { policy?: string; subject?: string } = {}): Promise<StoredState[]> {
    return [...this.#states.values()].filter((s) => (!filter.policy || s.decision.policy === filter.policy) && (!filter.subject || s.decision.subject === filter.subject));
  }

  async putStates(states: readonly StoredState[]): Promise<void> {
    for (const s of states) this.#states.set(`${s.decision.policy}\u0000${s.decision.subject}`, s);
  }

  async unenforced(): Promise<StoredState[]> {
    return [...this.#states.values()].filter((s) => s.enforced_generation < s.decision.generation);
  }

  async unsettled(): Promise<StoredState[]> {
    return (await this.listStates()).filter(isUnsettled);
  }

  async markEnforced(policy: string, subject: string, generation: number, access: AccessLevel): Promise<void> {
    const key = `${policy}\u0000${subject}`;
    const s = this.#states.get(key);
    if (s) this.#states.set(key, { ...s, enforced_generation: generation, enforced_access: access });
  }

  async countByAccess(): Promise<Record<string, Record<string, number>>> {
    // A Map, then own properties: a policy named __proto__ or constructor must count as itself.
    const out = new Map<string, Record<string, number>>();
    for (const s of this.#states.values()) {
      const m = out.get(s.decision.policy) ?? {};
      out.set(s.decision.policy, m);
      m[s.decision.access] = (m[s.decision.access] ?? 0) + 1;
    }
    return Object.fromEntries(out);
  }

  async putResults(results: readonly CheckResult[]): Promise<void> {
    for (const r of results) {
      const key = `${r.subject}\u0000${r.check}`;
      let slots = this.#results.get(key);
      if (!slots) this.#results.set(key, (slots = new Map()));
      const prev = slots.get(resultSlot(r));
      if (!prev || r.observed_at >= prev.observed_at) slots.set(resultSlot(r), r);
    }
  }

  async getResults(subjects: readonly string[], checks: readonly string[]): Promise<CheckResult[]> {
    const out: CheckResult[] = [];
    for (const s of subjects) for (const c of checks) for (const r of this.#results.get(`${s}\u0000${c}`)?.values() ?? []) out.push(r);
    return out;
  }

  async pruneResults(before: number, limit = Infinity): Promise<number> {
    let n = 0;
    for (const slots of this.#results.values()) {
      for (const [slot, r] of slots) {
        if (n >= limit) return n;
        if (r.expires_at < before) {
          slots.delete(slot);
          n++;
        }
      }
    }
    return n;
  }

  async stateSubjects(): Promise<string[]> {
    return [...new Set([...this.#states.values()].map((s) => s.decision.subject))];
  }

  async forgetSubjects(subjects: readonly string[]): Promise<void> {
    const gone = new Set(subjects);
    for (const [key, s] of this.#states) if (gone.has(s.decision.subject)) this.#states.delete(key);
    for (const key of this.#results.keys()) if (gone.has(key.slice(0, key.indexOf("\u0000")))) this.#results.delete(key);
    for (const [key, v] of this.#values) if (v.subject !== undefined && gone.has(v.subject)) this.#values.delete(key);
  }

  /** space NUL key → value; copies in and out, as a database would. */
  readonly #values = new Map<string, { data: Uint8Array; subject: string | undefined; updatedAt: number }>();

  async getValues(space: string, keys: readonly string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    for (const k of keys) {
      const v = this.#values.get(`${space}\u0000${k}`);
      if (v) out.set(k, v.data.slice());
    }
    return out;
  }

  async putValues(space: string, entries: readonly KeyValueEntry[], updatedAt: number): Promise<void> {
    for (const e of entries) {
      const key = `${space}\u0000${e.key}`;
      if (e.value === null) this.#values.delete(key);
      else this.#values.set(key, { data: e.value.slice(), subject: e.subject, updatedAt });
    }
  }

  async listKeys(space: string, prefixes: readonly string[], limit = 10_000): Promise<string[]> {
    const out: string[] = [];
    for (const prefix of new Set(prefixes)) {
      const full = `${space}\u0000${prefix}`;
      const keys = [...this.#values.keys()].filter((k) => k.startsWith(full)).sort();
      for (const k of keys.slice(0, limit)) out.push(k.slice(space.length + 1));
    }
    return out;
  }

  async pruneValues(space: string, before: number, limit = Infinity): Promise<number> {
    let n = 0;
    for (const [key, v] of this.#values) {
      if (n >= limit) break;
      if (key.startsWith(`${space}\u0000`) && v.updatedAt < before) {
        this.#values.delete(key);
        n++;
      }
    }
    return n;
  }

  readonly #meta = new Map<string, string>();

  async getMeta(key: string): Promise<unknown> {
    const v = this.#meta.get(key);
    return v === undefined ? undefined : JSON.parse(v);
  }

  async putMeta(key: string, value: unknown): Promise<void> {
    this.#meta.set(key, JSON.stringify(value));
  }

  async updateMeta<R>(key: string, change: (current: unknown) => { value: unknown; result: R }): Promise<R> {
    const { value, result } = change(await this.getMeta(key));
    await this.putMeta(key, value);
    return result;
  }

  /** Enforcement records by (policy, subject, action). */
  readonly #enforcement = new Map<string, EnforcementRecord>();

  async pruneEnforcement(limit = Infinity): Promise<number> {
    let n = 0;
    for (const [key, r] of this.#enforcement) {
      if (n >= limit) break;
      if (r.status === "pending" || r.status === "failed" || this.#states.has(`${r.policy}\u0000${r.subject}`)) continue;
      this.#enforcement.delete(key);
      n++;
    }
    return n;
  }

  async desireEnforcement(desired: readonly DesiredEnforcement[], decided: readonly DecidedGeneration[]): Promise<void> {
    for (const d of decided) {
      for (const r of await this.getEnforcement(d.policy, d.subject)) {
        const next = supersede(r, d.generation);
        if (next) this.#enforcement.set(enforcementKey(next), next);
      }
    }
    for (const d of desired) this.#enforcement.set(enforcementKey(d), desire(this.#enforcement.get(enforcementKey(d)), d));
  }

  async getEnforcement(policy: string, subject: string): Promise<EnforcementRecord[]> {
    return [...this.#enforcement.values()].filter((r) => r.policy === policy && r.subject === subject).sort((a, b) => a.action.localeCompare(b.action));
  }

  async listEnforcement(filter: { readonly unreconciled: true; readonly policy?: string } | { readonly ids: readonly string[] }): Promise<EnforcementRecord[]> {
    const all = [...this.#enforcement.values()];
    if ("ids" in filter) return all.filter((r) => filter.ids.includes(r.id));
    return all.filter((r) => isUnreconciled(r) && (filter.policy === undefined || r.policy === filter.policy)).sort(byFirstFailure);
  }

  async updateEnforcement(key: EnforcementKey, event: EnforcementEvent): Promise<void> {
    const r = this.#enforcement.get(enforcementKey(key));
    const next = r && applyEnforcementEvent(r, event);
    if (next) this.#enforcement.set(enforcementKey(key), next);
  }

  recordEvaluation(batch: EvaluationRecord): Promise<void> {
    return recordInSteps(this, batch);
  }

  async appendAudit(events: readonly AuditEvent[]): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for (const e of events) {
      const last = this.#audit.at(-1);
      const prev = last?.hash ?? "0".repeat(64);
      const seq = (last?.seq ?? 0) + 1;
      const body = { ...redact(e), seq, ts: new Date().toISOString(), prev };
      const entry = { ...body, hash: createHash("sha256").update(prev + "\n" + JSON.stringify(body)).digest("hex") } as AuditEntry;
      this.#audit.push(entry);
      out.push(entry);
    }
    if (this.#audit.length > this.#maxAudit) this.#audit.splice(0, this.#audit.length - this.#maxAudit);
    return out;
  }

  async readAudit(q: AuditQuery = {}): Promise<AuditEntry[]> {
    const matched = this.#audit.filter((e) => (q.after === undefined || e.seq > q.after) && (!q.subject || e.subject === q.subject) && (!q.type || e.type === q.type));
    // Like the embedded store: with a cursor, the first `limit` after it (paging forward); without, the newest.
    const limit = q.limit ?? 100;
    return q.after === undefined ? matched.slice(-limit) : matched.slice(0, limit);
  }
}

function enforcementKey(k: EnforcementKey): string {
  return `${k.policy}\u0000${k.subject}\u0000${k.action}`;
}
