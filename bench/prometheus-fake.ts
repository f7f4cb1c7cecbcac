/**
 * A Prometheus query API for the anomaly bench, in a process of its own (so its memory is not the
 * agent's): `POST /api/v1/query` and `/api/v1/query_range` answer BENCH_ANOMALY_SERIES series
 * `app_requests{app="s<i>"}` on any grid, with a daily cycle and noise that depend only on (series,
 * time), so history and live points agree. Prints `listening <port>` when ready.
 */
import { createServer } from "node:http";

const SERIES = Number(process.env.BENCH_ANOMALY_SERIES ?? 10_000);

function value(i: number, tMs: number): number {
  const minute = Math.floor(tMs / 60_000);
  // A cheap deterministic hash of (series, minute) as noise in [0, 1).
  let h = Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(minute, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  const noise = ((h ^ (h >>> 12)) >>> 0) / 2 ** 32;
  return Math.round((100 + 20 * Math.sin((2 * Math.PI * (minute % 1440)) / 1440) + 6 * noise + (i % 97)) * 1000) / 1000;
}

const server = createServer(async (req, res) => {
  let body = "";
  for await (const chunk of req) body += chunk;
  const form = new URLSearchParams(body);
  const parts: string[] = [];
  if (req.url === "/api/v1/query") {
    const t = Number(form.get("time")) * 1000;
    for (let i = 0; i < SERIES; i++) parts.push(`{"metric":{"app":"s${i}"},"value":[${t / 1000},"${value(i, t)}"]}`);
    res.setHeader("content-type", "application/json");
    res.end(`{"status":"success","data":{"resultType":"vector","result":[${parts.join(",")}]}}`);
    return;
  }
  if (req.url === "/api/v1/query_range") {
    const start = Number(form.get("start")) * 1000;
    const end = Number(form.get("end")) * 1000;
    const step = Number(form.get("step")) * 1000;
    res.setHeader("content-type", "application/json");
    res.write(`{"status":"success","data":{"resultType":"matrix","result":[`);
    for (let i = 0; i < SERIES; i++) {
      const points: string[] = [];
      for (let t = start; t <= end; t += step) points.push(`[${t / 1000},"${value(i, t)}"]`);
      res.write(`${i ? "," : ""}{"metric":{"app":"s${i}"},"values":[${points.join(",")}]}`);
    }
    res.end("]}}");
    return;
  }
  res.statusCode = 404;
  res.end();
});
server.listen(0, "127.0.0.1", () => console.log(`listening ${(server.address() as { port: number }).port}`));
