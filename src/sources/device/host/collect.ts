/**
 * Reads the posture of the host vigil runs on (or, as a sidecar, of the node mounted under `root`):
 * each control becomes `ok`, `failed` (with its reason code) or `unknown` (with what stood in the
 * way: a missing tool, a read that needs root, a deadline). Every read is bounded in time; nothing
 * needs root except the firewall ruleset, whose reason says so.
 *
 * Where `osqueryi` is installed (and `osquery` is not `off`), disk encryption, the OS version, the
 * iptables INPUT policy and secure boot come from its tables, so a host check and a Fleet policy can
 * share SQL; a control osquery cannot answer falls back to the native read.
 */
import { hostname as systemHostname } from "node:os";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { ControlResult, DeviceRecord } from "../model.ts";
import { compareVersions, keysOf, usableSerial } from "../model.ts";
import { DEVICE_REASONS as R } from "../reasons.ts";
import type { HostConnection } from "../schema.ts";
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
  type InputPolicy,
  type OsRelease,
} from "./parse.ts";
import { readBytes, readText, run, type Read } from "./probe.ts";

const SECURE_BOOT_VAR = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e98c0e9b1a7e";
const DAY = 86_400_000;

const ok = (control: string, code: string, detail: string, via?: string): ControlResult => ({ control, status: "ok", code, detail, ...(via ? { via } : {}) });
const failed = (control: string, code: string, detail: string, via?: string): ControlResult => ({ control, status: "failed", code, detail, ...(via ? { via } : {}) });
const unknown = (control: string, code: string, detail: string, via?: string): ControlResult => ({ control, status: "unknown", code, detail, ...(via ? { via } : {}) });

/** Why a tool's refusal happened, in words the operator can act on. */
function needsRoot(text: string): boolean {
  return /operation not permitted|permission denied|must be root|EACCES|EPERM/i.test(text);
}

export class HostReader {
  readonly #c: HostConnection;
  readonly #now: () => number;
  #osquery: Promise<boolean> | undefined;

  constructor(config: HostConnection, now: () => number) {
    this.#c = config;
    this.#now = now;
  }

  #path(p: string): string {
    return join(this.#c.root, p);
  }

  #read(p: string): Promise<Read<string>> {
    return readText(this.#path(p), this.#c.control_timeout);
  }

  #run(argv: readonly string[]) {
    return run(argv, this.#c.control_timeout);
  }

