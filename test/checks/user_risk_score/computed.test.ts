/**
 * The computed score, rule by rule: impossible travel (the speed limit, the minimum distance that
 * keeps GeoIP noise out, the antimeridian), MFA failures in a window, new countries after a history,
 * risky networks, recent resets and provider levels; decay with age, thresholds, and the sum.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { computeScore, decayed, mfaFailures, newCountry, providerLevel, recentReset, riskyNetwork, travel } from "../../../src/checks/user_risk_score/computed.ts";
import { rulesSchema } from "../../../src/checks/user_risk_score/config.ts";
import { NetworkList } from "../../../src/sources/identity/geo.ts";
import { UserActivity, type SignIn } from "../../../src/sources/identity/model.ts";

const RULES = rulesSchema.parse({});
const NOW = Date.parse("2026-12-10T12:00:00Z");
const H = 3_600_000;
const MIN = 60_000;

function signIn(at: number, where: { lat?: number; lon?: number; country?: string; city?: string; ip?: string } = {}): SignIn {
  return {
    at,
    ip: where.ip ?? "192.0.2.10",
    country: where.country,
    city: where.city,
    lat: where.lat,
    lon: where.lon,
    mfa: true,
    amr: undefined,
    deviceId: undefined,
    deviceName: undefined,
    deviceManaged: undefined,
    deviceCompliant: undefined,
    app: undefined,
  };
}

function activity(...signIns: SignIn[]): UserActivity {
  const a = new UserActivity();
  for (const s of signIns) a.record(s, 10);
  return a;
}

const BERLIN = { lat: 52.52, lon: 13.405, country: "DE", city: "Berlin" };
const SYDNEY = { lat: -33.8688, lon: 151.2093, country: "AU", city: "Sydney" };
const POTSDAM = { lat: 52.3906, lon: 13.0645, country: "DE", city: "Potsdam" };
const SUVA = { lat: -18.1416, lon: 178.4419, country: "FJ", city: "Suva" };
const APIA = { lat: -13.8333, lon: -171.75, country: "WS", city: "Apia" };

describe("impossible travel", () => {
  test("Berlin then Sydney two hours later is far faster than 900 km/h", () => {
    const c = travel("entra", activity(signIn(NOW - 3 * H, BERLIN), signIn(NOW - H, SYDNEY)).recent, RULES.impossible_travel, NOW)!;
    assert.equal(c.code, "USER_IMPOSSIBLE_TRAVEL");
    assert.equal(c.points, 60);
    assert.ok(c.weight < 60 && c.weight > 57, "decayed one hour into a 24h half-life");
    assert.match(c.message, /16\d{3} km from Berlin, DE .* to Sydney, AU .* in 2 h/);
    assert.match(c.message, /faster than 900 km\/h/);
  });

  test("the same trip over a day is plausible", () => {
    assert.equal(travel("entra", activity(signIn(NOW - 30 * H, BERLIN), signIn(NOW - H, SYDNEY)).recent, RULES.impossible_travel, NOW), undefined);
  });

  test("sign-ins closer than min_distance_km never count, however fast (GeoIP noise)", () => {
    // Berlin → Potsdam (about 27 km) one minute apart: 1,600 km/h, but within the minimum distance.
    assert.equal(travel("entra", activity(signIn(NOW - 2 * MIN, BERLIN), signIn(NOW - MIN, POTSDAM)).recent, RULES.impossible_travel, NOW), undefined);
    const strict = { ...RULES.impossible_travel, min_distance_km: 10 };
    assert.ok(travel("entra", activity(signIn(NOW - 2 * MIN, BERLIN), signIn(NOW - MIN, POTSDAM)).recent, strict, NOW), "with a 10 km minimum it counts");
  });

  test("across the antimeridian: Suva to Apia (about 1,150 km) in three hours is no impossible travel", () => {
    assert.equal(travel("entra", activity(signIn(NOW - 4 * H, SUVA), signIn(NOW - H, APIA)).recent, RULES.impossible_travel, NOW), undefined);
    const c = travel("entra", activity(signIn(NOW - 2 * H, SUVA), signIn(NOW - H, APIA)).recent, RULES.impossible_travel, NOW);
    assert.ok(c, "…but in one hour it is");
    assert.match(c.message, /11\d\d km/);
  });

  test("the same instant in two far places counts; sign-ins without coordinates are skipped", () => {
    const c = travel("entra", activity(signIn(NOW - H, BERLIN), signIn(NOW - H, { ...SYDNEY, ip: "192.0.2.99" })).recent, RULES.impossible_travel, NOW)!;
    assert.match(c.message, /at the same instant/);
    assert.equal(travel("entra", activity(signIn(NOW - 2 * H, { country: "DE" }), signIn(NOW - H, { country: "AU" })).recent, RULES.impossible_travel, NOW), undefined);
  });

  test("a faster speed limit lets the trip through; points 0 turns the rule off", () => {
    const a = activity(signIn(NOW - 3 * H, BERLIN), signIn(NOW - H, SYDNEY));
    assert.equal(travel("entra", a.recent, { ...RULES.impossible_travel, speed_kmh: 10_000 }, NOW), undefined);
    assert.equal(travel("entra", a.recent, { ...RULES.impossible_travel, points: 0 }, NOW), undefined);
  });
});

describe("MFA failures, new countries, networks, resets, provider levels", () => {
  test("five failures within an hour count; four do not; five spread over hours do not", () => {
    const at = (mins: number[]) => mins.map((m) => NOW - m * MIN);
    assert.ok(mfaFailures("okta", at([50, 40, 30, 20, 10]), RULES.mfa_failures, NOW));
    assert.equal(mfaFailures("okta", at([40, 30, 20, 10]), RULES.mfa_failures, NOW), undefined);
    assert.equal(mfaFailures("okta", at([300, 240, 180, 120, 60]), RULES.mfa_failures, NOW), undefined);
    const c = mfaFailures("okta", at([59, 45, 30, 15, 5, 1]), RULES.mfa_failures, NOW)!;
    assert.match(c.message, /6 failed second-factor attempts within 60 min/);
  });

  test("a new country counts only after min_history sign-ins elsewhere", () => {
    const few = activity(signIn(NOW - 3 * H, BERLIN), signIn(NOW - H, { country: "BR", ip: "192.0.2.2" }));
    assert.equal(newCountry("entra", few, RULES.new_country, NOW), undefined, "one sign-in before is no history");
    const many = activity(signIn(NOW - 9 * H, BERLIN), signIn(NOW - 8 * H, BERLIN), signIn(NOW - 7 * H, { ...BERLIN, ip: "192.0.2.3" }), signIn(NOW - H, { country: "BR", ip: "192.0.2.2" }));
    const c = newCountry("entra", many, RULES.new_country, NOW)!;
    assert.match(c.message, /first sign-in from BR .* after 3 sign-in\(s\) from DE/);
  });

  test("a sign-in from a listed network adds that list's points", () => {
    const lists = [Object.assign(new NetworkList("tor-exits", ["198.51.100.0/24"]), { points: 50 })];
    const c = riskyNetwork("entra", activity(signIn(NOW - MIN, { ip: "198.51.100.9" })).recent, RULES.risky_networks, lists, NOW)!;
    assert.equal(c.points, 50);
    assert.match(c.message, /198\.51\.100\.9 \(risky network tor-exits\)/);
    assert.equal(riskyNetwork("entra", activity(signIn(NOW - MIN, { ip: "192.0.2.1" })).recent, RULES.risky_networks, lists, NOW), undefined);
  });

  test("a reset counts and fades; a provider level counts without fading", () => {
    const c = recentReset("entra", NOW - 24 * H, RULES.recent_reset, NOW)!;
    assert.equal(c.weight, 7.5, "15 points, one half-life old");
    assert.equal(recentReset("entra", NOW - 30 * 24 * H, RULES.recent_reset, NOW), undefined, "faded below half a point");
    assert.equal(providerLevel("entra", "medium", RULES.provider, NOW)!.weight, 40);
    assert.equal(providerLevel("entra", "none", RULES.provider, NOW), undefined);
  });

  test("decay halves the points every half-life", () => {
    assert.equal(decayed(60, 24 * H, NOW, NOW), 60);
    assert.equal(decayed(60, 24 * H, NOW - 24 * H, NOW), 30);
    assert.equal(decayed(60, 24 * H, NOW - 48 * H, NOW), 15);
    assert.equal(decayed(60, 24 * H, NOW + H, NOW), 60, "an event from the future is not stronger");
  });
});

describe("the score", () => {
  test("contributions add up, strongest first, and thresholds map the sum to a level", () => {
    const a = activity(signIn(NOW - 3 * H, BERLIN), signIn(NOW - 10 * MIN, SYDNEY));
    const low = computeScore([{ name: "entra", activity: undefined, passwordChangedAt: undefined, level: undefined }], RULES, { medium: 40, high: 70 }, [], NOW);
    assert.deepEqual(low, { score: 0, level: "low", thresholds: { medium: 40, high: 70 }, contributions: [] });
    const medium = computeScore([{ name: "entra", activity: a, passwordChangedAt: undefined, level: undefined }], RULES, { medium: 40, high: 70 }, [], NOW);
    assert.equal(medium.level, "medium");
    assert.deepEqual(medium.contributions.map((c) => c.rule), ["impossible_travel"]);
    const high = computeScore([{ name: "entra", activity: a, passwordChangedAt: NOW - H, level: "low" }], RULES, { medium: 40, high: 70 }, [], NOW);
    assert.deepEqual(high.contributions.map((c) => c.rule), ["impossible_travel", "recent_reset", "provider"]);
    assert.equal(high.level, "high");
    assert.equal(high.score, Math.round(high.contributions.reduce((s, c) => s + c.weight, 0) * 10) / 10);
    assert.ok(high.contributions.every((c) => c.message.startsWith("entra: ")), "each names its source");
  });

  test("each rule counts once per source: its strongest instance", () => {
    const a = activity(signIn(NOW - 5 * H, BERLIN), signIn(NOW - 4 * H, { ...SYDNEY, ip: "192.0.2.5" }), signIn(NOW - 3 * H, { ...BERLIN, ip: "192.0.2.6" }), signIn(NOW - 2 * H, { ...SYDNEY, ip: "192.0.2.7" }));
    const s = computeScore([{ name: "entra", activity: a, passwordChangedAt: undefined, level: undefined }], RULES, { medium: 40, high: 70 }, [], NOW);
    assert.equal(s.contributions.filter((c) => c.rule === "impossible_travel").length, 1);
    assert.equal(s.contributions[0]!.at, NOW - 2 * H, "the newest (least decayed) trip");
  });
});
