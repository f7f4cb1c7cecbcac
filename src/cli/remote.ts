/**
 * What the commands that talk to a running agent share: where the agent is and which token to
 * present, a small client for its API (errors come back as the agent's own code and message), a
 * reader for its event stream, and the options and help lines every such command has.
 *
 * The address is `--addr`, else `$VIGIL_ADDR`, else the config's `agent.api.listen`. The token is
 * the file named by `--token-file`, else `$VIGIL_TOKEN`, else the config's `agent.api.token`, else
 * the token the agent generated into `<data_dir>/api-token`. A token is never taken from the command
 * line: arguments are visible to every user of the machine (`ps`) and kept in shell history. The
 * config is read only when the address or the token has to come from it.
 */
import { readFileSync } from "node:fs";
import type { ParseArgsConfig } from "node:util";
import { request, type Dispatcher } from "undici";
import { join, resolve } from "node:path";
import { API_TOKEN_FILE } from "../engine/api-token.ts";
import { ERROR_CODES, VigilError, errorMessage, type ErrorCode } from "../errors.ts";
import { registerSecret } from "../util/redact.ts";
import { VIGIL_VERSION } from "../util/version.ts";
import { UsageError, parse } from "./args.ts";
import type { LoadedConfig } from "../config/load.ts";
import { outputFormat, type OutputFormat } from "./format.ts";

/** parseArgs options every command that talks to the agent takes. */
export const REMOTE_OPTIONS = {
  config: { type: "string", short: "c" },
  addr: { type: "string" },
  "token-file": { type: "string" },
  output: { type: "string", short: "o" },
} as const;

/** The help lines for `REMOTE_OPTIONS`, shared so every command describes them alike. */
export const REMOTE_HELP = `  -o, --output table|json|yaml   output format (default: table)
  -c, --config FILE    config naming the agent's address and token
                       (default: config/vigil.yaml, or $VIGIL_CONFIG)
  --addr HOST:PORT     the agent's API (default: $VIGIL_ADDR, else agent.api.listen)
  --token-file FILE    file holding the API token (default: $VIGIL_TOKEN, else
                       agent.api.token, else <data_dir>/api-token)`;

/** How long one API call may take. */
const CALL_TIMEOUT_MS = 15_000;
/** Largest API answer read. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface RemoteValues {
  readonly config?: string | undefined;
  readonly addr?: string | undefined;
  readonly "token-file"?: string | undefined;
  readonly output?: string | undefined;
}

/** Refuses `--token` before parsing, with the way to pass a token instead. */
export function refuseTokenArgument(argv: readonly string[]): void {
  for (const arg of argv) {
    if (arg === "--") return;
    if (arg === "--token" || arg.startsWith("--token=")) {
      throw new UsageError("a token is never taken on the command line (other users see arguments in `ps`, and shells keep them in history): use --token-file FILE or the VIGIL_TOKEN environment variable");
    }
  }
}

/** The `-o` format of a command's parsed options. */
export function formatOf(values: RemoteValues): OutputFormat {
  return outputFormat(values.output);
}

/** The agent's base URL from a `host:port`, `[v6]:port` or `http(s)://…` address. Wildcard hosts mean this machine. */
export function baseUrl(addr: string, source: string): string {
  const text = addr.trim();
  if (/^https?:\/\//i.test(text)) {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      throw new UsageError(`${source}: "${addr}" is not a URL`);
    }
    return `${u.protocol}//${u.host}`;
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (!m || Number(m[3]) > 65535) throw new UsageError(`${source}: "${addr}" is not host:port (e.g. 127.0.0.1:7070 or [::1]:7070)`);
  const port = Number(m[3]);
  if (port === 0) {
    throw new UsageError(`${source} has port 0 (any free port): name the address the agent listens on with --addr or VIGIL_ADDR (it logs it at start, as "api")`);
  }
  const v6 = m[1];
  // A wildcard listen address accepts connections on loopback too.
  if (v6 !== undefined) return `http://[${v6 === "::" ? "::1" : v6}]:${port}`;
  return `http://${m[2] === "0.0.0.0" ? "127.0.0.1" : m[2]}:${port}`;
}

