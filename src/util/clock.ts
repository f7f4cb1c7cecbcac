/** The clock is injected everywhere so tests can use a fake one. Times are epoch milliseconds. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  #now: number;
  constructor(start: number | string = "2026-01-01T00:00:00Z") {
    this.#now = typeof start === "number" ? start : Date.parse(start);
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(at: number): void {
    this.#now = at;
  }
}
