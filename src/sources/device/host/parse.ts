/**
 * Pure readers of what a Linux host says about itself: the text of files under /etc, /proc and /sys
 * and the output of the tools that report firewall, time and service state. Each takes the raw text
 * and returns facts, so the evaluation can be tested on recorded inputs of machines the tests do not
 * run on.
 */

/** `/etc/os-release`. */
export interface OsRelease {
  readonly id?: string;
  readonly idLike: readonly string[];
  readonly versionId?: string;
  readonly prettyName?: string;
}

export function parseOsRelease(text: string): OsRelease {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    values.set(m[1]!, v.replace(/\\(["'\\$`])/g, "$1"));
  }
  const id = values.get("ID")?.toLowerCase();
  const versionId = values.get("VERSION_ID");
  const prettyName = values.get("PRETTY_NAME");
  return {
    ...(id ? { id } : {}),
    idLike: (values.get("ID_LIKE") ?? "").toLowerCase().split(/\s+/).filter(Boolean),
    ...(versionId ? { versionId } : {}),
    ...(prettyName ? { prettyName } : {}),
  };
}

/** One line of `/proc/<pid>/mountinfo`. */
export interface Mount {
  readonly mountPoint: string;
  /** `major:minor` of the filesystem's device (`0:…` for filesystems without one). */
  readonly device: string;
  readonly fsType: string;
  /** The mount source (`/dev/mapper/root`, `tmpfs`, …). */
  readonly source: string;
}

/** mountinfo escapes spaces and the like as octal (`\040`). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split("\n")) {
    const parts = line.trim().split(" ");
    const dash = parts.indexOf("-");
    if (parts.length < 10 || dash < 6) continue;
    out.push({ device: parts[2]!, mountPoint: unescape(parts[4]!), fsType: parts[dash + 1] ?? "", source: unescape(parts[dash + 2] ?? "") });
  }
  return out;
}

/** The mount that serves `path` exactly (the last one mounted there wins, as the kernel shows it). */
export function mountAt(mounts: readonly Mount[], path: string): Mount | undefined {
  const want = path.length > 1 ? path.replace(/\/+$/, "") : path;
  let found: Mount | undefined;
  for (const m of mounts) if (m.mountPoint === want) found = m;
  return found;
}

/** A block device as sysfs describes it (`/sys/dev/block/<maj:min>`). */
export interface BlockDevice {
  readonly name: string;
  /** `dm/uuid` for device-mapper devices: `CRYPT-LUKS2-…` for dm-crypt, `LVM-…` for LVM. */
  readonly dmUuid?: string;
  /** `major:minor` of the devices below it (`slaves/`). */
  readonly below: readonly string[];
}

export interface Encryption {
  readonly encrypted: boolean;
  /** `LUKS2`, `LUKS1`, `PLAIN`, … for dm-crypt. */
  readonly kind?: string;
  /** The device chain from the filesystem down, for evidence: `dm-1 (LVM) → dm-0 (CRYPT-LUKS2) → sda3`. */
  readonly chain: string;
}

/**
 * Whether a filesystem's device sits on dm-crypt anywhere below it (LUKS directly, or LVM on LUKS).
 * Every path down must be encrypted: an LVM volume spanning a plain disk and a LUKS disk is not.
 */
export function encryptionOf(device: string, tree: ReadonlyMap<string, BlockDevice>, depth = 0): Encryption | undefined {
  const dev = tree.get(device);
  if (!dev || depth > 16) return undefined;
  const crypt = dev.dmUuid?.startsWith("CRYPT-") ? dev.dmUuid.split("-")[1] : undefined;
  const label = `${dev.name}${dev.dmUuid ? ` (${dev.dmUuid.split("-").slice(0, crypt ? 2 : 1).join("-")})` : ""}`;
  if (crypt) return { encrypted: true, kind: crypt, chain: label };
  if (dev.below.length === 0) return { encrypted: false, chain: label };
  const parts = dev.below.map((b) => encryptionOf(b, tree, depth + 1));
  if (parts.some((p) => p === undefined)) return undefined;
  const known = parts as Encryption[];
  const encrypted = known.every((p) => p.encrypted);
  const kind = known.find((p) => p.kind)?.kind;
  return { encrypted, ...(encrypted && kind ? { kind } : {}), chain: `${label} → ${known.map((p) => p.chain).join(" + ")}` };
}

/** An input hook's default policy in one address family. */
export interface InputPolicy {
  /** `ip`, `ip6`, `inet` (nftables families; iptables maps to ip/ip6). */
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly policy: string;
}

/** Base chains on the input hook from `nft -j list ruleset`. Throws on text that is not its JSON. */
export function parseNftRuleset(json: string): InputPolicy[] {
  const doc = JSON.parse(json) as { nftables?: unknown };
  if (!doc || !Array.isArray(doc.nftables)) throw new Error("not nft JSON output (no nftables list)");
  const out: InputPolicy[] = [];
  for (const item of doc.nftables as Record<string, unknown>[]) {
    const chain = item?.chain as Record<string, unknown> | undefined;
    if (!chain || chain.hook !== "input" || chain.type !== "filter") continue;
    out.push({ family: String(chain.family ?? ""), table: String(chain.table ?? ""), chain: String(chain.name ?? ""), policy: String(chain.policy ?? "accept").toLowerCase() });
  }
  return out;
}

/** The INPUT chain's policy from `iptables -S INPUT` (or `ip6tables`); undefined when the output has none. */
export function parseIptablesPolicy(text: string): string | undefined {
  return /^-P INPUT (\S+)/m.exec(text)?.[1]?.toLowerCase();
}

export interface FirewallVerdict {
  readonly ipv4: boolean;
  readonly ipv6: boolean;
  readonly detail: string;
}

/**
 * Default deny on input, per family: some input base chain of the family (or of `inet`, which covers
 * both) drops what no rule accepts. A chain that only counts or logs with policy accept is not deny.
 */
export function firewallVerdict(policies: readonly InputPolicy[]): FirewallVerdict {
  const denies = (p: InputPolicy) => p.policy === "drop" || p.policy === "reject";
  const ipv4 = policies.some((p) => denies(p) && (p.family === "ip" || p.family === "inet"));
  const ipv6 = policies.some((p) => denies(p) && (p.family === "ip6" || p.family === "inet"));
  const detail = policies.length === 0 ? "no input chain" : policies.map((p) => `${p.family} ${p.table}/${p.chain} policy ${p.policy}`).join(", ");
  return { ipv4, ipv6, detail };
}

/** One transaction of `/var/log/apt/history.log`. */
export interface AptRun {
  /** Start-Date in epoch ms (the log is in local time). */
  readonly at: number;
  readonly commandline: string;
  readonly upgraded: boolean;
  readonly installed: boolean;
}

export function parseAptHistory(text: string): AptRun[] {
  const out: AptRun[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const start = /^Start-Date:\s*(\d{4})-(\d{2})-(\d{2})\s+(\d{2}):(\d{2}):(\d{2})/m.exec(block);
    if (!start) continue;
    const [y, mo, d, h, mi, s] = start.slice(1).map(Number) as [number, number, number, number, number, number];
    out.push({
      at: new Date(y, mo - 1, d, h, mi, s).getTime(),
      commandline: /^Commandline:\s*(.*)$/m.exec(block)?.[1]?.trim() ?? "",
      upgraded: /^Upgrade:/m.test(block),
      installed: /^Install:/m.test(block),
    });
  }
  return out;
}

export interface UpdateState {
  /** Last run of unattended-upgrades that changed packages (it installs security updates only, by default). */
  readonly lastSecurity?: number;
  /** Last run that upgraded anything. */
  readonly lastUpgrade?: number;
}

export function updateState(runs: readonly AptRun[]): UpdateState {
  let lastSecurity: number | undefined;
  let lastUpgrade: number | undefined;
  for (const r of runs) {
    if (!r.upgraded && !r.installed) continue;
    if (r.upgraded) lastUpgrade = Math.max(lastUpgrade ?? 0, r.at);
    if (/unattended-upgrade/.test(r.commandline)) lastSecurity = Math.max(lastSecurity ?? 0, r.at);
  }
  return { ...(lastSecurity !== undefined ? { lastSecurity } : {}), ...(lastUpgrade !== undefined ? { lastUpgrade } : {}) };
}

/** The active level of `/sys/kernel/security/lockdown` (`[none] integrity confidentiality`). */
export function parseLockdown(text: string): string | undefined {
  return /\[(\w+)\]/.exec(text)?.[1];
}

const LOCKDOWN_RANK: Record<string, number> = { none: 0, integrity: 1, confidentiality: 2 };

export function lockdownAtLeast(active: string, wanted: string): boolean {
  return (LOCKDOWN_RANK[active] ?? -1) >= (LOCKDOWN_RANK[wanted] ?? 99);
}

/** The EFI `SecureBoot` variable: four attribute bytes, then one byte, 1 when enabled. */
export function parseSecureBootVariable(data: Uint8Array): boolean | undefined {
  if (data.length < 5) return undefined;
  return data[4] === 1;
}

/** `timedatectl show -p NTPSynchronized --value` or the full `timedatectl show`. */
export function parseTimedatectl(text: string): boolean | undefined {
  const m = /^(?:NTPSynchronized=)?(yes|no)$/m.exec(text.trim());
  return m ? m[1] === "yes" : undefined;
}

/** `chronyc -c tracking`: CSV whose last field is the leap status (`Normal` when synchronised). */
export function parseChronyTracking(text: string): boolean | undefined {
  const line = text.trim().split("\n")[0];
  if (!line || !line.includes(",")) return undefined;
  const leap = line.split(",").at(-1)!.trim();
  return leap === "Normal" || leap === "Insert second" || leap === "Delete second" ? true : leap === "Not synchronised" ? false : undefined;
}

/** `osqueryi --json` output: a list of rows (all values strings). Throws on anything else. */
export function parseOsqueryRows(json: string): Record<string, string>[] {
  const rows = JSON.parse(json) as unknown;
  if (!Array.isArray(rows) || rows.some((r) => r === null || typeof r !== "object" || Array.isArray(r))) throw new Error("osqueryi did not print a JSON list of rows");
  return rows as Record<string, string>[];
}
