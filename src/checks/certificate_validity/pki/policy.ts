/**
 * Certificate policy processing, RFC 5280 §6.1.2–§6.1.5: the valid_policy_tree with policy
 * mappings, anyPolicy, and the explicit_policy, policy_mapping and inhibit_anyPolicy counters
 * that policyConstraints and inhibitAnyPolicy lower, intersected at the end with the
 * user-initial-policy-set (`initial_policies`).
 *
 * The tree can grow with the product of policies and mappings along the path (the policy-tree
 * denial of service OpenSSL fixed as CVE-2023-0464): it is capped at MAX_NODES, and a path that
 * needs more is refused.
 */
import type { ParsedCertificate } from "../../../plugin/x509/certificate.ts";
import { OID } from "../../../plugin/x509/oids.ts";

export const ANY_POLICY = OID.anyPolicy;
const MAX_NODES = 1000;

export interface PolicyOptions {
  /** user-initial-policy-set. Default [anyPolicy]. */
  readonly initialPolicies?: readonly string[];
  /** initial-explicit-policy: a path must be valid for one of initialPolicies. Default false. */
  readonly requireExplicitPolicy?: boolean;
  /** initial-policy-mapping-inhibit. Default false. */
  readonly inhibitPolicyMapping?: boolean;
  /** initial-any-policy-inhibit. Default false. */
  readonly inhibitAnyPolicy?: boolean;
}

interface Node {
  readonly policy: string;
  expected: Set<string>;
  readonly parent: Node | undefined;
  readonly children: Node[];
  readonly depth: number;
}

export interface PolicyResult {
  /** Why the path fails policy processing; undefined when it passes. */
  readonly problem?: string;
  /** The policies the path is valid for (authorities-constrained ∩ user set); anyPolicy when any. */
  readonly policies: readonly string[];
}

/**
 * Runs policy processing over `path` (leaf first, trust anchor last, as path validation holds it;
 * the anchor only supplies the first issuer and is not itself processed).
 */
