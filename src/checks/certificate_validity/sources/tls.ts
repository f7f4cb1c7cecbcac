/**
 * The certificate chain a TLS endpoint presents, fetched with one handshake.
 *
 * `rejectUnauthorized: false` is deliberate: this source only *collects* what the server presents;
 * vigil's own path validation then judges it against the configured trust anchors, key policy and
 * expected identity, and reports why a chain is bad (expired, untrusted, wrong name) instead of a
 * bare handshake failure. Nothing is sent over the connection and it is closed at once, so skipping
 * verification here exposes no data.
 *
 * TLS 1.3 moves the server's verdict on the client certificate after the client's Finished: the
 * handshake "succeeds" on our side and the server's `certificate required` alert comes next. So on
 * TLS 1.3 the socket is kept until the server's first session ticket (its sign of acceptance), an
 * alert or close, or at most `POST_HANDSHAKE_WAIT_MS`, whichever is first. (A server that accepts
 * the handshake and only then drops a client certificate it dislikes is not noticed: the chain was
 * presented, and collecting it is all this source does.)
 */
import net from "node:net";
import tls from "node:tls";
import type { X509Certificate } from "node:crypto";
import type { GatheredCertificate } from "../types.ts";
import { Deadline, errorText, SourceError } from "./common.ts";

export const DEFAULT_TLS_TIMEOUT_MS = 5_000;
/** Longest wait after a TLS 1.3 handshake for the server to reject our (absent) client certificate. */
export const POST_HANDSHAKE_WAIT_MS = 250;
/** Most certificates taken from the presented chain. */
export const MAX_PRESENTED_CHAIN = 16;

export interface TlsSourceOptions {
  /** Host name or IP literal (IPv6 with or without brackets). */
  readonly host: string;
  readonly port: number;
  /** SNI; default `host`. Never sent for IP literals (RFC 6066). */
  readonly servername?: string;
  /** Client certificate (PEM, may include intermediates) and key, for servers that demand one. */
  readonly clientCert?: string;
  readonly clientKey?: string;
  /**
   * CA certificates (PEM). Passed to the TLS stack but not used to verify the server (see above);
   * the chain is judged by path validation.
   */
  readonly ca?: string;
  /** Connect + handshake deadline. Default 5000. */
  readonly timeoutMs?: number;
}

const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/;

function hostOf(raw: string): string {
  const host = typeof raw === "string" && raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
  if (typeof host !== "string" || !(net.isIP(host) !== 0 || HOST_NAME.test(host))) throw new SourceError(`TLS source: invalid host ${JSON.stringify(raw)}`);
  return host;
}

/** The presented chain, leaf first, as DER: the leaf and its `issuerCertificate` links (stopping on a self-loop). */
function presentedChain(socket: tls.TLSSocket): Uint8Array[] {
  const chain: Uint8Array[] = [];
  const seen = new Set<string>();
  let cert: X509Certificate | undefined = socket.getPeerX509Certificate();
  while (cert !== undefined && chain.length < MAX_PRESENTED_CHAIN && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(new Uint8Array(cert.raw));
    cert = cert.issuerCertificate;
  }
  return chain;
}

export async function fromTls(options: TlsSourceOptions, signal?: AbortSignal): Promise<GatheredCertificate> {
  const host = hostOf(options.host);
  const port = options.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SourceError(`TLS source: invalid port ${JSON.stringify(port)}`);
  if ((options.clientCert === undefined) !== (options.clientKey === undefined)) throw new SourceError("TLS source: clientCert and clientKey go together");
  const where = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
  const origin = `tls:${where}`;
  const servername = options.servername ?? host;
  const sni = net.isIP(host) === 0 && net.isIP(servername) === 0 ? servername : undefined;
  const deadline = new Deadline(signal, options.timeoutMs ?? DEFAULT_TLS_TIMEOUT_MS, `TLS handshake with ${where}`);
  deadline.check();

  return new Promise<GatheredCertificate>((resolve, reject) => {
    let socket: tls.TLSSocket | undefined;
    let stapled: Uint8Array | undefined;
    let chain: Uint8Array[] | undefined;
    let sessionSeen = false;
    let waitTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const finish = (err: SourceError | undefined) => {
      if (settled) return;
      settled = true;
      deadline.signal.removeEventListener("abort", onAbort);
      if (waitTimer) clearTimeout(waitTimer);
      if (socket) {
        socket.on("error", () => {}); // late errors of a socket we are done with
        socket.destroy();
      }
      if (err) reject(err);
      else resolve(stapled === undefined ? { chain: chain!, origin } : { chain: chain!, origin, stapledOcsp: stapled });
    };
    const onAbort = () => finish(deadline.error());
    deadline.signal.addEventListener("abort", onAbort, { once: true });

    try {
      socket = tls.connect({
        host,
        port,
        servername: sni,
        rejectUnauthorized: false,
        requestOCSP: true,
        ...(options.clientCert === undefined ? {} : { cert: options.clientCert, key: options.clientKey }),
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      });
    } catch (err) {
      // Bad PEM in cert/key/ca is reported synchronously by the secure context.
      finish(new SourceError(`TLS source ${where}: invalid client certificate, key or CA: ${errorText(err)}`, { cause: err }));
      return;
    }

    socket.on("OCSPResponse", (response: Buffer | null | undefined) => {
      if (Buffer.isBuffer(response) && response.length > 0) stapled = new Uint8Array(response);
    });
    // Registering the listener also makes Node report TLS 1.3 session tickets.
    socket.on("session", () => {
      sessionSeen = true;
      if (chain !== undefined) finish(undefined);
    });
    socket.on("error", (err) => {
      const when = chain === undefined ? "" : " after the server's certificate arrived (a client certificate is missing or was refused)";
      finish(new SourceError(`TLS handshake with ${where} failed${when}: ${errorText(err)}`, { cause: err }));
    });
    socket.on("close", () => {
      if (chain !== undefined) finish(undefined);
      else finish(new SourceError(`TLS handshake with ${where} failed: the connection was closed before the handshake completed`));
    });
    socket.once("secureConnect", () => {
      const s = socket!;
      let presented: Uint8Array[];
      try {
        presented = presentedChain(s);
      } catch (err) {
        finish(new SourceError(`TLS handshake with ${where}: the presented certificate could not be read: ${errorText(err)}`, { cause: err }));
        return;
      }
      if (presented.length === 0) {
        finish(new SourceError(`TLS handshake with ${where}: the server presented no certificate`));
        return;
      }
      chain = presented;
      if (s.getProtocol() !== "TLSv1.3" || sessionSeen) {
        finish(undefined);
        return;
      }
      s.resume(); // process incoming records (tickets or an alert); any application data is discarded
      waitTimer = setTimeout(() => finish(undefined), Math.min(POST_HANDSHAKE_WAIT_MS, deadline.remaining()));
    });
  });
}
