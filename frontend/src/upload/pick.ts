// Collecting the files a person picked or dropped, folders included, with their relative paths.

import { inspectFile } from "../dicom/header";
import type { InspectedFile, PickedFile } from "../dicom/grouping";

export function fromFileList(list: FileList | readonly File[]): PickedFile[] {
  return Array.from(list, (file) => ({
    path: file.webkitRelativePath || file.name,
    size: file.size,
    file,
  }));
}

function fileOf(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => {
    entry.file(resolve, reject);
  });
}

function readAll(dir: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = dir.createReader();
  const out: FileSystemEntry[] = [];
  // readEntries gives a folder's entries in chunks (100 at a time in Chrome) until an empty one.
  return new Promise((resolve, reject) => {
    const next = () => {
      reader.readEntries((chunk) => {
        if (chunk.length === 0) {
          resolve(out);
          return;
        }
        out.push(...chunk);
        next();
      }, reject);
    };
    next();
  });
}

async function walk(entry: FileSystemEntry, out: PickedFile[]): Promise<void> {
  if (entry.isFile) {
    const file = await fileOf(entry as FileSystemFileEntry);
    out.push({ path: entry.fullPath.replace(/^\/+/u, "") || file.name, size: file.size, file });
  } else if (entry.isDirectory) {
    for (const child of await readAll(entry as FileSystemDirectoryEntry)) await walk(child, out);
  }
}

/** The files of a drop, walking dropped folders. Must be called from the drop handler itself:
 * the entries are taken before the first await, while the DataTransfer is still readable. */
export function fromDrop(data: DataTransfer): Promise<PickedFile[]> {
  const entries: FileSystemEntry[] = [];
  for (const item of Array.from(data.items)) {
    if (item.kind !== "file") continue;
    const entry = typeof item.webkitGetAsEntry === "function" ? item.webkitGetAsEntry() : null;
    if (entry) entries.push(entry);
  }
  if (entries.length === 0) return Promise.resolve(fromFileList(data.files));
  return (async () => {
    const out: PickedFile[] = [];
    for (const entry of entries) await walk(entry, out);
    return out;
  })();
}

/** Reads the headers of many files, a few at a time, reporting how many are done. */
export async function inspectAll(
  files: readonly PickedFile[],
  onProgress: (done: number) => void,
  concurrency = 6,
): Promise<InspectedFile[]> {
  const out = new Array<InspectedFile>(files.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const index = next++;
      const f = files[index];
      if (!f) continue;
      let inspection: InspectedFile["inspection"];
      try {
        inspection = await inspectFile(f.file);
      } catch {
        // the file went away or cannot be read: the server would not get it either
        inspection = { kind: "not-dicom" };
      }
      out[index] = { ...f, inspection };
      done += 1;
      onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return out;
}