/** Where the agent is and how to authenticate, resolved from options, environment and config. */
export async function resolveConnection(values: RemoteValues, env: NodeJS.ProcessEnv = process.env): Promise<{ base: string; token: string }> {
  let config: LoadedConfig | undefined;
  // Loaded only when needed: with the address and token given, a call starts without the config
  // and plugin registries.
  const common = () => import("./common.ts");
  const configFile = async () => values.config ?? env["VIGIL_CONFIG"] ?? (await common()).DEFAULT_CONFIG;
  const fromConfig = async () => (config ??= await (await common()).loadOrExplain(await configFile()));

  let base: string;
  if (values.addr !== undefined) base = baseUrl(values.addr, "--addr");
  else if (env["VIGIL_ADDR"]) base = baseUrl(env["VIGIL_ADDR"], "VIGIL_ADDR");
  else base = baseUrl((await fromConfig()).raw.agent.api.listen, `agent.api.listen in ${resolve(await configFile())}`);

  let token: string;
  if (values["token-file"] !== undefined) token = readToken(resolve(values["token-file"]), "the --token-file", false);
  else if (env["VIGIL_TOKEN"]) token = env["VIGIL_TOKEN"].trim();
  else {
    const cfg = await fromConfig();
    const configured = cfg.raw.agent.api.token;
    if (configured !== undefined) token = configured;
    else {
      const file = join(resolve(cfg.raw.agent.data_dir), API_TOKEN_FILE);
      token = readToken(file, `no API token: agent.api.token is not set in ${cfg.file} and the token the agent generates`, true);
    }
  }
  if (token === "") throw new UsageError("the API token is empty");
  registerSecret(token);
  return { base, token };
}

function readToken(file: string, what: string, generated: boolean): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === "ENOENT" && generated
        ? " (the agent writes it when it first starts: is it running with this config?)"
        : code === "EACCES" && generated
          ? " (it is readable by the agent's user only: run as that user, or pass the token with --token-file or VIGIL_TOKEN)"
          : "";
    throw new UsageError(`${what} cannot be read from ${file}: ${code ?? errorMessage(err)}${hint}`);
  }
  return text.trim();
}

/** No answer from the agent at all: not running, not there, or too slow. */
export class AgentUnreachable extends VigilError {
  constructor(message: string) {
    super("VIGIL_ERR_SHUTDOWN", message);
    this.name = "AgentUnreachable";
  }
}

/** One answer of the agent's API. */
interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** A client of the agent's `/v1` API. Failures are VigilErrors carrying the agent's code and message. */
export class AgentClient {
  readonly base: string;
  readonly #token: string;

  constructor(connection: { base: string; token: string }) {
    this.base = connection.base;
    this.#token = connection.token;
  }

  get<T>(path: string): Promise<T> {
    return this.#call<T>("GET", path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.#call<T>("POST", path, body);
  }

  /** Every page of a `{<key>: [...], total}` listing. */
  async all<T>(path: string, key: string): Promise<{ items: T[]; total: number }> {
    const items: T[] = [];
    let total = 0;
    const sep = path.includes("?") ? "&" : "?";
    for (;;) {
      const page = await this.get<Record<string, unknown>>(`${path}${sep}limit=1000&offset=${items.length}`);
      const got = (page[key] ?? []) as T[];
      total = Number(page["total"] ?? 0);
      items.push(...got);
      if (got.length === 0 || items.length >= total) return { items, total };
    }
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const answer = await this.#send(method, path, body, AbortSignal.timeout(CALL_TIMEOUT_MS));
    return answer.body as T;
  }

