/**
 * Shared by the enforcement benches (enforce-latency, enforce-burst): the contract-enforcing provider
 * fakes of test/helpers/fakes, run in a process of their own (the "fake host"), so their work (JSON,
 * SigV4 and JWS checks, state) shares neither the agent's nor the bench driver's event loop.
 *
 * The host timestamps every request with nowMs() (CLOCK_MONOTONIC, comparable between processes on the
 * host) once its body is fully read, i.e. when the fake has *received* the call, and reports it to
 * the driver over IPC. At the end the driver asks for the fakes' own records (`api.handled`, state),
 * which are what the invariants (nothing lost, nothing twice) are checked against.
 *
 * Run as a child: `node bench/enforce-lib.ts '<FakeSpec JSON>'` forked with IPC. `BENCH_FAKE_PROCS=each`
 * puts every fake in its own host process instead of one host for all.
 */
import { fork, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { BIN, ROOT, nowMs } from "./lib.ts";
import type { FakeRequest, FakeApi } from "../test/helpers/fake-api.ts";

export const FAKES = ["okta", "entra", "consul", "ssf", "iam"] as const;
export type FakeName = (typeof FAKES)[number];

export const OKTA_TOKEN = "00bench-okta-token-0123456789abcdef";
export const CONSUL_TOKEN = "5d9c8a4e-bench-consul-0f1e2d3c4b5a";
export const SSF_AUTH = "Bearer bench-ssf-receiver-token-0123456789";

/** Which fakes a host runs, and the state they start with. */
export interface FakeSpec {
  okta?: { users: string[] };
  entra?: { users: { id: string; upn: string }[] };
  consul?: { write: string[]; protocols?: Record<string, string> };
  ssf?: Record<string, never>;
  iam?: { roles: string[] };
}

/** One request a fake received. `line` is `METHOD path?query` (IAM: plus ` Action=<action>`, since every call posts to `/`). */
export interface Call {
  fake: FakeName;
  line: string;
  /** nowMs() in the host when the body was read. */
  t: number;
  /** A token request (Okta/Entra OAuth): not an enforcement call, not in plans. */
  token: boolean;
}

/** What a fake recorded itself, for the end-of-run invariants. */
export interface FakeRecord {
  /** Lines of requests that passed authentication and reached a route, token requests left out. */
  handled: string[];
  /** Every request that reached the server, token requests and refused ones included. */
  requests: number;
  /** Requests that did not reach a route (401/403/404 or an injected fault). */
  unhandled: string[];
  /** Token requests. */
  tokens: number;
  /** Okta: user id → status. Consul: intention key → Action. IAM: role → inline policy names. SSF: accepted/duplicates/rejected. */
  state: Record<string, unknown>;
}

type PublicDocs = Record<string, { contentType: string; body: string }>;

const isToken = (path: string) => path.includes("/oauth2/");

function lineOf(fake: FakeName, method: string, url: string, body: string): string {
  if (fake === "iam") return `${method} ${url} Action=${new URLSearchParams(body).get("Action") ?? "?"}`;
  return `${method} ${url}`;
}

// ---------------------------------------------------------------------------------------------- host

async function host(spec: FakeSpec): Promise<void> {
  const send = (m: unknown) => process.send!(m);
  const apis = new Map<FakeName, FakeApi>();
  const stateOf = new Map<FakeName, () => Record<string, unknown>>();
  let documents: PublicDocs = {};
  // Batched reporting: timestamps are taken per request; IPC writes are coalesced per turn of the loop.
  let batch: Call[] = [];
  const flush = () => {
    const b = batch;
    batch = [];
    if (b.length) send({ type: "calls", calls: b });
  };
  const watch = (fake: FakeName, api: FakeApi) => {
    const inner = api.authenticate;
    api.authenticate = (req: FakeRequest) => {
      const t = nowMs();
      if (batch.length === 0) setImmediate(flush);
      batch.push({ fake, line: lineOf(fake, req.method, req.url, req.body), t, token: isToken(req.path) });
      return inner(req);
    };
    apis.set(fake, api);
  };

  if (spec.okta) {
    const { OktaFake } = await import("../test/helpers/fakes/okta.ts");
    const okta = new OktaFake({ apiToken: OKTA_TOKEN });
    for (const id of spec.okta.users) okta.addUser(id, "ACTIVE");
    watch("okta", okta.api);
    stateOf.set("okta", () => Object.fromEntries([...okta.users].map(([id, u]) => [id, u.status])));
  }
  if (spec.entra) {
    const { FakeEntra } = await import("../test/helpers/fakes/entra.ts");
    const entra = new FakeEntra();
    for (const u of spec.entra.users) entra.addUser({ id: u.id, userPrincipalName: u.upn });
    watch("entra", entra);
    stateOf.set("entra", () => Object.fromEntries([...entra.users].map(([id, u]) => [id, u.signInSessionsValidFromDateTime])));
  }
  if (spec.consul) {
    const { FakeConsul } = await import("../test/helpers/fakes/consul.ts");
    const consul = new FakeConsul();
    consul.tokens.set(CONSUL_TOKEN, { accessor: "a1b2c3d4-0000-4000-8000-00000000bench", write: spec.consul.write });
    for (const [svc, proto] of Object.entries(spec.consul.protocols ?? {})) consul.protocols.set(svc, proto);
    watch("consul", consul.api);
    stateOf.set("consul", () => Object.fromEntries([...consul.intentions].map(([k, v]) => [k, v.Action])));
  }
  if (spec.ssf) {
    const { SsfReceiver } = await import("../test/helpers/fakes/ssf-receiver.ts");
    const ssf = new SsfReceiver({
      documents: () => Object.fromEntries(Object.entries(documents).map(([p, d]) => [p, { contentType: d.contentType, body: () => d.body }])),
      authorization: SSF_AUTH,
    });
    watch("ssf", ssf.api);
    stateOf.set("ssf", () => ({ accepted: ssf.accepted.length, duplicates: ssf.duplicates, rejected: ssf.rejected }));
  }
  if (spec.iam) {
    const { FakeIam } = await import("../test/helpers/fakes/aws.ts");
    const iam = new FakeIam();
    for (const r of spec.iam.roles) iam.addRole(r);
    watch("iam", iam.api);
    stateOf.set("iam", () => Object.fromEntries([...iam.roles].map(([name, r]) => [name, [...r.inline.keys()]])));
  }

  const bases: Partial<Record<FakeName, string>> = {};
  for (const [name, api] of apis) bases[name] = await api.start();
  process.on("message", (m: { type: string; id?: number; documents?: PublicDocs }) => {
    if (m.type === "documents") {
      documents = m.documents!;
      send({ type: "ack", id: m.id });
    } else if (m.type === "record") {
      const out: Partial<Record<FakeName, FakeRecord>> = {};
      for (const [name, api] of apis) {
        const handled = api.handled.filter((r) => !isToken(r.path));
        out[name] = {
          handled: handled.map((r) => lineOf(name, r.method, r.url, r.body)),
          requests: api.requests.length,
          unhandled: api.requests.filter((r) => !api.handled.includes(r)).map((r) => lineOf(name, r.method, r.url, r.body)),
          tokens: api.requests.filter((r) => isToken(r.path)).length,
          state: stateOf.get(name)!(),
        };
      }
      send({ type: "record", id: m.id, record: out });
    }
  });
  process.on("disconnect", () => void Promise.all([...apis.values()].map((a) => a.stop())).then(() => process.exit(0)));
  send({ type: "listening", bases, pid: process.pid });
}

if (process.send && process.argv[1] && import.meta.filename === process.argv[1]) {
  await host(JSON.parse(process.argv[2] ?? "{}") as FakeSpec);
}

// -------------------------------------------------------------------------------------------- driver

interface HostProc {
  child: ChildProcess;
  names: FakeName[];
  pending: Map<number, (m: unknown) => void>;
}

/** The fakes as seen from the bench driver: their URLs, every call as it arrives, their records on demand. */
export class Fakes {
  readonly bases: Partial<Record<FakeName, string>> = {};
  /** Every call, in arrival order at the driver, per fake. */
  readonly calls = new Map<FakeName, Call[]>();
  /** The same without token requests. */
  readonly apiCalls = new Map<FakeName, Call[]>();
  /** Called for every call as it arrives (before waiters are checked). */
  onCall: ((c: Call) => void) | undefined;
  readonly pids: number[] = [];
  readonly #hosts: HostProc[] = [];
  #waiters: { pred: () => boolean; resolve: () => void }[] = [];
  #seq = 0;

  /** Starts the fakes of `spec`: one host process, or one per fake with `mode: "each"`. */
  static async start(spec: FakeSpec, mode: "one" | "each" = (process.env.BENCH_FAKE_PROCS as "one" | "each") ?? "one"): Promise<Fakes> {
    const f = new Fakes();
    const groups: FakeSpec[] = mode === "each" ? (Object.entries(spec) as [FakeName, unknown][]).map(([k, v]) => ({ [k]: v }) as FakeSpec) : [spec];
    await Promise.all(groups.map((g) => f.#startHost(g)));
    return f;
  }

  async #startHost(spec: FakeSpec): Promise<void> {
    const child = fork(join(ROOT, "bench/enforce-lib.ts"), [JSON.stringify(spec)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const h: HostProc = { child, names: Object.keys(spec) as FakeName[], pending: new Map() };
    this.#hosts.push(h);
    const listening = new Promise<void>((res, rej) => {
      child.once("exit", (code) => rej(new Error(`fake host exited (${code})`)));
      child.on("message", (m: { type: string; id?: number; calls?: Call[]; bases?: Partial<Record<FakeName, string>>; pid?: number }) => {
        if (m.type === "calls") {
          for (const c of m.calls!) {
            let list = this.calls.get(c.fake);
            if (!list) this.calls.set(c.fake, (list = []));
            list.push(c);
            if (!c.token) {
              let api = this.apiCalls.get(c.fake);
              if (!api) this.apiCalls.set(c.fake, (api = []));
              api.push(c);
            }
            this.onCall?.(c);
          }
          if (this.#waiters.length) this.#waiters = this.#waiters.filter((w) => (w.pred() ? (w.resolve(), false) : true));
        } else if (m.type === "listening") {
          Object.assign(this.bases, m.bases);
          this.pids.push(m.pid!);
          res();
        } else if (m.id !== undefined) {
          h.pending.get(m.id)?.(m);
          h.pending.delete(m.id);
        }
      });
    });
    await listening;
  }

  /** Calls of one fake received so far, token requests left out unless `withTokens` (the live array: do not modify). */
  list(fake: FakeName, withTokens = false): readonly Call[] {
    return (withTokens ? this.calls.get(fake) : this.apiCalls.get(fake)) ?? [];
  }

  /** Calls of one fake so far, token requests left out. */
  count(fake: FakeName): number {
    return this.apiCalls.get(fake)?.length ?? 0;
  }

  /** Resolves once `pred` holds (checked on every batch of calls that arrives). */
  until(pred: () => boolean, timeoutMs = 10_000, what = "calls"): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; counts: ${JSON.stringify(Object.fromEntries(FAKES.map((f) => [f, this.count(f)])))}`));
      }, timeoutMs);
      const done = () => (clearTimeout(t), res());
      this.#waiters.push({ pred, resolve: done });
    });
  }

  #ask<T>(h: HostProc, msg: Record<string, unknown>): Promise<T> {
    const id = ++this.#seq;
    return new Promise((res) => {
      h.pending.set(id, (m) => res(m as T));
      h.child.send({ ...msg, id });
    });
  }

  /** Gives the SSF receiver the transmitter's public documents (fetched from the agent). */
  async setDocuments(documents: PublicDocs): Promise<void> {
    await Promise.all(this.#hosts.filter((h) => h.names.includes("ssf")).map((h) => this.#ask(h, { type: "documents", documents })));
  }

  /** The fakes' own records. */
  async record(): Promise<Partial<Record<FakeName, FakeRecord>>> {
    const parts = await Promise.all(this.#hosts.map((h) => this.#ask<{ record: Partial<Record<FakeName, FakeRecord>> }>(h, { type: "record" })));
    return Object.assign({}, ...parts.map((p) => p.record)) as Partial<Record<FakeName, FakeRecord>>;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#hosts.map(async (h) => {
        if (h.child.exitCode !== null || h.child.signalCode !== null) return;
        const exited = once(h.child, "exit");
        h.child.disconnect();
        const t = setTimeout(() => h.child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(t);
      }),
    );
  }
}

/** The agent's public SSF documents, fetched without a token, as a receiver does. */
export async function fetchDocuments(api: string): Promise<PublicDocs> {
  const docs: PublicDocs = {};
  for (const path of ["/.well-known/ssf-configuration", "/.well-known/jwks.json"]) {
    const res = await fetch(api + path);
    if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}`);
    docs[path] = { contentType: res.headers.get("content-type") ?? "", body: await res.text() };
  }
  return docs;
}

/** An EC P-256 private key (PKCS#8 PEM) for the caep provider. */
export function ecKeyPem(): string {
  return String(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }));
}

interface PlannedCall {
  method: string;
  url: string;
  body?: unknown;
}
interface PlanJson {
  policies: { policy: string; actions: { action: string; type: string; operation: string; calls: PlannedCall[] }[] }[];
}

/**
 * `vigil plan --json` for one transition, as the lines each fake should receive (matched by the URL's
 * origin), and the action names per fake. Plans are the agent's own statement of the exact calls.
 */
export function planLines(configFile: string, subject: string, from: string, to: string, bases: Partial<Record<FakeName, string>>): { lines: Map<FakeName, string[]>; actions: Map<FakeName, string[]> } {
  const res = spawnSync(process.execPath, [BIN, "plan", "-c", configFile, "--subject", subject, "--access", to, "--from", from, "--json"], { cwd: ROOT, encoding: "utf8" });
  if (res.status !== 0) throw new Error(`vigil plan failed (${res.status}): ${res.stderr}`);
  const plan = JSON.parse(res.stdout) as PlanJson;
  const byOrigin = new Map(Object.entries(bases).map(([k, v]) => [new URL(v).origin, k as FakeName]));
  const lines = new Map<FakeName, string[]>();
  const actions = new Map<FakeName, string[]>();
  for (const p of plan.policies) {
    for (const a of p.actions) {
      for (const c of a.calls) {
        const u = new URL(c.url);
        const fake = byOrigin.get(u.origin);
        if (!fake) continue; // e.g. a log action has no URL of ours
        const body = typeof c.body === "object" && c.body !== null ? new URLSearchParams(c.body as Record<string, string>).toString() : "";
        const line = lineOf(fake, c.method, u.pathname + u.search, body);
        lines.set(fake, [...(lines.get(fake) ?? []), line]);
        if (!(actions.get(fake) ?? []).includes(a.action)) actions.set(fake, [...(actions.get(fake) ?? []), a.action]);
      }
    }
  }
  return { lines, actions };
}

/** POST with the bench token; returns the status, the moment the response headers arrived, and the JSON body. */
export async function post(url: string, token: string, body: unknown): Promise<{ status: number; at: number; json: unknown }> {
  const res = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const at = nowMs();
  const text = await res.text();
  return { status: res.status, at, json: text ? JSON.parse(text) : undefined };
}

export async function getJson<T>(url: string, token: string): Promise<T> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Sum of the samples of a Prometheus metric family whose labels include every given `k="v"`. */
export function metricWith(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    const v = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}
