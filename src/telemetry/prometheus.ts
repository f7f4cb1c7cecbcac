/**
 * An OpenTelemetry `Meter` that keeps cumulative values in memory and writes them in the Prometheus
 * text exposition format, for the agent that exports nothing but `/metrics`.
 *
 * It stands in for the OTel metrics SDK plus its Prometheus exporter (about 240 modules, ~16 MiB of
 * resident memory and ~100 ms of start-up): it writes what they wrote — the same names, HELP, UNIT
 * and TYPE lines, series in instrument order, histogram `_count`/`_sum`/cumulative `_bucket`s,
 * counters without a point left out — with the same cumulative semantics: an asynchronous series
 * keeps its last observed value, a counter ignores negative increments. With OTLP configured the
 * SDK is loaded instead (metrics.ts), so both exports read one set of instruments.
 */
import type {
  Attributes,
  BatchObservableCallback,
  Counter,
  Gauge,
  Histogram,
  Meter,
  MetricOptions,
  Observable,
  ObservableCallback,
  ObservableCounter,
  ObservableGauge,
  ObservableResult,
  ObservableUpDownCounter,
  UpDownCounter,
} from "@opentelemetry/api";

/** The SDK's default histogram boundaries, for a histogram created without advice. */
const DEFAULT_BOUNDARIES: readonly number[] = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

type Kind = "counter" | "gauge" | "histogram";

interface Point {
  readonly attributes: Attributes;
  value: number;
  /** Histograms: per-bucket counts (last = +Inf), and the sum. */
  counts?: number[];
  sum?: number;
}

/** One metric, shared by every instrument created under its name. */
class Series {
  readonly points = new Map<string, Point>();
  readonly callbacks = new Set<ObservableCallback>();
  readonly name: string;
  readonly kind: Kind;
  readonly help: string;
  readonly unit: string;
  readonly boundaries: readonly number[];
  constructor(name: string, kind: Kind, help: string, unit: string, boundaries: readonly number[] = []) {
    this.name = name;
    this.kind = kind;
    this.help = help;
    this.unit = unit;
    this.boundaries = boundaries;
  }

  point(attributes: Attributes | undefined): Point {
    const attrs = attributes ?? {};
    const key = attributesKey(attrs);
    let p = this.points.get(key);
    if (!p) {
      p = this.kind === "histogram" ? { attributes: { ...attrs }, value: 0, counts: new Array<number>(this.boundaries.length + 1).fill(0), sum: 0 } : { attributes: { ...attrs }, value: 0 };
      this.points.set(key, p);
    }
    return p;
  }
}

/**
 * Attribute sets are one series whatever the order of their keys. Values are keyed as the text they
 * are exposed as (1 and "1" are the same label value). Runs for every counter increment (several per
 * evaluated subject), so it builds one string and nothing else.
 */
function attributesKey(attrs: Attributes): string {
  const keys = Object.keys(attrs);
  if (keys.length > 1) keys.sort();
  let key = "";
  for (const k of keys) key += `${k}\u0000${String(attrs[k])}\u0001`;
  return key;
}

export class PrometheusMeter implements Meter {
  readonly #series = new Map<string, Series>();
  readonly #batch = new Map<BatchObservableCallback, readonly Observable[]>();
  /** Observable instrument → its series, for batch callbacks. */
  readonly #observed = new WeakMap<Observable, Series>();
  /** `target_info`'s labels. */
  readonly #target: Attributes;

  constructor(target: Attributes) {
    this.#target = target;
  }