  async #send(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Answer> {
    const res = await this.#request(method, path, body, {}, signal, CALL_TIMEOUT_MS);
    const text = await readCapped(res.body, res.headers["content-length"]);
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.statusCode >= 300) throw apiError(res.statusCode, parsed);
    if (parsed === undefined) throw new VigilError("VIGIL_ERR_INTERNAL", `${method} ${path}: the agent answered ${res.statusCode} without a JSON body`);
    return { status: res.statusCode, body: parsed };
  }

  /** Opens `GET path` as an event stream; resolves once the agent has accepted it. */
  async stream(path: string, lastEventId: string | undefined, signal: AbortSignal): Promise<EventStream> {
    // No body timeout: a stream is quiet between heartbeats, and ends when `signal` aborts.
    const res = await this.#request("GET", path, undefined, { accept: "text/event-stream", ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }) }, signal, 0);
    if (res.statusCode >= 300) {
      const text = await readCapped(res.body, res.headers["content-length"]);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      throw apiError(res.statusCode, parsed);
    }
    return new EventStream(res.body);
  }

  /**
   * One request with undici's `request` rather than fetch: fetch refuses ports browsers block
   * (6000, 6665–6669, 10080, …), and an agent may listen on any port.
   */
  async #request(method: string, path: string, body: unknown, headers: Record<string, string>, signal: AbortSignal, bodyTimeout: number): Promise<Dispatcher.ResponseData> {
    try {
      return await request(this.base + path, {
        method: method as Dispatcher.HttpMethod,
        headers: {
          authorization: `Bearer ${this.#token}`,
          "user-agent": `vigil-cli/${VIGIL_VERSION}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal,
        headersTimeout: CALL_TIMEOUT_MS,
        bodyTimeout,
      });
    } catch (err) {
      throw this.unreachable(err);
    }
  }

  /** An error for a connection that failed before any answer, naming the address and where it came from. */
  unreachable(err: unknown): AgentUnreachable {
    const e = err as { name?: string; code?: string; cause?: { code?: string } };
    if (e.name === "TimeoutError" || e.code === "UND_ERR_HEADERS_TIMEOUT" || e.code === "UND_ERR_CONNECT_TIMEOUT") {
      return new AgentUnreachable(`the agent at ${this.base} did not answer within ${CALL_TIMEOUT_MS / 1000}s`);
    }
    if (e.name === "AbortError") return new AgentUnreachable("cancelled");
    const why = e.code ?? e.cause?.code ?? errorMessage(err);
    return new AgentUnreachable(
      `cannot reach the agent at ${this.base}: ${why === "ECONNREFUSED" ? 'connection refused (is "vigil run" running there?)' : why}. The address comes from --addr, VIGIL_ADDR or agent.api.listen`,
    );
  }
}

/** A body as text, refused past `MAX_BODY_BYTES`. */
async function readCapped(body: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void }, declared: string | string[] | undefined): Promise<string> {
  const tooLarge = () => new VigilError("VIGIL_ERR_INTERNAL", `the agent's answer is larger than ${MAX_BODY_BYTES} bytes`);
  if (Number(declared) > MAX_BODY_BYTES) {
    body.destroy?.();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      body.destroy?.();
      throw tooLarge();
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The agent's `{error: {code, message}}` as a VigilError with that code (a 401 says how to fix it). */
function apiError(status: number, body: unknown): VigilError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof e?.code === "string" && Object.hasOwn(ERROR_CODES, e.code) ? (e.code as ErrorCode) : "VIGIL_ERR_INTERNAL";
  const message = typeof e?.message === "string" ? e.message : `the agent answered ${status}`;
  if (code === "VIGIL_ERR_UNAUTHORIZED") {
    return new VigilError(code, `the agent refused the token (${message}): check --token-file, VIGIL_TOKEN, agent.api.token or <data_dir>/api-token`);
  }
  return new VigilError(code, message);
}

/** One server-sent event. */
export interface StreamEvent {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/** Reads server-sent events (the WHATWG event-stream format) from a response body. */
export class EventStream {
  readonly #body: AsyncIterable<Uint8Array>;
  /** The `retry:` the server asked for, in ms. */
  retryMs: number | undefined;

  constructor(body: AsyncIterable<Uint8Array>) {
    this.#body = body;
  }

  /** The events until the stream ends; comments (heartbeats) are skipped. */
  async *events(): AsyncGenerator<StreamEvent> {
    const decoder = new TextDecoder();
    let buf = "";
    let data: string[] = [];
    let event = "";
    let id: string | undefined;
    for await (const chunk of this.#body) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) yield { id, event: event || "message", data: data.join("\n") };
          data = [];
          event = "";
          continue;
        }
        if (line.startsWith(":")) continue;
        const at = line.indexOf(":");
        const field = at === -1 ? line : line.slice(0, at);
        const value = at === -1 ? "" : line.slice(at + 1).replace(/^ /, "");
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
        else if (field === "id" && !value.includes("\0")) id = value;
        else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
      }
    }
  }
}

/** How often a follower tries to get a lost stream back before it gives up. */
const RECONNECT_ATTEMPTS = 10;

/**
 * Follows `GET path` (an audit stream) until `signal` aborts: calls `onEvent` for each event and
 * `onOpen` each time the stream is (re)opened. A lost stream is reopened with `Last-Event-ID`, so
 * nothing is missed or repeated; after `RECONNECT_ATTEMPTS` failed attempts in a row it gives up
 * with the last error. An error answer (401, 429) ends it at once.
 */
export async function follow(
  client: AgentClient,
  path: string,
  signal: AbortSignal,
  handlers: { onOpen?: (reopened: boolean) => Promise<void> | void; onEvent: (event: StreamEvent) => Promise<void> | void },
): Promise<void> {
  let lastId: string | undefined;
  let failures = 0;
  let opened = false;
  let retryMs = 2_000;
  while (!signal.aborted) {
    let stream: EventStream;
    try {
      stream = await client.stream(path, lastId, signal);
    } catch (err) {
      if (signal.aborted) return;
      // A stopping agent (503) or one not back yet: worth waiting for. A refusal (401, 429) is not.
      const lost = err instanceof AgentUnreachable || (err instanceof VigilError && err.code === "VIGIL_ERR_SHUTDOWN");
      if (!lost || !opened || ++failures >= RECONNECT_ATTEMPTS) throw err;
      await pause(retryMs, signal);
      continue;
    }
    failures = 0;
    await handlers.onOpen?.(opened);
    opened = true;
    try {
      for await (const ev of stream.events()) {
        if (ev.id !== undefined) lastId = ev.id;
        if (ev.event === "error") break;
        await handlers.onEvent(ev);
      }
    } catch (err) {
      if (signal.aborted) return;
      // The connection dropped mid-stream: reconnect below.
      void err;
    }
    retryMs = stream.retryMs ?? retryMs;
    if (!signal.aborted) await pause(retryMs, signal);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** An AbortSignal that fires on SIGINT or SIGTERM: a follow ends cleanly when the user stops it. */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return ac.signal;
}

/**
 * Parses a remote command's arguments (its own options plus `REMOTE_OPTIONS`; `--token` refused)
 * and returns the `-o` format and a way to connect, so usage errors are reported before any
 * config is read or connection made.
 */
export function parseRemote<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T, allowPositionals = false) {
  refuseTokenArgument(argv);
  const parsed = parse(argv, { ...REMOTE_OPTIONS, ...options }, allowPositionals);
  const values = parsed.values as typeof parsed.values & RemoteValues;
  return {
    values: parsed.values,
    positionals: parsed.positionals,
    format: formatOf(values),
    connect: async () => new AgentClient(await resolveConnection(values)),
  };
}
