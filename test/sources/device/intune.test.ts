/**
 * The Intune source against a local Graph that enforces the documented contract: paging, $select,
 * token expiry mid-scan, throttling with and without Retry-After, 5xx, permissions, and answers that
 * are malformed or too large.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { FakeIntune } from "../../helpers/fakes/intune.ts";
import { checkPluginContext, type TestContext } from "../../helpers/check-context.ts";
import { IntuneSource, INTUNE_SELECT } from "../../../src/sources/device/intune.ts";
import { z } from "zod";
import { intuneConnectionShape } from "../../../src/sources/device/schema.ts";
import { UpstreamError } from "../../../src/errors.ts";

const schema = z.object(intuneConnectionShape);

let fake: FakeIntune;
let ctx: TestContext;

before(async () => {
  fake = new FakeIntune();
  await fake.start();
  ctx = checkPluginContext();
});
after(async () => {
  await fake.stop();
  await ctx.http.close();
});

function source(extra: Record<string, unknown> = {}): IntuneSource {
  return new IntuneSource(schema.parse({ type: "intune", ...fake.providerConfig(), ...extra }), ctx);
}

const signal = () => AbortSignal.timeout(20_000);

describe("Intune managedDevices scan", () => {
  test("every page through @odata.nextLink, with $select and $top, one request per page", async () => {
    fake.devices.length = 0;
    fake.addDevices(2_500);
    fake.clear();
    const src = source({ page_size: 1000 });
    const scan = await src.devices.get(0, signal());
    assert.equal(scan.value.records.length, 2_500);
    const lists = fake.listRequests();
    assert.equal(lists.length, 3);
    assert.equal(scan.value.calls, 3);
    assert.deepEqual(lists[0]!.query.get("$select")!.split(","), [...INTUNE_SELECT]);
    assert.equal(lists[0]!.query.get("$top"), "1000");
    assert.ok(lists[1]!.query.get("$skiptoken"), "later pages follow the next link");
    const r = scan.value.records[7]!;
    assert.equal(r.type, "intune");
    assert.equal(r.id, fake.devices[7]!.id);
    assert.ok(r.keys.includes(fake.devices[7]!.azureADDeviceId.toLowerCase()));
    assert.deepEqual(r.users, ["user7@contoso.example"]);
    assert.equal(r.posture.kind === "intune" && r.posture.compliance, "compliant");
    await src.close();
  });

  test("a token Graph stops accepting mid-scan is replaced once and the scan goes on", async () => {
    fake.devices.length = 0;
    fake.addDevices(30);
    const src = source({ page_size: 10 });
    let pages = 0;
    const before = fake.tokenRequests;
    // Revoke every token once the first page has been answered.
    const pagesIter = src.graph.pages("/deviceManagement/managedDevices", { select: ["id", "complianceState"], top: 10 }, { signal: signal(), deadline: Date.now() + 20_000, permission: "x", maxItems: 100 });
    for await (const page of pagesIter) {
      pages++;
      assert.equal(page.length, 10);
      if (pages === 1) fake.revokeTokens();
    }
    assert.equal(pages, 3);
    assert.equal(fake.tokenRequests - before, 2, "one token at the start, one after the 401");
    await src.close();
  });

  test("429 with Retry-After waits that long; 429 without it backs off; 503 is retried; all within the deadline", async () => {
    fake.devices.length = 0;
    fake.addDevices(5);
    fake.throttle({ path: /managedDevices$/ }, 1, 1);
    fake.throttleWithoutHint(1);
    fake.unavailable({ path: /managedDevices$/ }, 1, 0);
    const src = source();
    const started = Date.now();
    const scan = await src.devices.get(0, signal());
    assert.equal(scan.value.records.length, 5);
    assert.ok(Date.now() - started >= 1_000, "the Retry-After of 1 s was honoured");
    assert.equal(fake.pendingFaults, 0);
    await src.close();
  });

  test("throttling longer than the scan allows ends the scan with a transient error, not a long wait", async () => {
    fake.throttle({ path: /managedDevices$/ }, 3_600, 1);
    const src = source({ scan_timeout: "5s" });
    const started = Date.now();
    await assert.rejects(src.devices.get(0, signal()), (err: unknown) => err instanceof UpstreamError && err.transient && err.status === 429);
    assert.ok(Date.now() - started < 3_000);
    await src.close();
  });

  test("a missing permission is a permanent error naming it; no retry storm", async () => {
    const narrow = new FakeIntune({ permissions: ["User.Read.All"] });
    await narrow.start();
    try {
      const src = new IntuneSource(schema.parse({ type: "intune", ...narrow.providerConfig() }), ctx);
      await assert.rejects(src.devices.get(0, signal()), (err: unknown) => {
        assert.ok(err instanceof UpstreamError && !err.transient);
        assert.match((err as Error).message, /403.*DeviceManagementManagedDevices\.Read\.All/);
        return true;
      });
      assert.equal(narrow.graphRequests().length, 1, "a 403 is not retried");
      // The failure is held: asking again does not reach Graph.
      await assert.rejects(src.devices.get(0, signal()));
      assert.equal(narrow.graphRequests().length, 1);
      await src.close();
    } finally {
      await narrow.stop();
    }
  });

  test("a wrong client secret is a permanent error from the token endpoint, and the secret is not in it", async () => {
    const src = source({ auth: { client_secret: "wrong-secret-value-0123456789" } });
    await assert.rejects(src.devices.get(0, signal()), (err: unknown) => {
      assert.ok(err instanceof UpstreamError && !err.transient);
      assert.match((err as Error).message, /AADSTS7000215/);
      assert.doesNotMatch((err as Error).message, /wrong-secret-value/);
      return true;
    });
    await src.close();
  });

  test("malformed answers are refused with the path of the bad value", async () => {
    const cases: { body: unknown; match: RegExp }[] = [
      { body: '{"value": [{"id": "a", "complianceState": "compliant"}', match: /not JSON/ },
      { body: { value: "nope" }, match: /\$\.value: expected a list/ },
      { body: { value: [{ id: 42, complianceState: "compliant" }] }, match: /\$\.value\[0\]\.id: expected a non-empty string/ },
      { body: { value: [{ id: "a", complianceState: "compliant", isEncrypted: "yes" }] }, match: /isEncrypted: expected true or false/ },
      { body: { value: [{ id: "a" }] }, match: /complianceState: expected a non-empty string/ },
      { body: { value: [{ id: "a", complianceState: "compliant", lastSyncDateTime: "yesterday" }] }, match: /lastSyncDateTime: expected a date/ },
      { body: { value: [], "@odata.nextLink": "https://evil.example/steal" }, match: /points outside/ },
    ];
    for (const c of cases) {
      fake.fail({ path: /managedDevices$/ }, { status: 200, body: c.body });
      const src = source();
      await assert.rejects(src.devices.get(0, signal()), (err: unknown) => {
        assert.ok(err instanceof UpstreamError && !err.transient, String(err));
        assert.match((err as Error).message, c.match);
        return true;
      });
      await src.close();
    }
  });

  test("a body over max_response_bytes is refused without being read whole", async () => {
    fake.fail({ path: /managedDevices$/ }, { status: 200, body: JSON.stringify({ value: [], pad: "x".repeat(2 * 1024 * 1024) }) });
    const src = source({ max_response_bytes: 1024 * 1024 });
    await assert.rejects(src.devices.get(0, signal()), /larger than 1048576 bytes/);
    await src.close();
  });

  test("more devices than max_devices are refused rather than held", async () => {
    fake.devices.length = 0;
    fake.addDevices(50);
    const src = source({ page_size: 20, max_devices: 30 });
    await assert.rejects(src.devices.get(0, signal()), /more than 30 items/);
    await src.close();
  });

  test("the tenant's no-policy setting is read with $select=settings", async () => {
    fake.settings.secureByDefault = false;
    const src = source();
    const s = await src.settings.get(0, signal());
    assert.deepEqual(s.value, { secureByDefault: false });
    const req = fake.handled.filter((r) => r.path === "/v1.0/deviceManagement").at(-1)!;
    assert.equal(req.query.get("$select"), "settings");
    fake.settings.secureByDefault = true;
    await src.close();
  });

  test("device group members come from transitiveMembers/microsoft.graph.device, paged", async () => {
    const group = "0a1b2c3d-0000-4000-8000-000000000001";
    fake.deviceGroups.set(group, Array.from({ length: 1500 }, (_, i) => `${i.toString(16).padStart(8, "0")}-dddd-4eee-8fff-${i.toString(16).padStart(12, "0")}`));
    const src = source();
    const members = await src.groupMembers([group]).get(0, signal());
    assert.equal(members.value.size, 1500);
    await src.close();
  });
});
