/** The maximum of the last `span` values of a stream, amortised O(1) per value, O(span) memory. */
export class SlidingMax {
  readonly span: number;
  // Monotonic deque of (index, value), values decreasing from head to tail.
  #idx: number[] = [];
  #val: number[] = [];
  #head = 0;
  #count = 0;

  constructor(span: number, state?: SlidingMaxState) {
    this.span = span;
    if (state) {
      this.#idx = [...state.idx];
      this.#val = [...state.val];
      this.#count = state.count;
    }
  }

  /** Max of the values pushed within the last `span` pushes; -Infinity when none. */
  max(): number {
    return this.#head < this.#val.length ? this.#val[this.#head]! : -Infinity;
  }

  push(v: number): void {
    const i = this.#count++;
    while (this.#val.length > this.#head && this.#val[this.#val.length - 1]! <= v) {
      this.#val.pop();
      this.#idx.pop();
    }
    this.#idx.push(i);
    this.#val.push(v);
    while (this.#idx[this.#head]! <= i - this.span) this.#head++;
    // Compact now and then so the arrays stay bounded by span.
    if (this.#head > 64 && this.#head * 2 > this.#val.length) {
      this.#idx = this.#idx.slice(this.#head);
      this.#val = this.#val.slice(this.#head);
      this.#head = 0;
    }
  }

  toJSON(): SlidingMaxState {
    return { idx: this.#idx.slice(this.#head), val: this.#val.slice(this.#head), count: this.#count };
  }
}

export interface SlidingMaxState {
  idx: number[];
  val: number[];
  count: number;
}
