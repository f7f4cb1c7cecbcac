/** checks.device_compliance in a config file: push-only without sources, every bad value named by its key path. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfigText } from "../../../src/config/load.ts";
import { ConfigError, type ConfigIssue } from "../../../src/errors.ts";

const FILE = "/tmp/vigil-device-compliance-test/vigil.yaml";
const perimeter = `identity_perimeter:
  applies_to: {kind: [user, device]}
  continuous_verification: {interval: 5m, checks: [device_compliance]}
`;

async function issues(yaml: string): Promise<ConfigIssue[]> {
  try {
    await loadConfigText(yaml, FILE, { env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.issues];
  }
  assert.fail("expected the config to be rejected");
}

describe("config: device_compliance", () => {
  it("without sources it stays push-only; with sources it is a pull check", async () => {
    const push = await loadConfigText(`${perimeter}checks:\n  device_compliance: {on_unknown: ignore, ttl: 24h}\n`, FILE, { env: {} });
    assert.equal(push.checks.device_compliance!.pull, false);
    const pull = await loadConfigText(
      `${perimeter}checks:\n  device_compliance:\n    sources:\n      - {type: fleet, url: "https://fleet.example.com", token: t0ken-value}\n`,
      FILE,
      { env: {} },
    );
    assert.equal(pull.checks.device_compliance!.pull, true);
  });

  it("missing or wrong credentials are named by their key path", async () => {
    const got = await issues(`${perimeter}checks:
  device_compliance:
    sources:
      - type: intune
        tenant_id: common
        client_id: not-a-guid
        auth: {}
      - type: fleet
        url: "http://fleet.example.com"
      - type: jamf
        url: "https://example.jamfcloud.com"
        client_id: x
        client_secret: ""
      - type: crowdstrike
        client_id: c
        thresholds: {overall: 120}
      - type: host
        controls: {files: [{path: relative/path}], commands: [{name: "bad name", run: []}]}
`);
    const paths = got.map((i) => i.path);
    for (const p of [
      "checks.device_compliance.sources[0].tenant_id",
      "checks.device_compliance.sources[0].client_id",
      "checks.device_compliance.sources[0].auth",
      "checks.device_compliance.sources[1].url",
      "checks.device_compliance.sources[1].token",
      "checks.device_compliance.sources[2].client_secret",
      "checks.device_compliance.sources[3].client_secret",
      "checks.device_compliance.sources[3].thresholds.overall",
      "checks.device_compliance.sources[4].controls.files[0].path",
      "checks.device_compliance.sources[4].controls.commands[0].name",
      "checks.device_compliance.sources[4].controls.commands[0].run",
    ]) {
      assert.ok(paths.includes(p), `${p} in ${JSON.stringify(paths)}`);
    }
    assert.ok(!JSON.stringify(got).includes("t0ken"), "no secret value in the issues");
  });

  it("two sources of one type need names to tell them apart", async () => {
    const got = await issues(`${perimeter}checks:
  device_compliance:
    sources:
      - {type: fleet, url: "https://a.example.com", token: t1-token}
      - {type: fleet, url: "https://b.example.com", token: t2-token}
`);
    assert.deepEqual(got.map((i) => i.path), ["checks.device_compliance.sources[1].name"]);
  });

  it("a source type nobody knows lists the known ones", async () => {
    const [issue] = await issues(`${perimeter}checks:\n  device_compliance:\n    sources: [{type: kandji}]\n`);
    assert.equal(issue!.path, "checks.device_compliance.sources[0].type");
    assert.match(issue!.message, /intune|fleet/);
  });
});