  /** Whether osquery answers here (asked once per reader). */
  #hasOsquery(): Promise<boolean> {
    if (this.#c.osquery === "off") return Promise.resolve(false);
    return (this.#osquery ??= this.#run([this.#c.osqueryi, "--version"]).then((r) => r.ok && r.value.exitCode === 0));
  }

  /** Rows of an osquery SQL statement, or why there are none. */
  async query(sql: string): Promise<Read<Record<string, string>[]>> {
    const r = await this.#run([this.#c.osqueryi, "--json", sql]);
    if (!r.ok) return r;
    if (r.value.exitCode !== 0) return { ok: false, code: "EXIT", message: `osqueryi exited ${r.value.exitCode}: ${r.value.stderr.trim().slice(0, 200)}` };
    try {
      return { ok: true, value: parseOsqueryRows(r.value.stdout) };
    } catch (err) {
      return { ok: false, code: "MALFORMED", message: (err as Error).message };
    }
  }

  /** The whole host as one device record. */
  async collect(): Promise<DeviceRecord> {
    const c = this.#c;
    const [os, name, machineId, serial] = await Promise.all([this.osRelease(), this.hostname(), this.#read("etc/machine-id"), this.#read("sys/class/dmi/id/product_serial")]);
    const controls: Promise<ControlResult | ControlResult[]>[] = [];
    if (c.controls.disk_encryption) for (const m of c.controls.disk_encryption.mounts) controls.push(this.diskEncryption(m));
    if (c.controls.firewall) controls.push(this.firewall());
    const minVersion = os && minFor(c.min_os_version, os);
    if (os && minVersion) controls.push(this.osVersion(os, minVersion));
    if (c.controls.security_updates) controls.push(this.securityUpdates(c.controls.security_updates.max_age));
    if (c.controls.secure_boot) controls.push(this.secureBoot());
    if (c.controls.lockdown !== "none") controls.push(this.lockdown(c.controls.lockdown));
    if (c.controls.time_sync) controls.push(this.timeSync());
    for (const s of c.controls.services) controls.push(this.service(s));
    for (const f of c.controls.files) controls.push(this.file(f));
    for (const cmd of c.controls.commands) controls.push(this.command(cmd));
    for (const q of c.queries) controls.push(this.customQuery(q.name, q.sql, q.code));
    if (c.osquery === "required" && !(await this.#hasOsquery())) controls.push(Promise.resolve(unknown("osquery", R.DEVICE_CONTROL_UNKNOWN, `osquery is required but ${c.osqueryi} does not answer`)));
    const results = (await Promise.all(controls)).flat();
    const id = name.toLowerCase();
    const serialNo = usableSerial(serial.ok ? serial.value.trim() : undefined);
    return {
      type: "host",
      id,
      name,
      hostname: name,
      ...(serialNo !== undefined ? { serial: serialNo } : {}),
      keys: keysOf([id, machineId.ok ? machineId.value.trim() : undefined, serialNo]),
      users: [],
      platform: os?.id ?? "linux",
      ...(os?.versionId ? { osVersion: os.versionId } : {}),
      managed: true,
      observedAt: this.#now(),
      posture: { kind: "host", controls: results },
    };
  }

  async osRelease(): Promise<OsRelease | undefined> {
    const etc = await this.#read("etc/os-release");
    const text = etc.ok ? etc : await this.#read("usr/lib/os-release");
    return text.ok ? parseOsRelease(text.value) : undefined;
  }

  async hostname(): Promise<string> {
    if (this.#c.hostname) return this.#c.hostname;
    if (this.#c.root === "/") return systemHostname();
    const h = await this.#read("etc/hostname");
    return h.ok && h.value.trim() ? h.value.trim() : systemHostname();
  }

  // -------------------------------------------------------------------------------------------
  // Disk encryption

  async diskEncryption(mountPoint: string): Promise<ControlResult> {
    const control = `disk_encryption:${mountPoint}`;
    if (await this.#hasOsquery()) {
      const sql = `SELECT d.name, d.encrypted, d.type FROM mounts m JOIN disk_encryption d ON d.name = m.device_alias WHERE m.path = '${mountPoint.replace(/'/g, "''")}';`;
      const rows = await this.query(sql);
      if (rows.ok && rows.value.length > 0) {
        const row = rows.value[0]!;
        const encrypted = row.encrypted === "1";
        const detail = `${mountPoint} is on ${row.name ?? "?"}${row.type ? ` (${row.type})` : ""}, ${encrypted ? "encrypted" : "not encrypted"}`;
        return encrypted ? ok(control, R.DEVICE_UNENCRYPTED, detail, "osquery") : failed(control, R.DEVICE_UNENCRYPTED, detail, "osquery");
      }
    }
    const self = this.#c.root === "/" ? "proc/self/mountinfo" : "proc/1/mountinfo";
    const info = await this.#read(self);
    if (!info.ok) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `cannot read ${self}: ${info.message}`, "sysfs");
    const mount = mountAt(parseMountinfo(info.value), mountPoint);
    if (!mount) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `nothing is mounted at ${mountPoint}`, "sysfs");
    let device = mount.device;
    if (device.startsWith("0:")) {
      // btrfs, overlay, tmpfs, zfs, nfs: no block device of their own; a /dev source may still name one.
      const dev = mount.source.startsWith("/dev/") ? await stat(this.#path(mount.source)).catch(() => undefined) : undefined;
      if (!dev || !dev.isBlockDevice()) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `${mountPoint} is ${mount.fsType} (${mount.source}), which has no block device to inspect`, "sysfs");
      device = `${Math.floor(dev.rdev / 256) & 0xfff}:${(dev.rdev & 0xff) | ((dev.rdev >> 12) & 0xfff00)}`;
    }
    const tree = await this.#blockTree(device);
    const enc = encryptionOf(device, tree);
    if (!enc) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `cannot follow the device of ${mountPoint} (${mount.source}, ${device}) in /sys`, "sysfs");
    const detail = `${mountPoint} (${mount.fsType}) is on ${enc.chain}: ${enc.encrypted ? `dm-crypt ${enc.kind ?? ""}`.trim() : "not encrypted"}`;
    return enc.encrypted ? ok(control, R.DEVICE_UNENCRYPTED, detail, "sysfs") : failed(control, R.DEVICE_UNENCRYPTED, detail, "sysfs");
  }

  /** The devices below `start` as sysfs links them (`slaves/`), read without root. */
  async #blockTree(start: string): Promise<Map<string, BlockDevice>> {
    const tree = new Map<string, BlockDevice>();
    const queue = [start];
    while (queue.length > 0 && tree.size < 64) {
      const majmin = queue.shift()!;
      if (tree.has(majmin)) continue;
      const dir = this.#path(`sys/dev/block/${majmin}`);
      const uevent = await readText(join(dir, "uevent"), this.#c.control_timeout);
      if (!uevent.ok) continue;
      const name = /^DEVNAME=(.*)$/m.exec(uevent.value)?.[1] ?? majmin;
      const uuid = await readText(join(dir, "dm", "uuid"), this.#c.control_timeout);
      const slaves = await readdir(join(dir, "slaves")).catch(() => [] as string[]);
      const below: string[] = [];
      for (const s of slaves) {
        const dev = await readText(join(dir, "slaves", s, "dev"), this.#c.control_timeout);
        if (dev.ok) below.push(dev.value.trim());
      }
      tree.set(majmin, { name, ...(uuid.ok && uuid.value.trim() ? { dmUuid: uuid.value.trim() } : {}), below });
      queue.push(...below);
    }
    return tree;
  }

  // -------------------------------------------------------------------------------------------
  // Firewall

  async firewall(): Promise<ControlResult> {
    const control = "firewall";
    const ipv6Off = await this.#read("proc/sys/net/ipv6/conf/all/disable_ipv6");
    const needV6 = !(ipv6Off.ok && ipv6Off.value.trim() === "1");
    const judge = (policies: InputPolicy[], via: string): ControlResult => {
      const v = firewallVerdict(policies);
      const good = v.ipv4 && (v.ipv6 || !needV6);
      const missing = [!v.ipv4 ? "IPv4" : "", !v.ipv6 && needV6 ? "IPv6" : ""].filter(Boolean).join(" and ");
      return good ? ok(control, R.DEVICE_FIREWALL_OFF, `default-deny input: ${v.detail}`, via) : failed(control, R.DEVICE_FIREWALL_OFF, `no default-deny input policy for ${missing}: ${v.detail}`, via);
    };
    const nft = await this.#run(["nft", "-j", "list", "ruleset"]);
    let refusal: string | undefined;
    if (nft.ok && nft.value.exitCode === 0) {
      try {
        const policies = parseNftRuleset(nft.value.stdout);
        if (policies.length > 0) return judge(policies, "nft");
      } catch (err) {
        return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `nft printed something that is not its JSON ruleset: ${(err as Error).message}`, "nft");
      }
    } else if (nft.ok && needsRoot(nft.value.stderr)) refusal = "reading the nftables ruleset needs root (CAP_NET_ADMIN)";
    if (await this.#hasOsquery()) {
      const rows = await this.query("SELECT DISTINCT chain, policy FROM iptables WHERE filter_name = 'filter' AND chain = 'INPUT';");
      if (rows.ok && rows.value.length > 0) return judge(rows.value.map((r) => ({ family: "ip", table: "filter", chain: "INPUT", policy: (r.policy ?? "").toLowerCase() })), "osquery");
    }
    const policies: InputPolicy[] = [];
    for (const [tool, family] of [["iptables", "ip"], ["ip6tables", "ip6"]] as const) {
      const r = await this.#run([tool, "-S", "INPUT"]);
      if (!r.ok) continue;
      if (r.value.exitCode !== 0) {
        if (needsRoot(r.value.stderr)) refusal = `reading the ${tool} rules needs root (CAP_NET_ADMIN)`;
        continue;
      }
      const policy = parseIptablesPolicy(r.value.stdout);
      if (policy) policies.push({ family, table: "filter", chain: "INPUT", policy });
    }
    if (policies.length > 0) return judge(policies, "iptables");
    if (refusal) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, refusal, "nft");
    if (nft.ok) return judge([], "nft");
    return unknown(control, R.DEVICE_CONTROL_UNKNOWN, "neither nft nor iptables is installed; cannot read the firewall", "nft");
  }

  // -------------------------------------------------------------------------------------------
  // OS version and updates

  async osVersion(os: OsRelease, min: string): Promise<ControlResult> {
    const control = "os_version";
    let version = os.versionId;
    let via = "os-release";
    if (await this.#hasOsquery()) {
      const rows = await this.query("SELECT version FROM os_version;");
      if (rows.ok && rows.value[0]?.version) {
        version = /\d+(\.\d+)*/.exec(rows.value[0].version)?.[0] ?? version;
        via = "osquery";
      }
    }
    if (!version) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `${os.prettyName ?? os.id ?? "the OS"} reports no version`, via);
    const detail = `${os.prettyName ?? os.id} (version ${version}; at least ${min} required)`;
    return compareVersions(version, min) >= 0 ? ok(control, R.DEVICE_OS_OUTDATED, detail, via) : failed(control, R.DEVICE_OS_OUTDATED, detail, via);
  }

  async securityUpdates(maxAgeMs: number): Promise<ControlResult> {
    const control = "security_updates";
    const current = await this.#read("var/log/apt/history.log");
    if (!current.ok) {
      const why = current.code === "ENOENT" ? "no apt history (/var/log/apt/history.log); only apt-based systems are read" : current.code === "EACCES" ? "reading /var/log/apt/history.log needs permission" : current.message;
      return unknown(control, R.DEVICE_CONTROL_UNKNOWN, why, "apt");
    }
    let state = updateState(parseAptHistory(current.value));
    if (state.lastSecurity === undefined && state.lastUpgrade === undefined) {
      // The log rotates monthly: a quiet month leaves the last upgrade in the previous file.
      const rotated = await readBytes(this.#path("var/log/apt/history.log.1.gz"), this.#c.control_timeout, 8 * 1024 * 1024);
      if (rotated.ok) {
        try {
          state = updateState(parseAptHistory(gunzipSync(rotated.value, { maxOutputLength: 32 * 1024 * 1024 }).toString("utf8")));
        } catch {
          // A damaged rotated log says nothing; the current one already said "nothing recent".
        }
      }
    }
    const last = state.lastSecurity ?? state.lastUpgrade;
    if (last === undefined) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, "the apt history records no upgrade", "apt");
    const age = this.#now() - last;
    const kind = state.lastSecurity !== undefined ? "security update (unattended-upgrades)" : "package upgrade";
    const detail = `last ${kind} ${new Date(last).toISOString()}, ${Math.floor(age / DAY)} day(s) ago (at most ${Math.round(maxAgeMs / DAY)} allowed)`;
    return age <= maxAgeMs ? ok(control, R.DEVICE_OS_OUTDATED, detail, "apt") : failed(control, R.DEVICE_OS_OUTDATED, detail, "apt");
  }

  // -------------------------------------------------------------------------------------------
  // Boot integrity

  async secureBoot(): Promise<ControlResult> {
    const control = "secure_boot";
    if (await this.#hasOsquery()) {
      const rows = await this.query("SELECT secure_boot FROM secureboot;");
      if (rows.ok && rows.value[0]?.secure_boot !== undefined) {
        const on = rows.value[0].secure_boot === "1";
        return on ? ok(control, R.DEVICE_SECURE_BOOT_OFF, "secure boot is enabled", "osquery") : failed(control, R.DEVICE_SECURE_BOOT_OFF, "secure boot is disabled", "osquery");
      }
    }
    const efi = await stat(this.#path("sys/firmware/efi")).catch(() => undefined);
    if (!efi) return failed(control, R.DEVICE_SECURE_BOOT_OFF, "the machine did not boot through UEFI (no /sys/firmware/efi), so secure boot is not in effect", "efivars");
    const v = await readBytes(this.#path(SECURE_BOOT_VAR), this.#c.control_timeout, 64);
    if (!v.ok) {
      if (v.code === "ENOENT") return failed(control, R.DEVICE_SECURE_BOOT_OFF, "the firmware has no SecureBoot variable (secure boot unsupported or off)", "efivars");
      return unknown(control, R.DEVICE_CONTROL_UNKNOWN, v.code === "EACCES" ? "reading the SecureBoot EFI variable needs root on this system" : v.message, "efivars");
    }
    const on = parseSecureBootVariable(v.value);
    if (on === undefined) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, "the SecureBoot EFI variable is too short to read", "efivars");
    return on ? ok(control, R.DEVICE_SECURE_BOOT_OFF, "secure boot is enabled", "efivars") : failed(control, R.DEVICE_SECURE_BOOT_OFF, "secure boot is disabled in the firmware", "efivars");
  }

  async lockdown(wanted: string): Promise<ControlResult> {
    const control = "lockdown";
    const r = await this.#read("sys/kernel/security/lockdown");
    if (!r.ok) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, r.code === "ENOENT" ? "no /sys/kernel/security/lockdown (securityfs not mounted, or a kernel without the lockdown LSM)" : r.message, "securityfs");
    const active = parseLockdown(r.value);
    if (!active) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `cannot read the lockdown level from ${JSON.stringify(r.value.trim().slice(0, 60))}`, "securityfs");
    const detail = `kernel lockdown is ${active} (${wanted} required)`;
    return lockdownAtLeast(active, wanted) ? ok(control, R.DEVICE_LOCKDOWN_OFF, detail, "securityfs") : failed(control, R.DEVICE_LOCKDOWN_OFF, detail, "securityfs");
  }

  // -------------------------------------------------------------------------------------------
  // Time and services

  async timeSync(): Promise<ControlResult> {
    const control = "time_sync";
    if (this.#c.root === "/") {
      const t = await this.#run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"]);
      if (t.ok && t.value.exitCode === 0) {
        const synced = parseTimedatectl(t.value.stdout);
        if (synced !== undefined) return synced ? ok(control, R.DEVICE_TIME_UNSYNCED, "the clock is synchronised (timedatectl)", "timedatectl") : failed(control, R.DEVICE_TIME_UNSYNCED, "timedatectl reports the clock is not synchronised", "timedatectl");
      }
      const c = await this.#run(["chronyc", "-c", "tracking"]);
      if (c.ok && c.value.exitCode === 0) {
        const synced = parseChronyTracking(c.value.stdout);
        if (synced !== undefined) return synced ? ok(control, R.DEVICE_TIME_UNSYNCED, "chrony is synchronised", "chronyc") : failed(control, R.DEVICE_TIME_UNSYNCED, "chrony is not synchronised", "chronyc");
      }
    }
    const marker = await stat(this.#path("run/systemd/timesync/synchronized")).catch(() => undefined);
    if (marker) return ok(control, R.DEVICE_TIME_UNSYNCED, "systemd-timesyncd has synchronised the clock", "timesyncd");
    return unknown(control, R.DEVICE_CONTROL_UNKNOWN, "no timedatectl, chronyc or systemd-timesyncd state answers; cannot tell whether the clock is synchronised", "timedatectl");
  }

  async service(unit: string): Promise<ControlResult> {
    const control = `service:${unit}`;
    const r = await this.#run(["systemctl", "is-active", unit]);
    if (!r.ok) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, r.message, "systemctl");
    const state = r.value.stdout.trim().split("\n")[0] ?? "";
    if (state === "active") return ok(control, R.DEVICE_SERVICE_DOWN, `${unit} is active`, "systemctl");
    if (["inactive", "failed", "activating", "deactivating", "reloading", "maintenance"].includes(state)) return failed(control, R.DEVICE_SERVICE_DOWN, `${unit} is ${state}`, "systemctl");
    return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `systemctl cannot tell (${(r.value.stderr || r.value.stdout).trim().slice(0, 120)})`, "systemctl");
  }

  // -------------------------------------------------------------------------------------------
  // User-defined checks

  async file(f: HostConnection["controls"]["files"][number]): Promise<ControlResult> {
    const control = `file:${f.path}`;
    const st = await stat(this.#path(f.path)).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      if (st.code === "ENOENT") return f.exists ? failed(control, f.code, `${f.path} does not exist`, "file") : ok(control, f.code, `${f.path} does not exist`, "file");
      return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `${f.path}: ${st.code ?? st.message}${st.code === "EACCES" ? " (needs permission to read)" : ""}`, "file");
    }
    if (!f.exists) return failed(control, f.code, `${f.path} exists`, "file");
    const mode = st.mode & 0o7777;
    if (f.max_mode !== undefined && (mode & ~f.max_mode) !== 0) return failed(control, f.code, `${f.path} has mode ${mode.toString(8).padStart(4, "0")}, more than ${f.max_mode.toString(8).padStart(4, "0")}`, "file");
    if (f.owner_uid !== undefined && st.uid !== f.owner_uid) return failed(control, f.code, `${f.path} is owned by uid ${st.uid}, not ${f.owner_uid}`, "file");
    if (f.contains !== undefined) {
      const text = await readText(this.#path(f.path), this.#c.control_timeout);
      if (!text.ok) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, `${f.path}: ${text.code}${text.code === "EACCES" ? " (needs permission to read)" : ""}`, "file");
      if (!new RegExp(f.contains, "m").test(text.value)) return failed(control, f.code, `${f.path} has no line matching /${f.contains}/`, "file");
    }
    return ok(control, f.code, `${f.path} is as required`, "file");
  }