  #get(name: string, kind: Kind, options: MetricOptions | undefined, boundaries?: readonly number[]): Series {
    let s = this.#series.get(name);
    if (!s) {
      s = new Series(name, kind, options?.description ?? "", options?.unit ?? "", boundaries);
      this.#series.set(name, s);
    }
    return s;
  }

  createCounter(name: string, options?: MetricOptions): Counter {
    const s = this.#get(name, "counter", options);
    return {
      add(value, attributes) {
        if (!(value >= 0)) return;
        s.point(attributes).value += value;
      },
    };
  }

  createUpDownCounter(name: string, options?: MetricOptions): UpDownCounter {
    const s = this.#get(name, "gauge", options);
    return {
      add(value, attributes) {
        if (Number.isNaN(value)) return;
        s.point(attributes).value += value;
      },
    };
  }

  createGauge(name: string, options?: MetricOptions): Gauge {
    const s = this.#get(name, "gauge", options);
    return {
      record(value, attributes) {
        s.point(attributes).value = value;
      },
    };
  }

  createHistogram(name: string, options?: MetricOptions): Histogram {
    const advised = options?.advice?.explicitBucketBoundaries;
    const boundaries = advised ? [...advised].filter((b) => !Number.isNaN(b)).sort((a, b) => a - b) : DEFAULT_BOUNDARIES;
    const s = this.#get(name, "histogram", options, boundaries);
    return {
      record(value, attributes) {
        if (!(value >= 0)) return;
        const p = s.point(attributes);
        let i = 0;
        while (i < s.boundaries.length && value > s.boundaries[i]!) i++;
        p.counts![i]!++;
        p.sum! += value;
        p.value++;
      },
    };
  }

  createObservableGauge(name: string, options?: MetricOptions): ObservableGauge {
    return this.#observable(this.#get(name, "gauge", options));
  }

  createObservableCounter(name: string, options?: MetricOptions): ObservableCounter {
    return this.#observable(this.#get(name, "counter", options));
  }

  createObservableUpDownCounter(name: string, options?: MetricOptions): ObservableUpDownCounter {
    return this.#observable(this.#get(name, "gauge", options));
  }

  #observable(s: Series): ObservableGauge {
    const instrument = {
      addCallback: (cb: ObservableCallback) => void s.callbacks.add(cb),
      removeCallback: (cb: ObservableCallback) => void s.callbacks.delete(cb),
    };
    this.#observed.set(instrument, s);
    return instrument;
  }

  addBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]): void {
    this.#batch.set(callback, [...observables]);
  }

  removeBatchObservableCallback(callback: BatchObservableCallback): void {
    this.#batch.delete(callback);
  }

  /** Runs the observable callbacks (a throwing one is skipped, like the SDK does), then writes every series. */
  async collect(onError: (err: unknown) => void = () => {}): Promise<string> {
    const pending: Promise<unknown>[] = [];
    for (const s of this.#series.values()) {
      for (const cb of s.callbacks) {
        const result: ObservableResult = { observe: (value, attributes) => observe(s, value, attributes) };
        try {
          const r = cb(result);
          if (r) pending.push(Promise.resolve(r).catch(onError));
        } catch (err) {
          onError(err);
        }
      }
    }
    for (const [cb, observables] of this.#batch) {
      const allowed = new Set(observables);
      try {
        const r = cb({
          observe: (observable, value, attributes) => {
            const s = allowed.has(observable) ? this.#observed.get(observable) : undefined;
            if (s) observe(s, value, attributes);
          },
        });
        if (r) pending.push(Promise.resolve(r).catch(onError));
      } catch (err) {
        onError(err);
      }
    }
    await Promise.all(pending);
    let out = `# HELP target_info Target metadata\n# TYPE target_info gauge\n${line("target_info", this.#target, 1)}`;
    for (const s of this.#series.values()) out += write(s);
    return out;
  }
}

/** An observation replaces the series' value (asynchronous instruments report totals). */
function observe(s: Series, value: number, attributes: Attributes | undefined): void {
  if (typeof value !== "number") return;
  s.point(attributes).value = value;
}

/** Writes one metric as the exporter did: nothing when it has no point. */
function write(s: Series): string {
  if (s.points.size === 0) return "";
  let name = sanitize(escape(s.name));
  // Prometheus counters end in _total.
  if (s.kind === "counter" && !name.endsWith("_total")) name += "_total";
  let out = `# HELP ${name} ${escape(s.help || "description missing")}\n`;
  if (s.unit) out += `# UNIT ${name} ${escape(s.unit)}\n`;
  out += `# TYPE ${name} ${s.kind}\n`;
  for (const p of s.points.values()) {
    if (s.kind !== "histogram") {
      out += line(name, p.attributes, p.value);
      continue;
    }
    out += line(`${name}_count`, p.attributes, p.value);
    out += line(`${name}_sum`, p.attributes, p.sum!);
    let cumulative = 0;
    for (let i = 0; i <= s.boundaries.length; i++) {
      cumulative += p.counts![i]!;
      const bound = s.boundaries[i];
      out += line(`${name}_bucket`, { ...p.attributes, le: bound === undefined || bound === Infinity ? "+Inf" : String(bound) }, cumulative);
      if (bound === Infinity) break;
    }
  }
  return out;
}

function line(name: string, attributes: Attributes, value: number): string {
  let labels = "";
  for (const [k, v] of Object.entries(attributes)) {
    const text = typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v);
    labels += `${labels ? "," : ""}${sanitize(k)}="${escape(text).replace(/"/g, '\\"')}"`;
  }
  const v = value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : `${value}`;
  return `${name}${labels ? `{${labels}}` : ""} ${v}\n`;
}

function escape(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Characters OpenTelemetry allows in a name but Prometheus does not become `_`. */
function sanitize(name: string): string {
  return name.replace(/[^a-z0-9_]/gi, "_").replace(/_{2,}/g, "_");
}
