import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Telemetry } from "../../../src/telemetry/metrics.ts";
import { silentLogger } from "../../../src/telemetry/log.ts";
import { CertificateMetrics } from "../../../src/checks/certificate_validity/metrics.ts";

const hasPromtool = spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0;

/** Observes three subjects (one stale, pruned) and returns the exposition. */
async function scrape(inAWeek: number): Promise<string> {
  const telemetry = await Telemetry.start({ listen: "127.0.0.1:0" }, silentLogger());
  try {
    const m = new CertificateMetrics(telemetry.meter);
    const now = Date.now();
    m.observe("gone", "0bad", inAWeek, now - 3_600_000, "unknown");
    m.observe("frontend", "1001", inAWeek, now, "good");
    // Another policy's run checks billing: both stay.
    m.observe("billing", "1003", inAWeek, now, "revoked");
    m.prune(now - 1_800_000);
    m.error("CERT_REVOKED");
    return await (await fetch(`http://127.0.0.1:${telemetry.address!.port}/metrics`)).text();
  } finally {
    await telemetry.stop();
  }
}

test("per-certificate gauges: values, labels, and only current subjects", async () => {
  const inAWeek = Date.now() + 7 * 86_400_000;
  const body = await scrape(inAWeek);
  assert.match(body, /vigil_certificate_revoked\{[^}]*subject="billing"[^}]*\} 1/);
  assert.match(body, /vigil_certificate_revoked\{[^}]*subject="frontend"[^}]*\} 0/);
  assert.match(body, new RegExp(`vigil_certificate_not_after_timestamp_seconds\\{[^}]*serial="1001"[^}]*\\} ${Math.floor(inAWeek / 1000)}`));
  const expiry = Number(/vigil_certificate_expiry_seconds\{[^}]*subject="frontend"[^}]*\} (\S+)/.exec(body)![1]);
  assert.ok(expiry > 7 * 86400 - 60 && expiry <= 7 * 86400, String(expiry));
  assert.match(body, /vigil_certificate_check_errors_total\{[^}]*reason="CERT_REVOKED"[^}]*\} 1/);
  assert.ok(!body.includes('subject="gone"'), "a subject no longer checked has no series");
});

test("the certificate metrics pass promtool check metrics", { skip: hasPromtool ? false : "promtool is not on PATH (Debian package prometheus; scripts/install-test-deps installs it)" }, async () => {
  const r = spawnSync("promtool", ["check", "metrics"], { input: await scrape(Date.now() + 7 * 86_400_000), encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal((r.stdout + r.stderr).trim(), "");
});
