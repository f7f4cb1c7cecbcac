import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { compact, duration, fields, isoTime, isoTimes, outputFormat, relative, serialize, serializeItem, table } from "../../src/cli/format.ts";
import { renderStatus } from "../../src/cli/status.ts";
import { renderSubjects } from "../../src/cli/subjects.ts";
import { renderSubject } from "../../src/cli/subject.ts";
import { renderFailed, renderGuards } from "../../src/cli/enforcement.ts";
import { auditDetail, auditLine, auditRows } from "../../src/cli/audit-tail.ts";
import type { AgentStatus, FailedEnforcement, SubjectSummary } from "../../src/http/agent-api.ts";
import type { SubjectDetailView } from "../../src/http/views.ts";
import type { AuditEntry } from "../../src/store/contract.ts";

const NOW = Date.parse("2026-11-24T12:00:00.000Z");

describe("table and field helpers", () => {
  it("pads every column but the last, capitalises headers, keeps cells on one line", () => {
    assert.equal(
      table(["id", "access", "reason"], [
        ["frontend", "deny", "beaconing\nto a C2 domain"],
        ["a", "full_access", ""],
      ]),
      ["ID        ACCESS       REASON", "frontend  deny         beaconing to a C2 domain", "a         full_access"].join("\n"),
    );
  });

  it("counts code points, so arrows and accents do not shift columns", () => {
    assert.equal(table(["a", "b"], [["→x", "1"], ["é", "2"]]), ["A   B", "→x  1", "é   2"].join("\n"));
  });

  it("aligns key: value lines and leaves out undefined values", () => {
    assert.equal(fields([["Agent", "ready"], ["Identity", undefined], ["Unreconciled", "none"]]), ["Agent:         ready", "Unreconciled:  none"].join("\n"));
  });

  it("-o accepts table, json and yaml only", () => {
    assert.equal(outputFormat(undefined), "table");
    assert.equal(outputFormat("yaml"), "yaml");
    assert.throws(() => outputFormat("xml"), { code: "VIGIL_ERR_USAGE", message: '-o must be one of table, json, yaml, not "xml"' });
  });
});

describe("times and durations", () => {
  it("ISO 8601 UTC to the second, from epoch ms or ISO text; - for none", () => {
    assert.equal(isoTime(Date.parse("2026-11-24T10:02:11.204Z")), "2026-11-24T10:02:11Z");
    assert.equal(isoTime("2026-11-24T10:02:11.204+02:00"), "2026-11-24T08:02:11Z");
    assert.equal(isoTime(null), "-");
    assert.equal(isoTime(undefined), "-");
    assert.equal(isoTime("soon"), "soon", "unreadable input is shown as it is, not as a wrong time");
  });

  it("durations in at most two units", () => {
    assert.equal(duration(10 * 3_600_000 + 15 * 60_000 + 13_637), "10h15m");
    assert.equal(duration(600_000), "10m");
  });

  it("relative times: ago, ahead, just now", () => {
    assert.equal(relative(NOW - 3 * 60_000 - 5_000, NOW), "3m5s ago");
    assert.equal(relative(new Date(NOW + 2 * 3_600_000 + 600_000).toISOString(), NOW), "in 2h10m");
    assert.equal(relative(NOW - 200, NOW), "just now");
    assert.equal(relative(null, NOW), "-");
  });

  it("machine output writes every *_at number as ISO 8601, at any depth", () => {
    assert.deepEqual(isoTimes({ decided_at: NOW, reasons: [{ code: "X" }], evidence: { checks: { a: { observed_at: NOW, score: 3 } } }, first_failed_at: "2026-01-01T00:00:00.000Z", at: 5 }), {
      decided_at: "2026-11-24T12:00:00.000Z",
      reasons: [{ code: "X" }],
      evidence: { checks: { a: { observed_at: "2026-11-24T12:00:00.000Z", score: 3 } } },
      first_failed_at: "2026-01-01T00:00:00.000Z",
      at: 5,
    });
  });

  it("json is indented, a stream item is one line; yaml items are documents", () => {
    assert.equal(serialize("json", { decided_at: NOW }), '{\n  "decided_at": "2026-11-24T12:00:00.000Z"\n}');
    assert.equal(serializeItem("json", { a: [1] }), '{"a":[1]}');
    assert.equal(serialize("yaml", { a: 1, b: ["x"] }), "a: 1\nb:\n  - x");
    assert.equal(serializeItem("yaml", { a: 1 }), "---\na: 1");
  });

  it("compact cuts long values with an ellipsis", () => {
    assert.equal(compact({ a: "x".repeat(20) }, 10), '{"a":"xxx…');
    assert.equal(compact("short"), "short");
  });
});

