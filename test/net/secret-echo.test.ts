/**
 * Secrets are masked before an error quote is cut. An upstream that echoes the request's credentials
 * used to leak the first characters of the token whenever the echo straddled the 512-character cut:
 * the cut left only a prefix, which masking (done afterwards) no longer recognised.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { oktaProviderSchema } from "../../src/actions/okta/config.ts";
import { oktaProvider } from "../../src/actions/okta/provider.ts";
import { entraProvider } from "../../src/actions/entra/client.ts";
import { unexpected } from "../../src/actions/entra/graph.ts";
import { createHttpClient } from "../../src/net/http.ts";
import { MASK, registerSecret, scrubAndCut } from "../../src/util/redact.ts";
import type { ProviderClient } from "../../src/plugin/provider.ts";
import { providerContext } from "../helpers/action-context.ts";
import { UpstreamError } from "../../src/errors.ts";

/** The error quote's cut (ERROR_BODY_CHARS in src/net/http.ts). */
const CUT = 512;
const PAD = "#";
// Shaped like the real ones: a 42-character Okta API token, an Entra (JWT) access token.
const OKTA_TOKEN = "00QCjAl4MlV-WPXM4jS1x2uE9mK7sRfT0bYhNz3Lqa";
const ENTRA_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29mdC5jb20iLCJ0aWQiOiJ0ZXN0In0.c2lnbmF0dXJlLXRoYXQtaXMtbm90LXJlYWwtMDEyMzQ1Njc4OQ";

let server: Server;
let base = "";
before(async () => {
  // Echoes the Authorization header (or X-Echo) after `offset` padding characters: where it lands relative to the cut is the test's choice.
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname.endsWith("/oauth2/v2.0/token")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ access_token: ENTRA_TOKEN, token_type: "Bearer", expires_in: 3600 }));
      return;
    }
    const offset = Number(url.searchParams.get("offset") ?? 0);
    res.writeHead(Number(url.searchParams.get("status") ?? 500), { "content-type": "text/plain" });
    res.end(PAD.repeat(offset) + String(req.headers["x-echo"] ?? req.headers.authorization) + PAD.repeat(200));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Padding so that the token starts `k` characters before the cut, for every k that splits it (and a few around). */
function offsetsAround(prefixBeforeToken: number, token: string): { offset: number; leftBeforeCut: number }[] {
  const out: { offset: number; leftBeforeCut: number }[] = [];
  for (let k = -2; k <= token.length + 2; k++) out.push({ offset: CUT - k - prefixBeforeToken, leftBeforeCut: k });
  return out;
}

function assertNoPieceOf(token: string, message: string, what: string): void {
  // Three characters is the shortest piece that could not be a coincidence with the padding and the request line.
  for (let i = 0; i + 3 <= token.length; i++) assert.ok(!message.includes(token.slice(i, i + 3)), `${what}: ${JSON.stringify(token.slice(i, i + 3))} of the token is in ${JSON.stringify(message.slice(-80))}`);
}

