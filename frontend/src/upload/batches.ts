// Splitting one study into requests that stay well below the server's request limit (see
// limits.ts for the limits). Every request but the last says complete=false, so the case becomes
// ready only with the last one.

export interface BatchLimits {
  /** Bytes of file content per request (multipart overhead is counted too). */
  maxBytes: number;
  maxFiles: number;
}

/** Our own caps: a request this size is quick to resend after a network failure. The server's
 * limit (4 GiB by default) lowers them when it is smaller: see batchLimits in limits.ts. */
export const DEFAULT_LIMITS: BatchLimits = { maxBytes: 200 * 1024 * 1024, maxFiles: 500 };

/** Headers of one multipart file part, roughly, besides the file name. */
export const PART_OVERHEAD_BYTES = 200;

const utf8 = new TextEncoder();

/** What a file adds to a multipart body: its content, the part's headers, its name in UTF-8. */
export function partBytes(item: { size: number; path: string }): number {
  return item.size + PART_OVERHEAD_BYTES + utf8.encode(item.path).length;
}

export interface Batch<T> {
  index: number;
  items: T[];
  bytes: number;
  /** false on every batch but the last of its group. */
  complete: boolean;
}

/**
 * Packs files in their order into batches of at most `maxFiles` files and `maxBytes` bytes. A
 * file larger than `maxBytes` on its own (a big zip, a long multi-frame object) gets a batch to
 * itself. An empty list gives no batch.
 */
export function planBatches<T extends { size: number; path: string }>(
  items: readonly T[],
  limits: BatchLimits = DEFAULT_LIMITS,
): Batch<T>[] {
  if (limits.maxFiles < 1 || limits.maxBytes < 1) throw new Error("limits must be positive");
  const batches: Batch<T>[] = [];
  let current: T[] = [];
  let bytes = 0;
  const flush = () => {
    if (current.length === 0) return;
    batches.push({
      index: batches.length,
      items: current,
      bytes,
      complete: false,
    });
    current = [];
    bytes = 0;
  };
  for (const item of items) {
    const cost = partBytes(item);
    if (current.length > 0 && (current.length >= limits.maxFiles || bytes + cost > limits.maxBytes)) {
      flush();
    }
    current.push(item);
    bytes += cost;
  }
  flush();
  const last = batches[batches.length - 1];
  if (last) last.complete = true;
  return batches;
}
