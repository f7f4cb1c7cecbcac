/** A key path as every message shows it: `communication_policies[0].continuous_verification.interval`. */
export function keyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  return out;
}
