/** managed_device following the device sources (Intune, Fleet) instead of an attribute. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { managedDeviceCheck } from "../../src/checks/managed_device/index.ts";
import { evaluateManaged } from "../../src/checks/managed_device/sources.ts";
import type { DeviceRecord } from "../../src/sources/device/model.ts";
import type { Subject } from "../../src/policy/model.ts";
import { FakeIntune } from "../helpers/fakes/intune.ts";
import { FakeFleet, FLEET_TOKEN } from "../helpers/fakes/fleet.ts";
import { checkPluginContext, runContext } from "../helpers/check-context.ts";

const subject = (id: string, kind: Subject["kind"], identity?: string): Subject => ({ id, kind, ...(identity ? { identity } : {}), attributes: {}, labels: {} });
const rec = (type: DeviceRecord["type"], id: string, managed: boolean | undefined, serial?: string): DeviceRecord => ({ type, id, keys: [id], users: [], ...(managed === undefined ? {} : { managed }), ...(serial ? { serial } : {}), posture: { kind: "host", controls: [] } });

test("pure: managed by any source is managed; unknown to every source is not; an error leaves it open", () => {
  const dev = subject("d", "device");
  assert.equal(evaluateManaged(dev, "device", [{ name: "intune", records: [rec("intune", "a", true)] }, { name: "fleet", records: [rec("fleet", "b", false)] }], "all").status, "pass");
  assert.deepEqual(evaluateManaged(dev, "device", [{ name: "fleet", records: [rec("fleet", "b", false)] }], "all").reasons.map((r) => r.code), ["DEVICE_UNMANAGED"]);
  assert.equal(evaluateManaged(dev, "device", [{ name: "intune", records: [] }], "all").status, "fail");
  assert.equal(evaluateManaged(dev, "device", [{ name: "intune", error: "503" }], "all").status, "unknown");
  const u = subject("u", "user", "u@example.com");
  const two = [{ name: "intune", records: [rec("intune", "a", true, "S1"), rec("intune", "b", false, "S2")] }];
  assert.equal(evaluateManaged(u, "user", two, "all").status, "fail");
  assert.equal(evaluateManaged(u, "user", two, "any").status, "pass");
  assert.equal(evaluateManaged(subject("w", "workload"), "device", [], "all").status, "pass");
});

test("against Intune and Fleet: a Mac with MDM off in Fleet but managed by Intune is managed; a user's devices", async () => {
  const intune = new FakeIntune();
  const fleet = new FakeFleet();
  await Promise.all([intune.start(), fleet.start()]);
  const ctx = checkPluginContext();
  try {
    const [laptop] = intune.addDevices(1, () => ({ userPrincipalName: "dana@example.com", serialNumber: "C02SHARED0001" }));
    const shared = fleet.addHost({ hardware_serial: "C02SHARED0001", mdm: { enrollment_status: "Off", name: "", server_url: "", encryption_key_available: false } });
    const lonely = fleet.addHost({ mdm: { enrollment_status: "Off", name: "", server_url: "", encryption_key_available: false }, emails: ["erin@example.com"] });
    const config = managedDeviceCheck.configSchema.parse({ sources: [{ type: "intune", ...intune.providerConfig() }, { type: "fleet", url: fleet.base, token: FLEET_TOKEN }] });
    const check = managedDeviceCheck.create(config, ctx);
    const results = new Map(
      (await check.run([subject(`intune:${laptop!.id}`, "device"), subject(`fleet:${shared.id}`, "device"), subject(`fleet:${lonely.id}`, "device"), subject("dana", "user", "dana@example.com"), subject("erin", "user", "erin@example.com"), subject("nobody", "device")], runContext(ctx, { check: "managed_device" }))).map((r) => [r.subject, r]),
    );
    assert.equal(results.get(`intune:${laptop!.id}`)!.status, "pass");
    assert.equal(results.get(`fleet:${shared.id}`)!.status, "fail", "looked up by its Fleet id, only Fleet knows this record");
    assert.equal(results.get(`fleet:${lonely.id}`)!.status, "fail");
    assert.equal(results.get("dana")!.status, "pass");
    assert.equal(results.get("erin")!.status, "fail");
    assert.deepEqual(results.get("nobody")!.reasons.map((r) => r.code), ["DEVICE_UNMANAGED"]);
    await check.stop?.();
  } finally {
    await Promise.all([intune.stop(), fleet.stop()]);
    await ctx.http.close();
  }
});

test("attribute and sources together are refused", () => {
  const r = managedDeviceCheck.configSchema.safeParse({ attribute: "managed", sources: [{ type: "host" }] });
  assert.equal(r.success, false);
});