  async command(cmd: HostConnection["controls"]["commands"][number]): Promise<ControlResult> {
    const control = `command:${cmd.name}`;
    const r = await this.#run(cmd.run);
    if (!r.ok) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, r.message, "command");
    if (r.value.exitCode !== cmd.exit_code) return failed(control, cmd.code, `${cmd.run[0]} exited ${r.value.exitCode} (expected ${cmd.exit_code})`, "command");
    if (cmd.stdout !== undefined && !new RegExp(cmd.stdout, "m").test(r.value.stdout)) return failed(control, cmd.code, `${cmd.run[0]} printed nothing matching /${cmd.stdout}/`, "command");
    return ok(control, cmd.code, `${cmd.run[0]} passed`, "command");
  }

  async customQuery(name: string, sql: string, code: string): Promise<ControlResult> {
    const control = `query:${name}`;
    const rows = await this.query(sql);
    if (!rows.ok) return unknown(control, R.DEVICE_CONTROL_UNKNOWN, rows.message, "osquery");
    return rows.value.length > 0 ? ok(control, code, `${rows.value.length} row(s)`, "osquery") : failed(control, code, "no row: the query's condition does not hold", "osquery");
  }
}

/** The minimum version configured for this distribution (its ID, else the first ID_LIKE listed). */
function minFor(mins: Readonly<Record<string, string>>, os: OsRelease): string | undefined {
  const table = new Map(Object.entries(mins).map(([k, v]) => [k.toLowerCase(), v]));
  for (const id of [os.id, ...os.idLike]) if (id && table.has(id)) return table.get(id);
  return undefined;
}
