/**
 * The structure of deploy/grafana/vigil.json: importable as is, laid out on Grafana's 24-column grid,
 * every query on the data source the importer picks, and every metric vigil exports on a panel.
 * (test/deploy/prometheus-live.test.ts runs its queries against a real Prometheus.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { allPanels, dashboardQueries, definedNames, loadDashboard, metricNames, substitute } from "../helpers/grafana.ts";
import * as N from "../../src/telemetry/names.ts";

const d = loadDashboard();
const panels = allPanels(d);
const content = panels.filter((p) => p.type !== "row");
const DATASOURCE = "${datasource}";

test("dashboard: importable identity and a recent schema", () => {
  assert.equal(d.title, "vigil");
  assert.match(d.uid, /^[a-zA-Z0-9_-]{1,40}$/, "uid: at most 40 of Grafana's uid characters");
  assert.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}: datasource references by uid need 36+`);
  assert.ok(d.tags.includes("vigil"));
  assert.ok(d.id === undefined || d.id === null, "no instance-specific id: Grafana assigns one on import");
});

test("dashboard: a data source variable for Prometheus, and job/instance/policy variables from vigil's series", () => {
  const byName = new Map(d.templating.list.map((v) => [v.name, v]));
  const ds = byName.get("datasource");
  assert.equal(ds?.type, "datasource");
  assert.equal(ds?.query, "prometheus");
  for (const name of ["job", "instance", "policy"]) {
    const v = byName.get(name);
    assert.equal(v?.type, "query", name);
    assert.equal(v?.datasource?.uid, DATASOURCE, name);
    assert.equal(v?.includeAll, true, name);
    assert.equal(v?.allValue, ".+", `${name}: "All" must match every value in an =~ matcher`);
    const q = typeof v?.query === "string" ? v.query : v?.query.query;
    assert.match(q ?? "", /^label_values\(vigil_[a-z_]+(\{[^}]*\})?, [a-z_]+\)$/, name);
  }
});

test("dashboard: every panel sits on the 24-column grid without overlapping another", () => {
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  const cells = new Map<string, string>();
  for (const p of panels) {
    const { x, y, w, h } = p.gridPos;
    assert.ok(Number.isInteger(x) && Number.isInteger(y) && Number.isInteger(w) && Number.isInteger(h), p.title);
    assert.ok(x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24, `${p.title}: ${JSON.stringify(p.gridPos)}`);
    if (p.type === "row") assert.deepEqual([x, w, h], [0, 24, 1], `row ${p.title}`);
    for (let i = x; i < x + w; i++) {
      for (let j = y; j < y + h; j++) {
        const other = cells.get(`${i},${j}`);
        assert.equal(other, undefined, `${p.title} overlaps ${other}`);
        cells.set(`${i},${j}`, p.title);
      }
    }
  }
});

test("dashboard: panels have a known type, a title and description, and query the chosen data source", () => {
  const titles = content.map((p) => p.title);
  assert.equal(new Set(titles).size, titles.length, "panel titles are unique");
  for (const p of content) {
    assert.ok(["timeseries", "stat", "table", "bargauge", "gauge"].includes(p.type), `${p.title}: type ${p.type}`);
    assert.ok(p.title.trim() !== "" && (p.description ?? "").trim() !== "", `${p.title}: title and description`);
    assert.equal(p.datasource?.uid, DATASOURCE, `${p.title}: panel data source`);
    const targets = p.targets ?? [];
    assert.ok(targets.length > 0, `${p.title}: no query`);
    assert.equal(new Set(targets.map((t) => t.refId)).size, targets.length, `${p.title}: refIds are unique`);
    for (const t of targets) {
      assert.equal(t.datasource?.uid, DATASOURCE, `${p.title} ${t.refId}: target data source`);
      assert.ok(t.expr.trim() !== "", `${p.title} ${t.refId}: empty expression`);
      if (p.type === "table") assert.deepEqual([t.instant, t.format], [true, "table"], `${p.title} ${t.refId}: tables read instant vectors`);
    }
  }
});

test("dashboard: every variable an expression uses is defined, and every name it reads is vigil's", () => {
  const known = definedNames();
  for (const q of dashboardQueries(d)) {
    assert.doesNotThrow(() => substitute(q.expr, d), q.where);
    for (const name of metricNames(q.expr)) assert.ok(name === "up" || known.has(name), `${q.where}: ${name} is not defined in src/telemetry/names.ts`);
  }
});

test("dashboard: the panels the operators asked for are there", () => {
  const exprs = (title: string) => {
    const p = content.find((c) => c.title === title);
    assert.ok(p, `no panel "${title}"`);
    return (p.targets ?? []).map((t) => t.expr).join("\n");
  };
  assert.match(exprs("Subjects by access level, per policy"), /sum by \(policy, access\) \(vigil_subjects\{/);
  assert.match(exprs("Decision changes"), /vigil_decision_changes_total/);
  assert.match(exprs("Check results by check and status"), /vigil_check_results_total/);
  assert.match(exprs("Enforcement actions by type and outcome"), /vigil_actions_total/);
  assert.match(exprs("Failed enforcement actions"), /vigil_actions_total\{[^}]*outcome="failed"/);
  assert.match(exprs("Unreconciled enforcement"), /vigil_enforcement_unreconciled\{/);
  assert.match(exprs("Oldest unreconciled enforcement"), /vigil_enforcement_unreconciled_oldest_seconds/);
  assert.match(exprs("Queue depth"), /vigil_queue_jobs/);
  assert.match(exprs("Signal → enforcement latency"), /histogram_quantile\(0\.99, sum by \(le\) \(rate\(vigil_signal_to_enforcement_seconds_bucket/);
  assert.match(exprs("Check errors"), /vigil_check_errors_total/);
  const certs = content.find((c) => c.title === "Certificates");
  assert.equal(certs?.type, "table");
  assert.match(exprs("Certificates"), /vigil_certificate_expiry_seconds/);
  assert.match(exprs("Certificates"), /vigil_certificate_revoked/);
});

test("dashboard: every metric vigil exports is on a panel", () => {
  const shown = new Set(dashboardQueries(d).flatMap((q) => metricNames(q.expr)).map((n) => n.replace(/_(bucket|sum|count)$/, "")));
  const missing = [...N.ALL_METRICS, ...N.CERTIFICATE_METRICS].map((m) => m.name).filter((n) => !shown.has(n));
  assert.deepEqual(missing, [], "add a panel for each new metric (or say here why it has none)");
});