/** The error of a call the echo server refuses with 400 (permanent, so the circuit stays closed), quoting its body. */
async function failure(client: ProviderClient, url: string): Promise<UpstreamError> {
  try {
    await client.send({ method: "GET", url: `${url}&status=400` });
  } catch (err) {
    assert.ok(err instanceof UpstreamError, String(err));
    assert.match(err.message, /→ 400: #/, "the error quotes the body");
    return err;
  }
  assert.fail("expected the call to fail");
}

describe("an upstream echoing the credentials never gets a piece of them quoted", () => {
  it("Okta SSWS token (a registered secret), at every position across the cut", async () => {
    const pctx = providerContext("okta");
    const client = oktaProvider.create(oktaProviderSchema.parse({ org_url: base, auth: { type: "ssws", token: OKTA_TOKEN } }), pctx);
    try {
      for (const { offset, leftBeforeCut } of offsetsAround("SSWS ".length, OKTA_TOKEN)) {
        const err = await failure(client, `${base}/api/v1/users/00u1?offset=${offset}`);
        assertNoPieceOf(OKTA_TOKEN, err.message, `token starting ${leftBeforeCut} characters before the cut`);
        // What follows the scheme is the mask (or as much of it as the cut leaves), never the token.
        if (leftBeforeCut > 0) {
          const shown = err.message.slice(err.message.lastIndexOf("SSWS ") + 5);
          assert.ok(MASK.startsWith(shown) || (shown.startsWith(MASK) && /^#*$/.test(shown.slice(MASK.length))), `k=${leftBeforeCut}: ${err.message.slice(-60)}`);
        }
      }
    } finally {
      await client.close();
      await pctx.http.close();
    }
  });

  it("Entra bearer token (fetched, never registered), at every position across the cut", async () => {
    const pctx = providerContext("entra");
    const config = entraProvider.configSchema.parse({ tenant_id: "contoso.example", client_id: "00000000-0000-4000-8000-000000000001", auth: { client_secret: "entra-client-secret-0123456789" }, login_url: base, graph_url: `${base}/v1.0` });
    const client = entraProvider.create(config, pctx);
    try {
      for (const { offset, leftBeforeCut } of offsetsAround("Bearer ".length, ENTRA_TOKEN)) {
        const err = await failure(client, `${base}/v1.0/users/x?offset=${offset}`);
        assertNoPieceOf(ENTRA_TOKEN, err.message, `token starting ${leftBeforeCut} characters before the cut`);
      }
    } finally {
      await client.close();
      await pctx.http.close();
    }
  });

  it("a response an action accepted, then quoted (Graph's unexpected()), is masked the same way", async () => {
    const http = createHttpClient();
    try {
      for (const { offset } of offsetsAround("Bearer ".length, ENTRA_TOKEN)) {
        const url = `${base}/v1.0/users/x?status=404&offset=${offset}`;
        const res = await http.request({ method: "GET", url, headers: { Authorization: `Bearer ${ENTRA_TOKEN}` }, okStatus: (s) => s === 404 });
        assertNoPieceOf(ENTRA_TOKEN, unexpected({ method: "GET", url }, res).message, `offset ${offset}`);
      }
    } finally {
      await http.close();
    }
  });

  it("the HTTP client masks what a caller names in secrets (an OAuth client assertion in a form body)", async () => {
    const http = createHttpClient();
    const assertion = "assertion-eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ2aWdpbCJ9.c2ln";
    try {
      for (const { offset } of offsetsAround(0, assertion)) {
        const err = await http.request({ method: "GET", url: `${base}/x?offset=${offset}&status=400`, headers: { "X-Echo": assertion }, secrets: [assertion] }).then(
          () => assert.fail("expected a failure"),
          (e: unknown) => e as Error,
        );
        assertNoPieceOf(assertion, err.message, `offset ${offset}`);
      }
    } finally {
      await http.close();
    }
  });
});

describe("scrubAndCut", () => {
  const secret = "scrub-and-cut-secret-0123456789abcdef";
  registerSecret(secret);

  it("masks a whole secret before cutting, so what follows it stays readable", () => {
    const text = `a:${secret}:b`;
    assert.equal(scrubAndCut(text, 100), `a:${MASK}:b`);
    assert.equal(scrubAndCut(text, 13), `a:${MASK}:`);
  });

  it("masks a secret's beginning left at the end of a cut, whatever its length", () => {
    for (let k = 1; k < secret.length; k++) {
      // Only the first k characters are in the text (the rest was never received), and the cut falls right after them.
      const text = "x".repeat(20) + secret.slice(0, k) + "y".repeat(50);
      const max = 20 + k;
      assert.equal(scrubAndCut(text, max), "x".repeat(Math.min(20, max - MASK.length)) + MASK, `k=${k}`);
    }
  });

  it("masks a prefix at the end of a text that was already cut upstream, and only then", () => {
    const text = "x".repeat(20) + secret.slice(0, 9);
    assert.equal(scrubAndCut(text, 1000, { truncated: true }), "x".repeat(20) + MASK);
    assert.equal(scrubAndCut(text, 1000), text);
  });

  it("masks extra values the caller sent without registering them, and stays within max", () => {
    const token = "unregistered-bearer-0123456789";
    const text = "y".repeat(30) + token + "z".repeat(30);
    assert.equal(scrubAndCut(text, 45, { extra: [token] }), "y".repeat(30) + MASK + "z".repeat(5));
    for (let max = MASK.length; max < text.length; max++) assert.ok(scrubAndCut(text, max, { extra: [token] }).length <= max, `max=${max}`);
  });
});
