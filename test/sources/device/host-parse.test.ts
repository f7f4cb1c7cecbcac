/** The host posture readers on recorded outputs of machines these tests do not run on. */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import {
  encryptionOf,
  firewallVerdict,
  lockdownAtLeast,
  mountAt,
  parseAptHistory,
  parseChronyTracking,
  parseIptablesPolicy,
  parseLockdown,
  parseMountinfo,
  parseNftRuleset,
  parseOsqueryRows,
  parseOsRelease,
  parseSecureBootVariable,
  parseTimedatectl,
  updateState,
  type BlockDevice,
} from "../../../src/sources/device/host/parse.ts";

describe("os-release", () => {
  test("Ubuntu, RHEL and quoting", () => {
    assert.deepEqual(parseOsRelease('NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n'), { id: "ubuntu", idLike: ["debian"], versionId: "22.04", prettyName: "Ubuntu 22.04.4 LTS" });
    assert.deepEqual(parseOsRelease("ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID='9.4'\n# comment\n"), { id: "rhel", idLike: ["fedora"], versionId: "9.4" });
    assert.deepEqual(parseOsRelease(""), { idLike: [] });
  });
});

describe("mounts and the devices below them", () => {
  const mountinfo = [
    "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw",
    "30 22 0:26 / /home rw,nosuid shared:20 - btrfs /dev/sda4 rw,space_cache",
    "31 22 0:40 / /srv\\040data rw - tmpfs tmpfs rw",
  ].join("\n");

  test("mountinfo: device, type, source, escaped spaces", () => {
    const mounts = parseMountinfo(mountinfo);
    assert.deepEqual(mountAt(mounts, "/"), { device: "253:1", mountPoint: "/", fsType: "ext4", source: "/dev/mapper/vg-root" });
    assert.equal(mountAt(mounts, "/srv data")?.fsType, "tmpfs");
    assert.equal(mountAt(mounts, "/home/")?.device, "0:26");
    assert.equal(mountAt(mounts, "/var"), undefined);
  });

  const tree = (entries: [string, BlockDevice][]) => new Map(entries);
  test("LUKS directly, LVM on LUKS, plain, LVM over a plain and an encrypted disk", () => {
    const luks = tree([["253:0", { name: "dm-0", dmUuid: "CRYPT-LUKS2-1a2b3c-luks-root", below: ["8:3"] }], ["8:3", { name: "sda3", below: [] }]]);
    assert.deepEqual(encryptionOf("253:0", luks), { encrypted: true, kind: "LUKS2", chain: "dm-0 (CRYPT-LUKS2)" });
    const lvmOnLuks = tree([["253:1", { name: "dm-1", dmUuid: "LVM-abc", below: ["253:0"] }], ...luks]);
    const v = encryptionOf("253:1", lvmOnLuks)!;
    assert.equal(v.encrypted, true);
    assert.equal(v.chain, "dm-1 (LVM) → dm-0 (CRYPT-LUKS2)");
    assert.deepEqual(encryptionOf("254:0", tree([["254:0", { name: "vda", below: [] }]])), { encrypted: false, chain: "vda" });
    const spanning = tree([["253:2", { name: "dm-2", dmUuid: "LVM-x", below: ["253:0", "8:17"] }], ["8:17", { name: "sdb1", below: [] }], ...luks]);
    assert.equal(encryptionOf("253:2", spanning)!.encrypted, false, "one plain disk below makes the volume plain");
    assert.equal(encryptionOf("9:9", luks), undefined);
  });
});

