/** What the okta action tests share: a started fake org, a provider client on it, and plan-vs-sent helpers. */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import type { ActionContext } from "../../../src/plugin/action.ts";
import type { PlannedCall } from "../../../src/net/api-call.ts";
import type { OktaClient } from "../../../src/actions/okta/client.ts";
import { oktaProviderSchema } from "../../../src/actions/okta/config.ts";
import { oktaProvider } from "../../../src/actions/okta/provider.ts";
import { systemClock, type Clock } from "../../../src/util/clock.ts";
import { actionContext, providerContext } from "../../helpers/action-context.ts";
import { OktaFake, type OktaFakeOptions } from "../../helpers/fakes/okta.ts";

export const API_TOKEN = "00Okta-test-api-token-7Qz9Lm2Xc4Vb8Nw1";
export const CLIENT_ID = "0oa1vigilservice0x7";

export interface Org {
  readonly fake: OktaFake;
  readonly client: OktaClient;
  readonly ctx: ActionContext;
  close(): Promise<void>;
}

/** A fake org with an SSWS token (default) or an OAuth service app, and a provider client pointed at it. */
export async function startOrg(options: {
  auth?: "ssws" | "oauth";
  provider?: Record<string, unknown>;
  fake?: OktaFakeOptions;
  clock?: Clock;
  /** The key the client signs with; default a fresh RSA key registered with the fake. */
  keys?: { privateKey: string; publicKey: string };
  /** Scopes the service app is granted at the fake. */
  granted?: readonly string[];
  /** Scopes the client requests; default the provider's. */
  scopes?: readonly string[];
} = {}): Promise<Org> {
  const clock = options.clock ?? systemClock;
  const keys = options.auth === "oauth" ? (options.keys ?? rsaKeys()) : undefined;
  const fake = new OktaFake({
    apiToken: API_TOKEN,
    clock,
    ...(keys ? { clients: [{ client_id: CLIENT_ID, publicKey: keys.publicKey, scopes: options.granted ?? ["okta.users.manage", "okta.groups.manage", "okta.universalLogout.manage"] }] } : {}),
    ...options.fake,
  });
  await fake.start();
  const auth = keys ? { type: "oauth", client_id: CLIENT_ID, private_key: keys.privateKey, ...(options.scopes ? { scopes: options.scopes } : {}) } : { type: "ssws", token: API_TOKEN };
  const config = oktaProviderSchema.parse({ org_url: fake.base, auth, ...options.provider });
  const pctx = providerContext("okta", clock);
  const client = oktaProvider.create(config, pctx);
  const ctx = actionContext(client, clock);
  return {
    fake,
    client,
    ctx,
    close: async () => {
      await client.close();
      await pctx.http.close();
      await ctx.http.close();
      await fake.stop();
    },
  };
}

let cachedRsa: { privateKey: string; publicKey: string } | undefined;

/** An RSA key pair as PEM, made once per test file (key generation is the slow part). */
export function rsaKeys(): { privateKey: string; publicKey: string } {
  return (cachedRsa ??= generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }));
}

export function ecKeys(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync("ec", { namedCurve: "P-256", privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
}

/** Asserts the plan is exactly what the fake received: method, path and query, body. */
export function assertPlanMatchesSent(plan: readonly PlannedCall[], fake: OktaFake): void {
  const sent = fake.apiRequests();
  assert.deepEqual(
    plan.map((p) => `${p.method} ${p.url.slice(fake.base.length)}`),
    sent.map((r) => `${r.method} ${r.url}`),
  );
  plan.forEach((p, i) => {
    const body = sent[i]!.body;
    assert.deepEqual(p.body, body === "" ? undefined : JSON.parse(body), `body of call ${i + 1}`);
  });
}

/** Asserts no secret of the org appears in the text. */
export function assertNoSecrets(text: string, ...secrets: string[]): void {
  for (const s of [API_TOKEN, ...secrets]) assert.ok(!text.includes(s), "a secret appears in the output");
}

/** Asserts a retry hint (ms) is what Okta's `X-Rate-Limit-Reset` (epoch seconds) said, give or take the test's own run time. */
export function assertResetHint(hint: number | undefined, reset: number): void {
  assert.ok(hint !== undefined, "no retry hint");
  const expected = reset * 1000 - Date.now();
  assert.ok(hint >= expected - 100 && hint <= expected + 2_000, `retry hint ${hint} ms should come from X-Rate-Limit-Reset (about ${expected} ms)`);
}
