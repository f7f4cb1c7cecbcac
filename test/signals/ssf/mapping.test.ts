/**
 * The event table of docs/signals.md, row by row: every CAEP and RISC event vigil acts on, every
 * credential change_type and credential_type, overrides, and payloads outside their definition.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EVENT_RULES, EventPayloadError, MAPPED_EVENTS, groupName, mapEvent, type MapOutcome } from "../../../src/signals/ssf/mapping.ts";
import { CAEP_EVENTS, EVENT_URIS, RISC_EVENTS, eventName, type KnownEvent } from "../../../src/signals/ssf/events.ts";

function map(name: KnownEvent, payload: Record<string, unknown>, override?: Parameters<typeof mapEvent>[4]) {
  const out: MapOutcome = mapEvent("okta", name, EVENT_URIS.get(name)!, payload, override);
  assert.equal(out.kind, "mapped", `${name} maps`);
  return (out as Extract<MapOutcome, { kind: "mapped" }>).event;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

test("every mapped event: its check, status, risk, stream group and lifetime", () => {
  const rows: [KnownEvent, Record<string, unknown>, string, string, string, string, number][] = [
    ["session-revoked", { initiating_entity: "policy" }, "session_state", "fail", "high", "session", HOUR],
    ["session-revoked", {}, "session_state", "fail", "high", "session", HOUR],
    ["session-revoked", { initiating_entity: "user" }, "session_state", "pass", "low", "session", HOUR],
    ["sessions-revoked", {}, "session_state", "fail", "high", "session", HOUR],
    ["session-established", { acr: "AAL2", amr: ["otp"] }, "session_state", "pass", "low", "session", HOUR],
    ["session-presented", { ext_id: "12345" }, "session_state", "pass", "low", "session", HOUR],
    ["token-claims-change", { claims: { role: "ro-admin" } }, "token_claims", "warn", "medium", "token-claims", HOUR],
    ["assurance-level-change", { namespace: "NIST-AAL", current_level: "nist-aal1", change_direction: "decrease" }, "assurance_level", "warn", "medium", "assurance", 7 * DAY],
    ["assurance-level-change", { namespace: "NIST-AAL", current_level: "nist-aal2", change_direction: "increase" }, "assurance_level", "pass", "low", "assurance", 7 * DAY],
    ["assurance-level-change", { namespace: "Retinal Scan", current_level: "hi-res-scan" }, "assurance_level", "pass", "low", "assurance", 7 * DAY],
    ["device-compliance-change", { current_status: "not-compliant", previous_status: "compliant" }, "device_compliance", "fail", "high", "device-compliance", 7 * DAY],
    ["device-compliance-change", { current_status: "compliant", previous_status: "not-compliant" }, "device_compliance", "pass", "low", "device-compliance", 7 * DAY],
    ["risk-level-change", { current_level: "LOW", principal: "USER" }, "user_risk_score", "pass", "low", "risk", 7 * DAY],
    ["risk-level-change", { current_level: "medium", principal: "USER" }, "user_risk_score", "warn", "medium", "risk", 7 * DAY],
    ["risk-level-change", { current_level: "HIGH", principal: "DEVICE" }, "user_risk_score", "fail", "high", "risk", 7 * DAY],
    ["credential-compromise", { credential_type: "password" }, "user_risk_score", "fail", "high", "credential-compromise", 7 * DAY],
    ["account-disabled", { reason: "hijacking" }, "account_state", "fail", "high", "account", 7 * DAY],
    ["account-enabled", {}, "account_state", "pass", "low", "account", 7 * DAY],
    ["account-purged", {}, "account_state", "fail", "high", "account", 7 * DAY],
    ["identifier-changed", { "new-value": "new@example.org" }, "account_state", "warn", "medium", "identifier-changed", DAY],
    ["account-credential-change-required", {}, "credential_state", "warn", "medium", "credential-change-required", DAY],
  ];
  for (const [name, payload, check, status, risk, group, ttl] of rows) {
    const e = map(name, payload);
    assert.deepEqual([e.check, e.status, e.risk, e.group, e.ttl_ms], [check, status, risk, group, ttl], `${name} ${JSON.stringify(payload)}`);
  }
});

test("credential-change: every change_type with every credential type, each type in its own stream", () => {
  const types = ["password", "pin", "x509", "fido2-platform", "fido2-roaming", "fido-u2f", "verifiable-credential", "phone-voice", "phone-sms", "app", "passkey-synced"];
  const expected: Record<string, Record<string, string>> = {
    create: { user: "pass", admin: "pass" },
    update: { user: "pass", admin: "pass" },
    revoke: { user: "fail", admin: "fail" },
    delete: { user: "pass", admin: "warn" },
  };
  for (const credential_type of types) {
    for (const [change_type, byInitiator] of Object.entries(expected)) {
      for (const [initiating_entity, status] of Object.entries(byInitiator)) {
        const e = map("credential-change", { credential_type, change_type, initiating_entity });
        assert.equal(e.check, "credential_state");
        assert.equal(e.status, status, `${change_type} ${credential_type} by ${initiating_entity}`);
        assert.equal(e.group, `credential:${credential_type}`);
        assert.equal(e.evidence.credential_type, credential_type);
        assert.equal(e.evidence.change_type, change_type);
      }
    }
  }
  // A new certificate after a revoked one lands in the same stream and so clears it.
  assert.equal(map("credential-change", { credential_type: "x509", change_type: "revoke" }).group, map("credential-change", { credential_type: "x509", change_type: "create" }).group);
  assert.throws(() => map("credential-change", { credential_type: "x509", change_type: "rotate" }), EventPayloadError);
  assert.throws(() => map("credential-change", { change_type: "revoke" }), EventPayloadError);
});

test("the optional CAEP members become evidence and the reason line; localized texts are bounded", () => {
  const e = map("session-revoked", {
    initiating_entity: "policy",
    reason_admin: { en: "Landspeed Policy Violation: C076E82F", de: "Landspeed-Richtlinienverstoß: C076E82F", "es-410": "Violación de la política de landspeed: C076E82F" },
    reason_user: { en: "Access attempt from multiple regions.", "bad tag!": "dropped" },
    event_timestamp: 1615304991,
  });
  assert.equal(e.reason, "okta: session-revoked by policy: Landspeed Policy Violation: C076E82F");
  assert.deepEqual(e.evidence, {
    event_timestamp: "2021-03-09T15:49:51.000Z",
    initiating_entity: "policy",
    reason_admin: { en: "Landspeed Policy Violation: C076E82F", de: "Landspeed-Richtlinienverstoß: C076E82F", "es-410": "Violación de la política de landspeed: C076E82F" },
    reason_user: { en: "Access attempt from multiple regions." },
  });
  // A plain string, as the SSF draft's examples send it, is taken as English.
  assert.deepEqual(map("session-revoked", { reason_admin: "Policy Violation" }).evidence.reason_admin, { en: "Policy Violation" });
  // An initiator outside CAEP's four is not believed.
  assert.equal(map("session-revoked", { initiating_entity: "user ", reason_admin: "x" }).status, "fail");
  const big = map("token-claims-change", { claims: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`c${i}`, "v".repeat(1000)])) });
  assert.equal(Object.keys(big.evidence.claims as object).length, 16);
  assert.ok(Object.values(big.evidence.claims as Record<string, string>).every((v) => v.length <= 256));
});

test("overrides: another check, status, risk or lifetime; events vigil does not map are ignored unless an override maps them", () => {
  const e = map("risk-level-change", { current_level: "HIGH" }, { check: "okta_risk", ttl_ms: 60_000 });
  assert.deepEqual([e.check, e.status, e.risk, e.ttl_ms], ["okta_risk", "fail", "high", 60_000]);
  assert.deepEqual([map("session-revoked", {}, { status: "warn" }).status, map("session-revoked", {}, { status: "warn" }).risk], ["warn", "medium"]);
  assert.equal(map("session-revoked", {}, { risk: "medium" }).risk, "medium");
  assert.deepEqual(mapEvent("okta", "recovery-activated", EVENT_URIS.get("recovery-activated")!, {}, undefined), { kind: "ignored", reason: "event type vigil does not act on" });
  assert.deepEqual(mapEvent("okta", undefined, "https://vendor.example/event/risk", {}, undefined), { kind: "ignored", reason: "unknown event type" });
  const custom = mapEvent("okta", undefined, "https://vendor.example/event/risk", { reason_admin: "vendor says" }, { check: "vendor_risk", status: "warn" });
  assert.equal(custom.kind, "mapped");
  assert.deepEqual(custom.kind === "mapped" && [custom.event.check, custom.event.status, custom.event.ttl_ms], ["vendor_risk", "warn", HOUR]);
});

test("payloads outside their definition are refused; stream groups from transmitter text stay bounded", () => {
  assert.throws(() => map("device-compliance-change", { current_status: "compliant" }), /previous_status/);
  assert.throws(() => map("risk-level-change", { current_level: "EXTREME" }), /current_level/);
  assert.throws(() => map("assurance-level-change", { namespace: "NIST-AAL", current_level: "x", change_direction: "sideways" }), /change_direction/);
  assert.throws(() => map("token-claims-change", { claims: ["role"] }), /claims/);
  assert.throws(() => map("credential-compromise", {}), /credential_type/);
  assert.equal(groupName("credential:" + "Ö/../x".repeat(40)).length <= 64, true);
  assert.match(groupName("credential:Ö/../x"), /^[a-z0-9_.:-]+$/);
});

test("the catalogue: CAEP 1.0 and RISC 1.0 URIs, and docs/signals.md lists every mapped event", () => {
  assert.equal(EVENT_URIS.get("session-revoked"), "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
  assert.equal(EVENT_URIS.get("account-disabled"), "https://schemas.openid.net/secevent/risc/event-type/account-disabled");
  assert.equal(eventName("https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"), "sessions-revoked");
  assert.equal(CAEP_EVENTS.length, 8);
  assert.ok(RISC_EVENTS.length >= 13);
  const doc = readFileSync(new URL("../../../docs/signals.md", import.meta.url), "utf8");
  for (const name of MAPPED_EVENTS) {
    const rule = EVENT_RULES[name]!;
    assert.ok(doc.includes(`\`${name}\``), `docs/signals.md lists ${name}`);
    assert.ok(doc.includes(`\`${rule.check}\``), `docs/signals.md names check ${rule.check}`);
  }
});
