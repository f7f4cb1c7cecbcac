/** A transmitter (the caep provider) and SSF receivers on loopback, for the caep tests. */
import { after } from "node:test";
import { generateKeyPairSync } from "node:crypto";
import { caepProvider } from "../../../src/actions/caep/provider.ts";
import { transmitAction } from "../../../src/actions/caep/transmit.ts";
import type { CaepClient } from "../../../src/actions/caep/client.ts";
import type { Action } from "../../../src/plugin/action.ts";
import { actionContext, providerContext, request } from "../../helpers/action-context.ts";
import { SsfReceiver } from "../../helpers/fakes/ssf-receiver.ts";

export const ISSUER = "https://vigil.example.com";

const pem = (k: { privateKey: { export(o: { type: "pkcs8"; format: "pem" }): string | Buffer } }) => String(k.privateKey.export({ type: "pkcs8", format: "pem" }));

/** One key of each kind, made once per test file. */
export const KEYS = {
  ec: pem(generateKeyPairSync("ec", { namedCurve: "P-256" })),
  ec384: pem(generateKeyPairSync("ec", { namedCurve: "P-384" })),
  rsa: pem(generateKeyPairSync("rsa", { modulusLength: 2048 })),
  ed25519: pem(generateKeyPairSync("ed25519")),
};

export interface ReceiverSpec {
  readonly name: string;
  /** Authorization the transmitter sends. */
  readonly authorization?: string;
  /** Authorization the receiver requires. Default: what the transmitter sends. */
  readonly requires?: string;
  /** Audience the transmitter puts in `aud` (default: the endpoint's origin). */
  readonly audience?: string | string[];
  /** Audience the receiver expects (default: its origin). */
  readonly expects?: string;
  readonly subject?: Record<string, unknown>;
}

export interface World {
  client: CaepClient;
  readonly receivers: Record<string, SsfReceiver>;
  readonly config: Record<string, unknown>;
  action(config: Record<string, unknown>): Action;
  /** A new client for the same config: what a restart or a config reload makes. */
  restart(overrides?: Record<string, unknown>): CaepClient;
}

export async function world(opts: { receivers?: ReceiverSpec[]; keys?: Record<string, unknown>[]; signing_kid?: string; circuit?: Record<string, unknown> } = {}): Promise<World> {
  const specs = opts.receivers ?? [{ name: "idp" }];
  const holder: { client?: CaepClient } = {};
  const receivers: Record<string, SsfReceiver> = {};
  for (const s of specs) {
    const requires = s.requires ?? s.authorization;
    const r = new SsfReceiver({
      documents: () => caepProvider.publicDocuments!(holder.client!),
      ...(requires === undefined ? {} : { authorization: requires }),
      ...(s.expects === undefined ? {} : { audience: s.expects }),
    });
    await r.start();
    after(() => r.stop());
    receivers[s.name] = r;
  }
  const config: Record<string, unknown> = {
    issuer: ISSUER,
    keys: opts.keys ?? [{ kid: "k1", private_key: KEYS.ec }],
    ...(opts.signing_kid ? { signing_kid: opts.signing_kid } : {}),
    receivers: specs.map((s) => ({
      name: s.name,
      endpoint: receivers[s.name]!.endpoint,
      ...(s.authorization === undefined ? {} : { authorization: s.authorization }),
      ...(s.audience === undefined ? {} : { audience: s.audience }),
      ...(s.subject === undefined ? {} : { subject: s.subject }),
    })),
    ...(opts.circuit ? { circuit: opts.circuit } : {}),
    timeout: "5s",
  };
  const make = (overrides: Record<string, unknown> = {}) => {
    const client = caepProvider.create(caepProvider.configSchema.parse({ ...config, ...overrides }), providerContext("caep"));
    holder.client = client;
    after(() => client.close());
    return client;
  };
  const w: World = {
    client: make(),
    receivers,
    config,
    action: (c) => transmitAction.create(transmitAction.configSchema.parse(c), actionContext(w.client)),
    restart: (overrides) => (w.client = make(overrides)),
  };
  return w;
}

/** A decision about alice, who has an email address. */
export function aliceRequest(opts: Parameters<typeof request>[0] = {}) {
  return request({ ...opts, subject: { attributes: { email: "alice@example.com", phone: "+4915112345678" }, ...opts.subject } });
}

export const DECIDED_AT_S = Date.parse("2026-11-24T10:00:00Z") / 1000;
