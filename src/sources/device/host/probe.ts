/**
 * Bounded reads of the host: files read up to a size with a deadline, programs run without a shell,
 * with a minimal environment (C locale, so their output parses the same everywhere), a deadline
 * after which they are killed, and an output cap. Nothing here needs root; what does fails with
 * EACCES/EPERM, which the callers turn into "needs root" reasons.
 */
import { execFile } from "node:child_process";
import { open } from "node:fs/promises";

export type Read<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: string; readonly message: string };

const MAX_OUTPUT = 1024 * 1024;

/** A file's first `maxBytes` bytes, or why it could not be read (`ENOENT`, `EACCES`, `TIMEOUT`). */
export async function readBytes(path: string, timeoutMs: number, maxBytes = MAX_OUTPUT): Promise<Read<Buffer>> {
  const work = (async (): Promise<Read<Buffer>> => {
    let handle;
    try {
      handle = await open(path, "r");
      const buf = Buffer.alloc(maxBytes);
      let size = 0;
      while (size < maxBytes) {
        const { bytesRead } = await handle.read(buf, size, maxBytes - size, null);
        if (bytesRead === 0) break;
        size += bytesRead;
      }
      return { ok: true, value: buf.subarray(0, size) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "ERROR";
      return { ok: false, code, message: `${path}: ${code}` };
    } finally {
      await handle?.close();
    }
  })();
  return withDeadline(work, timeoutMs, { ok: false, code: "TIMEOUT", message: `${path}: no answer within ${timeoutMs} ms` });
}

export async function readText(path: string, timeoutMs: number, maxBytes = MAX_OUTPUT): Promise<Read<string>> {
  const r = await readBytes(path, timeoutMs, maxBytes);
  return r.ok ? { ok: true, value: r.value.toString("utf8") } : r;
}

export interface RunOutput {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `argv` without a shell. `ENOENT` when the program is not installed, `TIMEOUT` when it was
 * killed at the deadline; a non-zero exit is a result, not a failure.
 */
export function run(argv: readonly string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<Read<RunOutput>> {
  const [file, ...args] = argv;
  return new Promise((resolve) => {
    execFile(
      file!,
      args,
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: MAX_OUTPUT, windowsHide: true, env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C", LC_ALL: "C", ...env } },
      (err, stdout, stderr) => {
        if (!err) return resolve({ ok: true, value: { exitCode: 0, stdout, stderr } });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number; signal?: string };
        if (e.code === "ENOENT" || e.code === "EACCES") return resolve({ ok: false, code: e.code, message: `${file}: ${e.code === "ENOENT" ? "not installed (not on PATH)" : "not executable"}` });
        if (e.killed || e.signal === "SIGKILL") return resolve({ ok: false, code: "TIMEOUT", message: `${file}: no answer within ${timeoutMs} ms` });
        if (e.code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER") return resolve({ ok: false, code: "TOO_LARGE", message: `${file}: more than ${MAX_OUTPUT} bytes of output` });
        if (typeof e.code === "number") return resolve({ ok: true, value: { exitCode: e.code, stdout, stderr } });
        resolve({ ok: false, code: String(e.code ?? "ERROR"), message: `${file}: ${e.message}` });
      },
    );
  });
}

function withDeadline<T>(work: Promise<T>, timeoutMs: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(late), timeoutMs)));
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
