import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { isOktaId, listUserGroups, nextLink, userGroupIds, userId } from "../../../src/actions/okta/api.ts";
import { OktaClient } from "../../../src/actions/okta/client.ts";
import { oktaProviderSchema } from "../../../src/actions/okta/config.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { providerContext, request } from "../../helpers/action-context.ts";
import { FakeApi } from "../../helpers/fake-api.ts";

describe("nextLink", () => {
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ["", undefined],
    ['<https://o.okta.com/api/v1/users/u/groups>; rel="self"', undefined],
    ['<https://o.okta.com/a?after=1>; rel="next"', "https://o.okta.com/a?after=1"],
    ['<https://o.okta.com/a>; rel="self", <https://o.okta.com/a?after=2&limit=1>; rel="next"', "https://o.okta.com/a?after=2&limit=1"],
    ["<https://o.okta.com/a?after=3>; rel=next", "https://o.okta.com/a?after=3"],
    ['<https://o.okta.com/a?after=4>; type="x"; rel="prev next"', "https://o.okta.com/a?after=4"],
    ['<https://o.okta.com/a?after=5>; rel="nextpage"', undefined],
    ["garbage", undefined],
  ];
  for (const [header, want] of cases) {
    test(`${JSON.stringify(header)} → ${want ?? "none"}`, () => assert.equal(nextLink(header), want));
  }
});

describe("Okta ids", () => {
  const ok = ["00u1a2b3c4d5e6f7g8h9", "00g1readOnly000000x7", "alice@example.com", "a.b+c-d_e"];
  const bad = ["", ".", "..", "../x", "a/b", "a b", "a\nb", "-x", "x".repeat(256), "a%2Fb", "a?b", "a#b"];
  for (const id of ok) test(`accepts ${JSON.stringify(id)}`, () => assert.equal(isOktaId(id), true));
  for (const id of bad) test(`refuses ${JSON.stringify(id.slice(0, 20))}`, () => assert.equal(isOktaId(id), false));

  test("userId renders the template and raises an input error for a bad value", () => {
    assert.equal(userId("{{attributes.okta_id}}", request({ subject: { attributes: { okta_id: "00u1" } } }), "t"), "00u1");
    assert.throws(() => userId("{{attributes.okta_id}}", request({ subject: { attributes: { okta_id: "../admin" } } }), "t"), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT");
    assert.throws(() => userId("{{attributes.okta_id}}", request(), "t"), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT");
  });
});

describe("userGroupIds pagination", () => {
  const api = new FakeApi();
  let client: OktaClient;
  const ctx = providerContext("okta");
  let nextTarget = "";
  before(async () => {
    await api.start();
    api.route("GET", /^\/api\/v1\/users\/u1\/groups$/, (req) =>
      req.query.get("after") === null
        ? { status: 200, headers: { Link: `<${nextTarget}>; rel="next"` }, body: [{ id: "00g1" }] }
        : { status: 200, body: [{ id: "00g2" }, { notAGroup: true }] },
    );
    client = new OktaClient(oktaProviderSchema.parse({ org_url: api.base, auth: { type: "ssws", token: "pagination-test-token" } }), ctx);
  });
  after(async () => {
    await ctx.http.close();
    await api.stop();
  });

  test("follows a next link inside the org", async () => {
    nextTarget = `${api.base}/api/v1/users/u1/groups?after=00g1`;
    const ids = await userGroupIds(client, listUserGroups(client, "u1", "read"));
    assert.deepEqual([...ids], ["00g1", "00g2"]);
  });

  test("refuses a next link to another origin, without sending the token there", async () => {
    api.clear();
    nextTarget = "http://127.0.0.2:9/api/v1/users/u1/groups?after=00g1";
    await assert.rejects(userGroupIds(client, listUserGroups(client, "u1", "read")), (e: unknown) => e instanceof UpstreamError && !e.transient && /leaves the org/.test(e.message));
    assert.equal(api.requests.length, 1);
  });
});
