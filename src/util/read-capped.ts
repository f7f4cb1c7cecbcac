import { closeSync, openSync, readSync } from "node:fs";

/**
 * Reads a whole file, but never more than `cap` bytes: undefined when it holds more. The size is
 * what is read, not what `stat` says, so a file that grows meanwhile, a FIFO or a device such as
 * /dev/zero cannot make the caller buffer without end.
 */
export function readFileCappedSync(path: string, cap: number): Buffer | undefined {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(Math.min(cap + 1, 64 * 1024));
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return Buffer.concat(chunks, size);
      size += n;
      if (size > cap) return undefined;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    closeSync(fd);
  }
}
