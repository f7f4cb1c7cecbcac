import { test } from "node:test";
import assert from "node:assert/strict";
import { certificateFromEvidence, normalizeSerial, pemFingerprint, serialFromEvidence } from "../../../src/actions/vault/serial.ts";
import { VigilError } from "../../../src/errors.ts";

test("normalizeSerial gives Vault's colon-separated lower-case form", () => {
  const cases: [string, string][] = [
    ["39:dd:2e:90", "39:dd:2e:90"],
    ["39-DD-2E-90", "39:dd:2e:90"],
    ["39dd2e90", "39:dd:2e:90"],
    ["0x39DD2E90", "39:dd:2e:90"],
    ["  39dd2e90\n", "39:dd:2e:90"],
    ["1:2a", "01:2a"],
    ["abc", "0a:bc"],
    // big.Int.Bytes(): no leading zero bytes, as the certificate check's evidence also has them
    ["00:8f:01", "8f:01"],
    ["008f01", "8f:01"],
    ["7", "07"],
    ["01", "01"],
    ["ff".repeat(20), Array(20).fill("ff").join(":")],
  ];
  for (const [input, want] of cases) assert.equal(normalizeSerial(input), want, input);
});

test("normalizeSerial refuses what is not a serial", () => {
  for (const bad of ["", "xyz", "39:dd:2e9", "39::dd", "39 dd", "00", "0:0", "ff".repeat(21), "-39", "39:"]) {
    assert.throws(() => normalizeSerial(bad), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT", JSON.stringify(bad));
  }
});

test("serialFromEvidence finds the check's serial in the shapes a decision can carry", () => {
  const cases: [Record<string, unknown>, string | undefined][] = [
    [{ checks: { certificate_validity: { status: "fail", evidence: { serial: "0a1b" } } } }, "0a1b"],
    [{ checks: { certificate_validity: { status: "fail", serial: "0a1b" } } }, "0a1b"],
    [{ certificate_validity: { evidence: { serial: "0a1b" } } }, "0a1b"],
    [{ certificate_validity: { serial: "0a1b" } }, "0a1b"],
    [{ checks: { certificate_validity: { status: "fail" } } }, undefined],
    [{ checks: { other_check: { serial: "0a1b" } } }, undefined],
    [{ serial: "0a1b" }, undefined],
    [{ checks: { certificate_validity: { serial: "" } } }, undefined],
    [{ checks: { certificate_validity: { serial: 42 } } }, undefined],
    [{ checks: null }, undefined],
    [{}, undefined],
  ];
  for (const [evidence, want] of cases) assert.equal(serialFromEvidence(evidence, "certificate_validity"), want, JSON.stringify(evidence));
  assert.equal(serialFromEvidence({ checks: { edge_certs: { evidence: { serial: "ff" } } } }, "edge_certs"), "ff");
});

test("certificateFromEvidence keeps the fingerprint reported beside the serial, in Vault-independent form", () => {
  const fp = "ab".repeat(32);
  assert.deepEqual(certificateFromEvidence({ checks: { certificate_validity: { evidence: { serial: "0a1b", fingerprint_sha256: fp.toUpperCase().match(/../g)!.join(":") } } } }, "certificate_validity"), { serial: "0a1b", fingerprint: fp });
  assert.deepEqual(certificateFromEvidence({ certificate_validity: { serial: "0a1b", fingerprint_sha256: "not-a-fingerprint" } }, "certificate_validity"), { serial: "0a1b" });
  assert.equal(certificateFromEvidence({}, "certificate_validity"), undefined);
  assert.equal(pemFingerprint("-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n"), "ae4b3280e56e2faf83f414a6e3dabe9d5fbe18976544c05fed121accb85b53fc");
  assert.equal(pemFingerprint("no certificate here"), undefined);
});