export function processPolicies(path: readonly ParsedCertificate[], options: PolicyOptions = {}): PolicyResult {
  const certs = path.slice(0, -1).reverse(); // RFC numbering: certs[0] is cert 1 (issued by the anchor), the leaf is cert n
  const n = certs.length;
  const initial = new Set(options.initialPolicies && options.initialPolicies.length > 0 ? options.initialPolicies : [ANY_POLICY]);
  let explicit = options.requireExplicitPolicy ? 0 : n + 1;
  let inhibitAny = options.inhibitAnyPolicy ? 0 : n + 1;
  let mapping = options.inhibitPolicyMapping ? 0 : n + 1;
  let nodes = 1;
  let root: Node | undefined = { policy: ANY_POLICY, expected: new Set([ANY_POLICY]), parent: undefined, children: [], depth: 0 };
  const grow = (parent: Node, policy: string, expected: Set<string>): void => {
    if (++nodes > MAX_NODES) throw new TooLarge();
    parent.children.push({ policy, expected, parent, children: [], depth: parent.depth + 1 });
  };
  const atDepth = (d: number): Node[] => {
    const out: Node[] = [];
    const walk = (x: Node) => (x.depth === d ? out.push(x) : x.children.forEach(walk));
    if (root) walk(root);
    return out;
  };
  /** Deletes nodes above `depth` that have no children, bottom-up; the tree is NULL when the root goes. */
  const prune = (depth: number): void => {
    for (let d = depth - 1; d >= 0; d--) {
      for (const x of atDepth(d)) {
        if (x.children.length > 0) continue;
        if (x.parent) x.parent.children.splice(x.parent.children.indexOf(x), 1);
        else root = undefined;
      }
    }
  };
  const remove = (x: Node): void => {
    if (x.parent) x.parent.children.splice(x.parent.children.indexOf(x), 1);
    else root = undefined;
  };
  const q = (c: ParsedCertificate) => JSON.stringify(c.subject.text || "(empty subject)");

  try {
    for (let i = 1; i <= n; i++) {
      const cert = certs[i - 1]!;
      const policies = cert.policies;
      // §6.1.3 (d): grow the tree by this certificate's policies.
      if (policies && root) {
        const previous = atDepth(i - 1);
        for (const p of policies) {
          if (p === ANY_POLICY) continue;
          const matching = previous.filter((x) => x.expected.has(p));
          const parents = matching.length > 0 ? matching : previous.filter((x) => x.policy === ANY_POLICY);
          for (const x of parents) grow(x, p, new Set([p]));
        }
        if (policies.includes(ANY_POLICY) && (inhibitAny > 0 || (i < n && cert.selfIssued))) {
          for (const x of previous) {
            const present = new Set(x.children.map((c) => c.policy));
            for (const e of x.expected) if (!present.has(e)) grow(x, e, new Set([e]));
          }
        }
        prune(i);
      } else {
        // §6.1.3 (e): a certificate without policies empties the tree.
        root = undefined;
      }
      // §6.1.3 (f)
      if (explicit <= 0 && !root) return { problem: `no certificate policy is valid for the path at ${q(cert)}, and an explicit policy is required`, policies: [] };
      if (i === n) break;

      // §6.1.4 (a), (b): policy mappings.
      for (const m of cert.policyMappings ?? []) {
        if (m.issuerDomainPolicy === ANY_POLICY || m.subjectDomainPolicy === ANY_POLICY) {
          return { problem: `${q(cert)} maps anyPolicy, which RFC 5280 forbids`, policies: [] };
        }
      }
      const mapped = new Map<string, Set<string>>();
      for (const m of cert.policyMappings ?? []) {
        const set = mapped.get(m.issuerDomainPolicy) ?? new Set<string>();
        set.add(m.subjectDomainPolicy);
        mapped.set(m.issuerDomainPolicy, set);
      }
      for (const [idp, subjects] of mapped) {
        const level = atDepth(i);
        if (mapping > 0) {
          const hits = level.filter((x) => x.policy === idp);
          if (hits.length > 0) for (const x of hits) x.expected = new Set(subjects);
          else {
            const any = level.find((x) => x.policy === ANY_POLICY);
            if (any?.parent) grow(any.parent, idp, new Set(subjects));
          }
        } else {
          for (const x of level.filter((y) => y.policy === idp)) remove(x);
          prune(i);
        }
      }
      // §6.1.4 (h), (i), (j): counters.
      if (!cert.selfIssued) {
        if (explicit > 0) explicit--;
        if (mapping > 0) mapping--;
        if (inhibitAny > 0) inhibitAny--;
      }
      const pc = cert.policyConstraints;
      if (pc?.requireExplicitPolicy !== undefined) explicit = Math.min(explicit, pc.requireExplicitPolicy);
      if (pc?.inhibitPolicyMapping !== undefined) mapping = Math.min(mapping, pc.inhibitPolicyMapping);
      if (cert.inhibitAnyPolicy !== undefined) inhibitAny = Math.min(inhibitAny, cert.inhibitAnyPolicy);
    }

    // §6.1.5 wrap-up on the leaf.
    const leaf = certs[n - 1];
    if (explicit > 0) explicit--;
    if (leaf?.policyConstraints?.requireExplicitPolicy === 0) explicit = 0;
    // (g) the intersection with the user-initial-policy-set.
    if (root && !initial.has(ANY_POLICY)) {
      const all: Node[] = [];
      const walk = (x: Node) => {
        all.push(x);
        x.children.forEach(walk);
      };
      walk(root);
      const validNodeSet = all.filter((x) => x.parent?.policy === ANY_POLICY);
      for (const x of validNodeSet) if (x.policy !== ANY_POLICY && !initial.has(x.policy)) remove(x);
      const leafAny = atDepth(n).find((x) => x.policy === ANY_POLICY);
      if (leafAny?.parent) {
        const parent = leafAny.parent;
        const present = new Set(validNodeSet.map((x) => x.policy));
        remove(leafAny);
        for (const p of initial) if (!present.has(p)) grow(parent, p, new Set([p]));
      }
      prune(n);
    }
    const valid = root ? [...new Set(atDepth(n).map((x) => x.policy))] : [];
    if (explicit <= 0 && !root) {
      const wanted = [...initial].join(", ");
      return { problem: `no certificate policy of the path is acceptable (wanted ${wanted}) and an explicit policy is required`, policies: [] };
    }
    return { policies: valid };
  } catch (err) {
    if (err instanceof TooLarge) return { problem: `the certificate policy tree of the path exceeds ${MAX_NODES} nodes`, policies: [] };
    throw err;
  }
}

class TooLarge extends Error {}