describe("firewall", () => {
  const nft = (chains: object[]) => JSON.stringify({ nftables: [{ metainfo: { version: "1.0.6", json_schema_version: 1 } }, { table: { family: "inet", name: "filter", handle: 1 } }, ...chains.map((c) => ({ chain: c }))] });
  test("nftables: an inet input chain with policy drop covers both families", () => {
    const p = parseNftRuleset(nft([{ family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "drop" }, { family: "inet", table: "filter", name: "forward", handle: 2, type: "filter", hook: "forward", prio: 0, policy: "drop" }]));
    assert.deepEqual(firewallVerdict(p), { ipv4: true, ipv6: true, detail: "inet filter/input policy drop" });
  });
  test("nftables: ip only, or accept, is not default deny", () => {
    assert.deepEqual(firewallVerdict(parseNftRuleset(nft([{ family: "ip", table: "filter", name: "INPUT", type: "filter", hook: "input", prio: 0, policy: "drop" }]))).ipv6, false);
    assert.deepEqual(firewallVerdict(parseNftRuleset(nft([{ family: "inet", table: "filter", name: "input", type: "filter", hook: "input", prio: 0, policy: "accept" }]))), { ipv4: false, ipv6: false, detail: "inet filter/input policy accept" });
    assert.deepEqual(firewallVerdict([]), { ipv4: false, ipv6: false, detail: "no input chain" });
    assert.throws(() => parseNftRuleset("Error: Could not process rule"));
  });
  test("iptables -S INPUT", () => {
    assert.equal(parseIptablesPolicy("-P INPUT DROP\n-A INPUT -i lo -j ACCEPT\n"), "drop");
    assert.equal(parseIptablesPolicy("-P INPUT ACCEPT\n"), "accept");
    assert.equal(parseIptablesPolicy("iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)"), undefined);
  });
});

describe("updates, boot, time", () => {
  const history = [
    "Start-Date: 2026-05-01  06:25:12",
    "Commandline: /usr/bin/unattended-upgrade",
    "Upgrade: libssl3:amd64 (3.0.11-1~deb12u2, 3.0.13-1~deb12u1)",
    "End-Date: 2026-05-01  06:25:20",
    "",
    "Start-Date: 2026-05-10  10:00:00",
    "Commandline: apt-get install -y jq",
    "Install: jq:amd64 (1.6-2.1)",
    "End-Date: 2026-05-10  10:00:02",
    "",
    "Start-Date: 2026-05-20  16:27:00",
    "Commandline: apt-get upgrade -y",
    "Upgrade: curl:amd64 (7.88.1-10+deb12u5, 7.88.1-10+deb12u6)",
    "End-Date: 2026-05-20  16:27:32",
  ].join("\n");
  test("apt history: the last unattended-upgrades run counts as the last security update", () => {
    const runs = parseAptHistory(history);
    assert.equal(runs.length, 3);
    const s = updateState(runs);
    assert.equal(s.lastSecurity, new Date(2026, 4, 1, 6, 25, 12).getTime());
    assert.equal(s.lastUpgrade, new Date(2026, 4, 20, 16, 27, 0).getTime());
    assert.deepEqual(updateState(parseAptHistory("Start-Date: 2026-01-01  00:00:00\nCommandline: apt-get install jq\nInstall: jq\n")), {});
  });
  test("lockdown, secure boot variable, timedatectl, chrony", () => {
    assert.equal(parseLockdown("none [integrity] confidentiality\n"), "integrity");
    assert.equal(lockdownAtLeast("integrity", "integrity"), true);
    assert.equal(lockdownAtLeast("none", "integrity"), false);
    assert.equal(lockdownAtLeast("confidentiality", "integrity"), true);
    assert.equal(parseSecureBootVariable(Uint8Array.from([6, 0, 0, 0, 1])), true);
    assert.equal(parseSecureBootVariable(Uint8Array.from([6, 0, 0, 0, 0])), false);
    assert.equal(parseSecureBootVariable(Uint8Array.from([6, 0])), undefined);
    assert.equal(parseTimedatectl("yes\n"), true);
    assert.equal(parseTimedatectl("NTPSynchronized=no"), false);
    assert.equal(parseTimedatectl("System has not been booted with systemd"), undefined);
    assert.equal(parseChronyTracking("A29FC87B,162.159.200.123,3,1717243200.123,0.000012,-0.000003,0.000010,-1.234,0.001,0.05,0.0123,0.0011,64.2,Normal\n"), true);
    assert.equal(parseChronyTracking("7F7F0101,,10,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,Not synchronised\n"), false);
  });
  test("osquery rows", () => {
    assert.deepEqual(parseOsqueryRows('[{"encrypted":"1","name":"/dev/dm-0"}]'), [{ encrypted: "1", name: "/dev/dm-0" }]);
    assert.throws(() => parseOsqueryRows('{"error": "no such table"}'));
  });
});