const STATUS: AgentStatus = {
  ready: true,
  reasons: [],
  version: "1.2.3",
  mode: "embedded",
  dry_run: false,
  policies: [
    { name: "frontend-to-api", subjects: { total: 1, full_access: 0, read_only: 0, deny: 1, pending: 0 }, paused: false },
    { name: "identity-perimeter", subjects: { total: 30, full_access: 2, read_only: 0, deny: 27, pending: 1 }, paused: true },
  ],
  subjects: { total: 32, full_access: 3, read_only: 0, deny: 28, pending: 1 },
  paused: ["identity-perimeter"],
  unreconciled: { total: 2, oldest_failed_at: new Date(NOW - (10 * 3_600_000 + 15 * 60_000 + 13_637)).toISOString() },
  queue: { waiting: 1, delayed: 12, active: 0, failed: 3 },
  idle: false,
};

describe("golden views", () => {
  it("status", () => {
    assert.equal(
      renderStatus(STATUS, "http://127.0.0.1:7070", NOW),
      `Agent:         http://127.0.0.1:7070 — ready
Version:       1.2.3
Mode:          embedded
Subjects:      32 (3 full_access, 0 read_only, 28 deny, 1 pending)
Paused:        identity-perimeter (vigil enforcement resume)
Unreconciled:  2, oldest failed 2026-11-24T01:44:46Z (10h15m ago) (vigil enforcement failed)
Queue:         1 waiting, 0 active, 12 delayed, 3 failed — busy

POLICY              SUBJECTS  FULL_ACCESS  READ_ONLY  DENY  PENDING  ENFORCEMENT
frontend-to-api     1         0            0          1     0        active
identity-perimeter  30        2            0          27    1        paused`,
    );
    const notReady = renderStatus({ ...STATUS, ready: false, reasons: ["inventory 0:file has not loaded yet"], dry_run: true, paused: [], unreconciled: { total: 0, oldest_failed_at: null } }, "http://[::1]:7070", NOW);
    assert.match(notReady, /^Agent: +http:\/\/\[::1\]:7070 — not ready: inventory 0:file has not loaded yet$/m);
    assert.match(notReady, /^Mode: +embedded, dry-run \(actions are planned, not sent\)$/m);
    assert.match(notReady, /^Paused: +none$/m);
    assert.match(notReady, /^Unreconciled: +none$/m);
  });

  it("subjects", () => {
    const subjects: SubjectSummary[] = [
      { id: "frontend", kind: "workload", access: "deny", status: "evaluated", pending: [], policies: [{ policy: "frontend-to-api", access: "deny", risk: "high", generation: 2, decided_at: "2026-11-24T10:02:11.204Z" }] },
      {
        id: "alice",
        kind: "user",
        access: "deny",
        status: "pending",
        pending: ["p2"],
        policies: [
          { policy: "identity-perimeter", access: "full_access", risk: "low", generation: 1, decided_at: "2026-11-24T09:00:00.000Z" },
          { policy: "p3", access: "full_access", risk: "low", generation: 1, decided_at: "2026-11-24T11:00:00.000Z" },
        ],
      },
    ];
    assert.equal(
      renderSubjects(subjects),
      `ID        KIND      ACCESS  STATUS     POLICIES                                                    DECIDED
frontend  workload  deny    evaluated  frontend-to-api=deny                                        2026-11-24T10:02:11Z
alice     user      deny    pending    identity-perimeter=full_access, p3=full_access, p2=pending  2026-11-24T11:00:00Z`,
    );
    assert.equal(renderSubjects([]), "no subjects");
  });

  it("subject", () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    const detail: SubjectDetailView = {
      subject: { id: "frontend", kind: "workload", identity: "spiffe://example.org/ns/web/sa/frontend", attributes: {}, labels: { app: "frontend" } },
      access: "deny",
      status: "evaluated",
      pending: [],
      decisions: [
        {
          policy: "frontend-to-api",
          subject: "frontend",
          access: "deny",
          risk: "high",
          reasons: [{ code: "SIGNAL", message: "beaconing" }],
          generation: 2,
          decided_at: iso(NOW - 90_000),
          evidence: { target: "deny", checks: { anomaly_detection: { status: "fail", observed_at: iso(NOW - 90_000) } } },
          exempt: false,
        },
      ],
      results: [{ check: "anomaly_detection", subject: "frontend", status: "fail", risk: "high", reasons: [{ code: "SIGNAL", message: "beaconing" }], observed_at: iso(NOW - 90_000), expires_at: iso(NOW - 1), source: "push" }],
    };
    const audit: AuditEntry[] = [{ type: "signal", subject: "frontend", check: "anomaly_detection", status: "fail", risk: "high", ttl_ms: 3_600_000, source: "api", reason: "beaconing", seq: 7, ts: "2026-11-24T11:58:30.000Z", prev: "p", hash: "h" }];
    assert.equal(
      renderSubject(detail, audit, NOW),
      `Subject:   frontend (workload)
Identity:  spiffe://example.org/ns/web/sa/frontend
Labels:    app=frontend
Access:    deny

Decisions:
  frontend-to-api: deny (risk high, generation 2, decided 2026-11-24T11:58:30Z, 1m30s ago)
    SIGNAL: beaconing
    evidence: {"target":"deny","checks":{"anomaly_detection":{"status":"fail","observed_at":"2026-11-24T11:58:30.000Z"}}}

Check results:
  CHECK              STATUS  RISK  FROM    OBSERVED              EXPIRES                         REASONS
  anomaly_detection  fail    high  signal  2026-11-24T11:58:30Z  2026-11-24T11:59:59Z (expired)  SIGNAL: beaconing

Recent audit entries:
  TIME                     SEQ  TYPE                  DETAIL
  2026-11-24T11:58:30Z       7  signal                anomaly_detection=fail risk high for 1h from api: beaconing`,
    );
  });

  it("enforcement status and failed", () => {
    assert.equal(
      renderGuards([{ policy: "p1", paused: true, paused_at: new Date(NOW - 300_000).toISOString(), recent_actions: 3, max_actions: 3, window_ms: 600_000 }, { policy: "p2", paused: false, recent_actions: 0, max_actions: 20, window_ms: 3_600_000 }], NOW),
      `POLICY  ENFORCEMENT                                 ACTIONS  WINDOW
p1      paused since 2026-11-24T11:55:00Z (5m ago)  3/3      10m
p2      active                                      0/20     1h`,
    );
    const item: FailedEnforcement = {
      id: "5c0e8f2a9d41b7e3a6c1f0d2",
      policy: "identity-perimeter",
      subject: "alice",
      action: "notify",
      action_type: "webhook",
      operation: "apply",
      access: "deny",
      generation: 4,
      status: "failed",
      attempts: 8,
      redrives: 1,
      last_error: "POST https://hooks.example.org/vigil → 503",
      first_failed_at: "2026-11-24T10:02:11.204Z",
      last_attempt_at: "2026-11-24T10:03:40.877Z",
      next_retry_at: new Date(NOW + 125_000).toISOString(),
    };
    assert.equal(
      renderFailed([item, { ...item, id: "x", status: "retrying", next_retry_at: null, last_error: null }], NOW),
      `ID                        POLICY              SUBJECT  ACTION                  ACCESS  ATTEMPTS  NEXT RETRY                      LAST ERROR
5c0e8f2a9d41b7e3a6c1f0d2  identity-perimeter  alice    apply notify (webhook)  deny    8         2026-11-24T12:02:05Z (in 2m5s)  POST https://hooks.example.org/vigil → 503
x                         identity-perimeter  alice    apply notify (webhook)  deny    8         retrying now                    -`,
    );
    assert.equal(renderFailed([], NOW), "no failed enforcement");
  });

  it("audit lines: the same columns with and without --follow, a few words per type", () => {
    const decision: AuditEntry = { type: "decision", policy: "frontend-to-api", subject: "frontend", access: "deny", previous_access: "full_access", risk: "high", generation: 2, reasons: [{ code: "CERT_EXPIRING", message: "x" }, { code: "SIGNAL", message: "y" }], exempt: false, trigger: "signal", seq: 42, ts: "2026-11-24T10:02:11.204Z", prev: "p", hash: "h" };
    assert.equal(auditLine(decision), "2026-11-24T10:02:11Z      42  decision              frontend              frontend-to-api: full_access → deny (risk high, signal) CERT_EXPIRING, SIGNAL");
    assert.equal(auditRows([decision], { subject: false }), "TIME                     SEQ  TYPE                  DETAIL\n2026-11-24T10:02:11Z      42  decision              frontend-to-api: full_access → deny (risk high, signal) CERT_EXPIRING, SIGNAL");
    const e = (fields: Record<string, unknown>): AuditEntry => ({ seq: 1, ts: "t", prev: "p", hash: "h", ...fields }) as AuditEntry;
    assert.equal(auditDetail(e({ type: "action", policy: "p", action: "notify", action_type: "webhook", operation: "revert", outcome: "success", verified: true })), "p: revert notify (webhook) — success, verified");
    assert.equal(auditDetail(e({ type: "action_failed", policy: "p", action: "notify", action_type: "webhook", operation: "apply", attempts: 8, error: "503" })), "p: apply notify (webhook) — after 8 attempt(s): 503");
    assert.equal(auditDetail(e({ type: "enforcement_paused", policy: "p", max_actions: 20, window_ms: 600_000 })), "p: paused after 20 actions in 10m");
    assert.equal(auditDetail(e({ type: "enforcement_resumed", policy: "p", by: "operator" })), "p: resumed by operator");
    assert.equal(auditDetail(e({ type: "signal", check: "mfa", status: "pass", source: "alertmanager", ttl_ms: 86_400_000 })), "mfa=pass for 1d from alertmanager");
    assert.equal(auditDetail(e({ type: "config_reloaded", file: "/etc/vigil/vigil.yaml", policies: ["a"], key_id: "k" })), '{"file":"/etc/vigil/vigil.yaml","policies":["a"]}');
    assert.equal(auditRows([]), "no audit entries");
  });
});
