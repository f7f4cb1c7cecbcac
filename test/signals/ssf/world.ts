/**
 * An agent (in process, real store, queue and API) receiving from the local SSF transmitter, for
 * the receiver tests. The agent's API port is picked before start: the push URL goes into the
 * stream the agent creates.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../src/config/load.ts";
import { Agent } from "../../../src/engine/agent.ts";
import { silentLogger, createLogger, type Logger } from "../../../src/telemetry/log.ts";
import { SsfTransmitter, type TransmitterOptions } from "../../helpers/fakes/ssf-transmitter.ts";
import { until } from "../../helpers/wait.ts";

export const TOKEN = "ssf-test-token-0123456789abcdef";
export const CLIENT_SECRET = "client-secret-0123456789";

/** Checks the events map onto, declared as signal-fed with `on_unknown: ignore`: no event yet means nothing is wrong. */
export const EVENT_CHECKS = ["device_compliance", "user_risk_score", "session_state", "credential_state", "token_claims", "assurance_level", "account_state"];

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface WorldOptions {
  readonly delivery?: "push" | "poll";
  readonly transmitter?: TransmitterOptions;
  /** Extra keys of the transmitter entry (YAML flow mapping members), e.g. `verification: {timeout: 1s}`. */
  readonly entry?: string;
  /** Replaces the whole `signals.ssf` block. */
  readonly ssf?: (tx: SsfTransmitter, port: number) => string;
  readonly metrics?: boolean;
  /** Inventory subjects (YAML flow mappings, one per line) instead of alice, bob and laptop-7. */
  readonly subjects?: readonly string[];
  /** The agent's logger (default silent, or debug on stdout with SSF_LOG=1). */
  readonly logger?: Logger;
  /** Runs once the transmitter listens, before the agent starts (a stream that already exists, a twist for the first verification). */
  readonly beforeAgent?: (tx: SsfTransmitter) => void | Promise<void>;
}

export interface World {
  readonly agent: Agent;
  readonly tx: SsfTransmitter;
  readonly port: number;
  readonly dir: string;
  readonly file: string;
  /** Writes a new config and reloads the agent with it. */
  reload(ssfBlock: string): Promise<void>;
  stop(): Promise<void>;
}

const SUBJECTS = `
      - {id: alice, kind: user, identity: alice@example.org, attributes: {email: Alice@Example.org, phone_number: "+12065550123", okta_id: 00u1abc}}
      - {id: bob, kind: user, attributes: {email: bob@example.org}}
      - {id: laptop-7, kind: device, attributes: {serial: C02XYZ, owner: alice}}`;

export function config(dir: string, port: number, ssf: string, metrics = false, subjects?: readonly string[]): string {
  return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:${port}", token: "${TOKEN}"}
  metrics: {listen: ${metrics ? '"127.0.0.1:0"' : "false"}}
inventories:
  - type: static
    subjects:${subjects ? subjects.map((x) => `\n      - ${x}`).join("") : SUBJECTS}
checks:
${EVENT_CHECKS.map((c) => `  ${c}: {${["device_compliance", "user_risk_score"].includes(c) ? "" : "type: push, "}on_unknown: ignore}`).join("\n")}
identity_perimeter:
  applies_to: {kind: [user, device, session]}
  require_location_check: false
  require_managed_device: false
  require_mfa: false
  continuous_verification: {interval: 1h, checks: [${EVENT_CHECKS.join(", ")}]}
${ssf}
`;
}

/** The usual transmitter entry: managed stream, OAuth client credentials, internal (loopback). */
export function transmitterEntry(tx: SsfTransmitter, delivery: "push" | "poll", extra = ""): string {
  return `      - name: idp
        issuer: ${tx.issuer}
        internal: true
        auth: {oauth: {token_url: "${tx.base}/token", client_id: vigil, client_secret: "${CLIENT_SECRET}"}}
        delivery: ${delivery}
        poll: {timeout: 5s}
${/^\s*verification:/m.test(extra) ? "" : "        verification: {interval: 1h, timeout: 5s}\n"}${extra}`;
}

export async function startWorld(o: WorldOptions = {}): Promise<World> {
  const tx = new SsfTransmitter(o.transmitter);
  await tx.start();
  await o.beforeAgent?.(tx);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "vigil-ssf-"));
  const file = join(dir, "vigil.yaml");
  const ssf = o.ssf?.(tx, port) ?? `signals:\n  ssf:\n    public_url: http://127.0.0.1:${port}\n    transmitters:\n${transmitterEntry(tx, o.delivery ?? "push", o.entry ?? "")}`;
  writeFileSync(file, config(dir, port, ssf, o.metrics, o.subjects));
  let agent: Agent;
  try {
    agent = new Agent(await loadConfig(file), { logger: o.logger ?? (process.env.SSF_LOG ? createLogger({ level: "debug" }) : silentLogger()) });
    await agent.start();
  } catch (err) {
    await tx.stop();
    throw err;
  }
  let stopped = false;
  return {
    agent,
    tx,
    port,
    dir,
    file,
    async reload(block: string) {
      writeFileSync(file, config(dir, port, block, o.metrics, o.subjects));
      await agent.reload(await loadConfig(file));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await agent.stop();
      await tx.stop();
    },
  };
}

/** Waits until the receiver has its stream and the first verification event came. */
export async function verified(w: World, name = "idp", ms = 10_000): Promise<void> {
  await until(() => w.agent.ssf?.transmitter(name)?.health().verified_at !== undefined, ms);
}

/** The check results pushed for a subject, by check. */
export async function results(w: World, subject: string): Promise<Map<string, { status: string; stream?: string; evidence?: Record<string, unknown>; reasons: { message: string }[] }[]>> {
  const detail = await w.agent.service.getSubject(subject);
  const out = new Map<string, { status: string; stream?: string; evidence?: Record<string, unknown>; reasons: { message: string }[] }[]>();
  for (const r of detail?.results ?? []) {
    const list = out.get(r.check) ?? [];
    list.push(r as never);
    out.set(r.check, list);
  }
  return out;
}
