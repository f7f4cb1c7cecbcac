/**
 * CPython's hash of a tuple of non-negative integers (the xxHash-based tuplehash of CPython 3.8
 * and later), in 32-bit halves because JavaScript numbers hold 53 bits. CAD OSE keys its
 * semi-contexts by these hashes and breaks ties between active contexts by them, so a faithful
 * port has to produce the same values.
 */

/** A 64-bit value as two unsigned 32-bit halves. */
export interface Hash64 {
  readonly hi: number;
  readonly lo: number;
}

// CPython's _PyHASH_XXPRIME_1, _2 and _5.
const P1_HI = 0x9e3779b1, P1_LO = 0x85ebca87;
const P2_HI = 0xc2b2ae3d, P2_LO = 0x27d4eb4f;
const P5_HI = 0x27d4eb2f, P5_LO = 0x165667c5;
/** _PyHASH_XXPRIME_5 ^ 3527539, the length mangle that keeps hash(()) at its historical value. */
const LEN_HI = P5_HI, LEN_LO = (P5_LO ^ 3527539) >>> 0;
/** hash(int) is n mod 2^61−1; facts stay far below that. */
const MODULUS_61 = 2 ** 61 - 1;

let rHi = 0;
let rLo = 0;

/** (aHi:aLo · bHi:bLo) mod 2^64 into rHi:rLo. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const a0 = aLo & 0xffff, a1 = aLo >>> 16;
  const b0 = bLo & 0xffff, b1 = bLo >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33, exact
  const low = a0 * b0 + (mid % 65536) * 65536; // < 2^33, exact
  rLo = low >>> 0;
  const carry = Math.floor(low / 4294967296);
  rHi = (a1 * b1 + Math.floor(mid / 65536) + carry + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
}

/** hash(tuple(items)) for non-negative integers below 2^53. */
export function tupleHash(items: readonly number[]): Hash64 {
  let hi = P5_HI;
  let lo = P5_LO;
  for (const item of items) {
    const lane = item < MODULUS_61 ? item : item % MODULUS_61;
    const laneHi = Math.floor(lane / 4294967296) >>> 0;
    const laneLo = lane >>> 0;
    // acc += lane * P2
    mul64(laneHi, laneLo, P2_HI, P2_LO);
    const sumLo = lo + rLo;
    lo = sumLo >>> 0;
    hi = (hi + rHi + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
    // acc = rotl(acc, 31)
    const nHi = ((hi << 31) | (lo >>> 1)) >>> 0;
    const nLo = ((lo << 31) | (hi >>> 1)) >>> 0;
    // acc *= P1
    mul64(nHi, nLo, P1_HI, P1_LO);
    hi = rHi;
    lo = rLo;
  }
  const addLo = (LEN_LO ^ items.length) >>> 0;
  const sumLo = lo + addLo;
  lo = sumLo >>> 0;
  hi = (hi + LEN_HI + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
  if (hi === 0xffffffff && lo === 0xffffffff) return { hi: 0, lo: 1546275796 };
  return { hi, lo };
}

/** Orders hashes as CPython orders the signed Py_hash_t values. */
export function compareHash(a: Hash64, b: Hash64): number {
  const ah = a.hi | 0, bh = b.hi | 0;
  if (ah !== bh) return ah < bh ? -1 : 1;
  return a.lo === b.lo ? 0 : a.lo < b.lo ? -1 : 1;
}

/** The signed decimal CPython prints, for fixtures and diagnostics. */
export function hashToString(h: Hash64): string {
  return BigInt.asIntN(64, (BigInt(h.hi) << 32n) | BigInt(h.lo)).toString();
}

/** A Map key for a hash. */
export function hashKey(h: Hash64): string {
  return `${h.hi}:${h.lo}`;
}
