// Autosave of a report draft: saves a while after the last change (debounced), one save at a
// time, with the revision the server gave; when the draft was saved elsewhere meanwhile (409),
// the newer draft is loaded and merged with the changes made here (ours win where both changed)
// and saved again.

import { ApiError } from "../api/client";
import type { KeyImageRef } from "./types";

export interface DraftContent {
  entries: Record<string, unknown>;
  texts: Record<string, string>;
  key_images: KeyImageRef[];
}

export type SaveStatus = "idle" | "pending" | "saving" | "saved" | "merged" | "conflict" | "error";

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function sameContent(a: DraftContent, b: DraftContent): boolean {
  return same(a.entries, b.entries) && same(a.texts, b.texts) && same(a.key_images, b.key_images);
}

function mergeMap<T>(
  base: Record<string, T>,
  local: Record<string, T>,
  remote: Record<string, T>,
  conflicts: string[],
): Record<string, T> {
  const out: Record<string, T> = {};
  const keys = new Set([...Object.keys(base), ...Object.keys(local), ...Object.keys(remote)]);
  for (const key of keys) {
    const mine = !same(local[key], base[key]);
    const theirs = !same(remote[key], base[key]);
    if (mine && theirs && !same(local[key], remote[key])) conflicts.push(key);
    const value = mine ? local[key] : remote[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Three-way merge by key: what changed here since `base` (the last draft saved from here) is
 * kept, everything else comes from `remote`. `conflicts`: keys both sides changed differently
 * (ours kept). */
export function mergeDraft(
  base: DraftContent,
  local: DraftContent,
  remote: DraftContent,
): { content: DraftContent; conflicts: string[] } {
  const conflicts: string[] = [];
  const entries = mergeMap(base.entries, local.entries, remote.entries, conflicts);
  const texts = mergeMap(base.texts, local.texts, remote.texts, conflicts);
  const mine = !same(local.key_images, base.key_images);
  if (mine && !same(remote.key_images, base.key_images) && !same(local.key_images, remote.key_images)) {
    conflicts.push("key_images");
  }
  const key_images = mine ? local.key_images : remote.key_images;
  return { content: { entries, texts, key_images }, conflicts };
}

export interface SaveAnswer {
  revision: number;
  missing: string[];
}

export interface AutosaverOptions {
  revision: number;
  content: DraftContent;
  save: (content: DraftContent, revision: number) => Promise<SaveAnswer>;
  /** The draft as saved now, after a 409. */
  load: () => Promise<{ revision: number; content: DraftContent }>;
  onStatus: (status: SaveStatus, error?: unknown) => void;
  onSaved?: (answer: SaveAnswer) => void;
  /** The content changed under the editor (a merge): show it. */
  onMerged?: (content: DraftContent, conflicts: string[]) => void;
  delayMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export class Autosaver {
  private revision: number;
  /** The content as last saved (or loaded). */
  private base: DraftContent;
  private current: DraftContent;
  private timer: unknown = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly o: AutosaverOptions;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(options: AutosaverOptions) {
    this.o = options;
    this.revision = options.revision;
    this.base = options.content;
    this.current = options.content;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((h) => {
      clearTimeout(h as number);
    });
  }

  get currentRevision(): number {
    return this.revision;
  }

  get dirty(): boolean {
    return !sameContent(this.current, this.base);
  }

  /** The editor's content changed: save it after the delay (restarted by each change). */
  change(content: DraftContent): void {
    if (this.stopped) return;
    this.current = content;
    this.cancelTimer();
    if (!this.dirty) return;
    this.o.onStatus("pending");
    this.timer = this.setTimer(() => {
      this.timer = null;
      void this.flush();
    }, this.o.delayMs ?? 1500);
  }

  /** Saves now what is not saved yet (Ctrl+S, before signing); resolves when it is saved or the
   * save failed (the status says which). */
  async flush(): Promise<void> {
    this.cancelTimer();
    while (this.running) await this.running;
    if (this.stopped || !this.dirty) return;
    this.running = this.run();
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }

  /** After a template change or a reload: the server's draft is the new starting point. */
  reset(revision: number, content: DraftContent): void {
    this.cancelTimer();
    this.revision = revision;
    this.base = content;
    this.current = content;
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer();
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  private async run(): Promise<void> {
    let merged = false;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const sent = this.current;
      this.o.onStatus("saving");
      try {
        const answer = await this.o.save(sent, this.revision);
        this.revision = answer.revision;
        this.base = sent;
        this.o.onSaved?.(answer);
        this.o.onStatus(merged ? "merged" : "saved");
        // Changed while it was on its way: save the rest after the delay.
        if (this.dirty) this.change(this.current);
        return;
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 409) || attempt > 0) {
          this.o.onStatus(e instanceof ApiError && e.status === 409 ? "conflict" : "error", e);
          return;
        }
      }
      let remote: { revision: number; content: DraftContent };
      try {
        remote = await this.o.load();
      } catch (e) {
        this.o.onStatus("conflict", e);
        return;
      }
      const result = mergeDraft(this.base, this.current, remote.content);
      this.revision = remote.revision;
      this.base = remote.content;
      this.current = result.content;
      merged = true;
      this.o.onMerged?.(result.content, result.conflicts);
      if (!this.dirty) {
        this.o.onStatus("merged");
        return;
      }
    }
  }
}
