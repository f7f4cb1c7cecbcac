/**
 * Host posture read for real: on this machine (compared with what independent tools say), on a
 * recorded node mounted under `root` as a sidecar sees it (LVM on LUKS, UEFI secure boot, lockdown,
 * timesyncd, apt history), and through an `osqueryi` that answers recorded rows.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";
import { HostReader } from "../../../src/sources/device/host/collect.ts";
import { hostConnectionShape } from "../../../src/sources/device/schema.ts";
import type { ControlResult } from "../../../src/sources/device/model.ts";

const schema = z.object(hostConnectionShape);
const reader = (extra: Record<string, unknown> = {}, now = Date.now()) => new HostReader(schema.parse({ type: "host", ...extra }), () => now);
const control = (controls: readonly ControlResult[], name: string) => controls.find((c) => c.control === name);

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "vigil-host-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function write(root: string, path: string, content: string | Uint8Array): void {
  const full = join(root, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, content);
}

describe("on this machine", () => {
  test("the OS, root filesystem, secure boot and update age match what the system itself reports", async () => {
    const rec = await reader({ osquery: "off" }).collect();
    const id = execFileSync("sh", ["-c", ". /etc/os-release; echo $ID"], { encoding: "utf8" }).trim();
    const version = execFileSync("sh", ["-c", ". /etc/os-release; echo $VERSION_ID"], { encoding: "utf8" }).trim();
    assert.equal(rec.platform, id);
    assert.equal(rec.osVersion, version);
    assert.ok(rec.keys.includes(rec.id), "the hostname finds the host");
    const controls = rec.posture.kind === "host" ? rec.posture.controls : [];

    // Disk encryption of /: dm-crypt anywhere on this machine?
    const crypt = readdirSync("/sys/block").some((b) => existsSync(`/sys/block/${b}/dm/uuid`) && readFileSync(`/sys/block/${b}/dm/uuid`, "utf8").startsWith("CRYPT-"));
    const disk = control(controls, "disk_encryption:/")!;
    const rootIsBlock = !/^\S+ \S+ 0:/m.test(readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === "/") ?? "");
    if (!crypt && rootIsBlock) {
      assert.equal(disk.status, "failed", disk.detail);
      assert.equal(disk.code, "DEVICE_UNENCRYPTED");
    } else assert.notEqual(disk.status, "ok", "an encrypted root would need a crypt device");

    // Secure boot needs UEFI.
    const sb = control(controls, "secure_boot")!;
    if (!existsSync("/sys/firmware/efi")) assert.deepEqual([sb.status, sb.code], ["failed", "DEVICE_SECURE_BOOT_OFF"]);

    // The last upgrade in apt's history, found with grep, decides security_updates.
    const upd = control(controls, "security_updates")!;
    if (existsSync("/var/log/apt/history.log")) {
      const last = execFileSync("sh", ["-c", "grep -B4 '^Upgrade:' /var/log/apt/history.log | grep Start-Date | tail -1 | cut -d' ' -f2"], { encoding: "utf8" }).trim();
      if (last) {
        assert.match(upd.detail, new RegExp(last));
        const ageDays = (Date.now() - Date.parse(`${last}T00:00:00`)) / 86_400_000;
        assert.equal(upd.status, ageDays > 31 ? "failed" : ageDays < 29 ? "ok" : upd.status);
      }
    }

    // Firewall: reading the ruleset needs nft or iptables and, without root, fails with the reason.
    const fw = control(controls, "firewall")!;
    const hasTool = ["nft", "iptables"].some((t) => {
      try {
        execFileSync("sh", ["-c", `command -v ${t}`]);
        return true;
      } catch {
        return false;
      }
    });
    if (!hasTool) assert.deepEqual([fw.status, fw.detail], ["unknown", "neither nft nor iptables is installed; cannot read the firewall"]);
    for (const c of controls) assert.ok(["ok", "failed", "unknown"].includes(c.status) && c.detail.length > 0, JSON.stringify(c));
  });

  test("services, lockdown and time without the tools that report them are unknown, with why", async () => {
    const rec = await reader({ osquery: "off", controls: { disk_encryption: false, firewall: false, security_updates: false, secure_boot: false, lockdown: "integrity", services: ["auditd"] } }).collect();
    const controls = rec.posture.kind === "host" ? rec.posture.controls : [];
    const lockdown = control(controls, "lockdown")!;
    if (!existsSync("/sys/kernel/security/lockdown")) assert.deepEqual([lockdown.status, lockdown.code], ["unknown", "DEVICE_CONTROL_UNKNOWN"]);
    const svc = control(controls, "service:auditd")!;
    let systemd = false;
    try {
      systemd = readFileSync("/proc/1/comm", "utf8").trim() === "systemd";
    } catch {
      // no /proc/1/comm: not systemd
    }
    if (!systemd) assert.equal(svc.status, "unknown", svc.detail);
  });

  test("user-defined file and command checks", async () => {
    const file = join(dir, "sshd_config");
    writeFileSync(file, "PermitRootLogin no\nPasswordAuthentication no\n");
    chmodSync(file, 0o640);
    const rec = await reader({
      osquery: "off",
      controls: {
        disk_encryption: false,
        firewall: false,
        security_updates: false,
        secure_boot: false,
        time_sync: false,
        files: [
          { path: file, max_mode: "0644", contains: "^PermitRootLogin no$" },
          { path: file, max_mode: "0600", code: "DEVICE_NONCOMPLIANT" },
          { path: join(dir, "absent"), exists: false },
          { path: join(dir, "absent") },
        ],
        commands: [
          { name: "three", run: ["sh", "-c", "echo hardened; exit 3"], exit_code: 3, stdout: "^hardened$" },
          { name: "false", run: ["false"] },
          { name: "missing", run: ["vigil-no-such-tool"] },
          { name: "slow", run: ["sleep", "5"] },
        ],
      },
      control_timeout: "500ms",
    }).collect();
    const c = rec.posture.kind === "host" ? rec.posture.controls : [];
    assert.deepEqual(
      c.map((x) => [x.control, x.status, x.code]),
      [
        [`file:${file}`, "ok", "DEVICE_CUSTOM_CHECK_FAILED"],
        [`file:${file}`, "failed", "DEVICE_NONCOMPLIANT"],
        [`file:${join(dir, "absent")}`, "ok", "DEVICE_CUSTOM_CHECK_FAILED"],
        [`file:${join(dir, "absent")}`, "failed", "DEVICE_CUSTOM_CHECK_FAILED"],
        ["command:three", "ok", "DEVICE_CUSTOM_CHECK_FAILED"],
        ["command:false", "failed", "DEVICE_CUSTOM_CHECK_FAILED"],
        ["command:missing", "unknown", "DEVICE_CONTROL_UNKNOWN"],
        ["command:slow", "unknown", "DEVICE_CONTROL_UNKNOWN"],
      ],
    );
    assert.match(c[1]!.detail, /mode 0640, more than 0600/);
    assert.match(c[7]!.detail, /no answer within 500 ms/);
  });
});

describe("a node mounted under root (sidecar), recorded", () => {
  test("LVM on LUKS, UEFI secure boot, lockdown, timesyncd, recent security update, old OS", async () => {
    const root = join(dir, "node");
    const now = Date.parse("2026-06-01T12:00:00Z");
    write(root, "etc/os-release", 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="20.04"\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\n');
    write(root, "etc/hostname", "node-7\n");
    write(root, "etc/machine-id", "4c4c4544004e3710804fb4c04f4e4a32\n");
    write(root, "proc/1/mountinfo", "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw\n");
    write(root, "sys/dev/block/253:1/uevent", "MAJOR=253\nMINOR=1\nDEVNAME=dm-1\nDEVTYPE=disk\n");
    write(root, "sys/dev/block/253:1/dm/uuid", "LVM-Xy12abcd\n");
    write(root, "sys/dev/block/253:1/slaves/dm-0/dev", "253:0\n");
    write(root, "sys/dev/block/253:0/uevent", "MAJOR=253\nMINOR=0\nDEVNAME=dm-0\n");
    write(root, "sys/dev/block/253:0/dm/uuid", "CRYPT-LUKS2-9f8e7d6c5b4a-luks-root\n");
    write(root, "sys/dev/block/253:0/slaves/nvme0n1p3/dev", "259:3\n");
    write(root, "sys/dev/block/259:3/uevent", "MAJOR=259\nMINOR=3\nDEVNAME=nvme0n1p3\nDEVTYPE=partition\n");
    write(root, "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e98c0e9b1a7e", Uint8Array.from([6, 0, 0, 0, 1]));
    write(root, "sys/kernel/security/lockdown", "none [integrity] confidentiality\n");
    write(root, "run/systemd/timesync/synchronized", "");
    write(root, "var/log/apt/history.log", "Start-Date: 2026-05-30  06:10:00\nCommandline: /usr/bin/unattended-upgrade\nUpgrade: openssl:amd64 (1.1.1f-1ubuntu2.22, 1.1.1f-1ubuntu2.23)\nEnd-Date: 2026-05-30  06:10:09\n");
    const rec = await reader({ root, osquery: "off", min_os_version: { ubuntu: "22.04" }, controls: { firewall: false, lockdown: "integrity" } }, now).collect();
    assert.equal(rec.id, "node-7");
    assert.ok(rec.keys.includes("4c4c4544004e3710804fb4c04f4e4a32"));
    const c = rec.posture.kind === "host" ? rec.posture.controls : [];
    const byName = Object.fromEntries(c.map((x) => [x.control, x]));
    assert.equal(byName["disk_encryption:/"]!.status, "ok");
    assert.match(byName["disk_encryption:/"]!.detail, /dm-1 \(LVM\) → dm-0 \(CRYPT-LUKS2\): dm-crypt LUKS2/);
    assert.deepEqual([byName.os_version!.status, byName.os_version!.code], ["failed", "DEVICE_OS_OUTDATED"]);
    assert.equal(byName.security_updates!.status, "ok");
    assert.match(byName.security_updates!.detail, /security update \(unattended-upgrades\)/);
    assert.equal(byName.secure_boot!.status, "ok");
    assert.equal(byName.lockdown!.status, "ok");
    assert.equal(byName.time_sync!.status, "ok");
  });
});

describe("through osquery", () => {
  test("the built-in controls come from osquery tables, and custom SQL passes on one row", async () => {
    const bin = join(dir, "osqueryi");
    const script = `#!/bin/sh
if [ "$1" = "--version" ]; then echo "osqueryi version 5.12.1"; exit 0; fi
case "$2" in
  *filevault_status*) echo '[]' ;;
  *disk_encryption*) echo '[{"name":"/dev/dm-0","encrypted":"1","type":"LUKS2"}]' ;;
  *secureboot*) echo '[{"secure_boot":"0"}]' ;;
  *os_version*) echo '[{"version":"12.5"}]' ;;
  *osquery_info*) echo '[{"version":"5.12.1"}]' ;;
  *) echo "unknown table" >&2; exit 1 ;;
esac
`;
    writeFileSync(bin, script);
    chmodSync(bin, 0o755);
    const rec = await reader({
      osqueryi: bin,
      min_os_version: { debian: "12", ubuntu: "22.04" },
      controls: { firewall: false, security_updates: false, time_sync: false },
      queries: [
        { name: "osquery-alive", sql: "SELECT version FROM osquery_info;" },
        { name: "filevault", sql: "SELECT 1 FROM disk_encryption WHERE filevault_status = 'on';", code: "DEVICE_UNENCRYPTED" },
        { name: "broken", sql: "SELECT * FROM nope;" },
      ],
    }).collect();
    const c = rec.posture.kind === "host" ? rec.posture.controls : [];
    const byName = Object.fromEntries(c.map((x) => [x.control, x]));
    assert.deepEqual([byName["disk_encryption:/"]!.status, byName["disk_encryption:/"]!.via], ["ok", "osquery"]);
    assert.deepEqual([byName.secure_boot!.status, byName.secure_boot!.via], ["failed", "osquery"]);
    if (byName.os_version) assert.equal(byName.os_version.via, "osquery");
    assert.equal(byName["query:osquery-alive"]!.status, "ok");
    assert.deepEqual([byName["query:filevault"]!.status, byName["query:filevault"]!.code], ["failed", "DEVICE_UNENCRYPTED"]);
    assert.equal(byName["query:broken"]!.status, "unknown");
  });

  test("osquery: required without osqueryi is unknown; auto without it falls back to native reads", async () => {
    const rec = await reader({ osquery: "required", osqueryi: join(dir, "no-osqueryi"), controls: { disk_encryption: false, firewall: false, security_updates: false, secure_boot: false, time_sync: false } }).collect();
    const c = rec.posture.kind === "host" ? rec.posture.controls : [];
    assert.deepEqual(c.map((x) => [x.control, x.status]), [["osquery", "unknown"]]);
    const auto = await reader({ osqueryi: join(dir, "no-osqueryi"), controls: { firewall: false, security_updates: false, time_sync: false } }).collect();
    const a = auto.posture.kind === "host" ? auto.posture.controls : [];
    assert.ok(a.every((x) => x.via !== "osquery"));
  });
});
