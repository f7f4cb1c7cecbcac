import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatDuration, MAX_TIMER_MS, parseDuration } from "../../src/util/duration.ts";

describe("parseDuration: each unit at most once, largest first", () => {
  const ok: [string, number][] = [
    ["0s", 0],
    ["250ms", 250],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["14d", 1_209_600_000],
    ["2w", 1_209_600_000],
    ["1w2d3h4m5s6ms", 604_800_000 + 2 * 86_400_000 + 3 * 3_600_000 + 4 * 60_000 + 5_000 + 6],
    [" 10s ", 10_000],
  ];
  for (const [text, ms] of ok) it(`${JSON.stringify(text)} → ${ms}`, () => assert.equal(parseDuration(text), ms));

  const bad = ["1h1h", "30m1h", "1s1m", "1ms1s", "5m5m", "1d1w", "", "5", "m", "1.5h", "-1s", "1 h", "1h 30m", "1H", "1y", "99999999999999999999d", "1".repeat(400) + "s"];
  for (const text of bad) it(`${JSON.stringify(text.length > 40 ? text.slice(0, 20) + "…" : text)} is not a duration`, () => assert.equal(parseDuration(text), undefined));

  it("formats back into the form it parses", () => {
    for (const ms of [0, 1, 999, 1_000, 61_000, 5_400_000, 86_400_000 + 1, MAX_TIMER_MS]) assert.equal(parseDuration(formatDuration(ms)), ms, formatDuration(ms));
  });

  it("the timer limit is 2^31-1 ms, 24d20h31m23s647ms", () => {
    assert.equal(MAX_TIMER_MS, 2_147_483_647);
    assert.equal(formatDuration(MAX_TIMER_MS), "24d20h31m23s647ms");
  });
});

describe("formatDuration for people: {units}", () => {
  const cases: [number, number, string][] = [
    [10 * 3_600_000 + 15 * 60_000 + 13_637, 2, "10h15m"],
    [10 * 3_600_000 + 15 * 60_000 + 13_637, 1, "10h"],
    [10 * 3_600_000 + 15 * 60_000 + 13_637, 3, "10h15m13s"],
    [86_400_000 + 5 * 60_000, 2, "1d"],
    [3 * 86_400_000 + 4 * 3_600_000 + 59 * 60_000, 2, "3d4h"],
    [45_999, 2, "45s"],
    [150_500, 2, "2m30s"],
    [250, 2, "250ms"],
    [0, 2, "0s"],
    [0.4, 2, "0s"],
    [-90_000, 2, "-1m30s"],
  ];
  for (const [ms, units, text] of cases) it(`${ms} ms in ${units} unit(s) → ${text}`, () => assert.equal(formatDuration(ms, { units }), text));

  it("without options it stays exact", () => {
    assert.equal(formatDuration(10 * 3_600_000 + 15 * 60_000 + 13_637), "10h15m13s637ms");
  });
});
