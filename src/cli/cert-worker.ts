/**
 * A worker thread of `vigil cert verify --batch`: judges chunks of lines with its own BatchJudge,
 * one chunk at a time (the judge's clock follows the line being judged).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { VerifyConfig } from "../checks/certificate_validity/verify.ts";
import { createHttpClient } from "../net/http.ts";
import { BatchJudge } from "./cert-batch.ts";

interface Setup {
  readonly baseRaw: Record<string, unknown>;
  /** The parsed options (plain data), so that the worker need not load the schema. */
  readonly base: VerifyConfig;
  readonly crls: readonly Uint8Array[];
}

const setup = workerData as Setup;
const http = createHttpClient({ userAgent: "vigil-cli" });
const judge = new BatchJudge(setup.baseRaw, setup.base, setup.crls, http);
let queue: Promise<void> = Promise.resolve();

parentPort!.on("message", (msg: { seq: number; lines: string[] } | "close") => {
  if (msg === "close") {
    queue = queue.then(() => http.close()).then(() => parentPort!.close());
    return;
  }
  queue = queue.then(async () => {
    let out = "";
    let valid = true;
    for (const line of msg.lines) {
      const r = await judge.judge(line);
      out += r.line + "\n";
      if (!r.valid) valid = false;
    }
    parentPort!.postMessage({ seq: msg.seq, out, valid });
  });
});
