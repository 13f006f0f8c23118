// Decoding DICOM text in its Specific Character Set (0008,0005), and showing names and dates.
// Chinese hospitals send GB18030, GBK, UTF-8 (ISO_IR 192) or GB2312 through ISO 2022 IR 58; a
// missing character set with non-ASCII bytes is taken as UTF-8 if valid, else as GB18030.

const decoders = new Map<string, TextDecoder>();

function decoder(label: string, fatal = false): TextDecoder {
  const key = `${label}|${String(fatal)}`;
  let d = decoders.get(key);
  if (!d) {
    d = new TextDecoder(label, { fatal });
    decoders.set(key, d);
  }
  return d;
}

// ISO 2022 escape sequences: ESC, intermediate bytes 0x20-0x2F, one final byte 0x30-0x7E.
function stripEscapes(bytes: Uint8Array): Uint8Array {
  if (!bytes.includes(0x1b)) return bytes;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    if (b === 0x1b) {
      i++;
      while (i < bytes.length && (bytes[i] ?? 0) >= 0x20 && (bytes[i] ?? 0) <= 0x2f) i++;
      continue;
    }
    out.push(b);
  }
  return Uint8Array.from(out);
}

function isAscii(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b > 0x7f) return false;
  return true;
}

/** Decodes a text value's bytes according to (0008,0005), trimming DICOM padding. */
export function decodeText(bytes: Uint8Array, specificCharacterSet = ""): string {
  const charset = specificCharacterSet.toUpperCase();
  let text: string;
  if (isAscii(bytes)) {
    text = decoder("ascii").decode(bytes);
  } else if (charset.includes("ISO_IR 192")) {
    text = decoder("utf-8").decode(bytes);
  } else if (charset.includes("GB18030") || charset.includes("GBK")) {
    text = decoder("gb18030").decode(bytes);
  } else if (charset.includes("ISO 2022 IR 58")) {
    // GB2312 in G1 (EUC-CN bytes) between escape sequences: GB18030 is a superset.
    text = decoder("gb18030").decode(stripEscapes(bytes));
  } else if (charset.includes("ISO_IR 100") || charset.includes("ISO 2022 IR 100")) {
    text = decoder("windows-1252").decode(stripEscapes(bytes));
  } else {
    try {
      text = decoder("utf-8", true).decode(bytes);
    } catch {
      text = decoder("gb18030").decode(bytes);
    }
  }
  return text.replace(/[\0\s]+$/u, "").replace(/^\s+/u, "");
}

/** "Wang^Fang=王^芳" -> "王芳 (Wang Fang)"; "Smith^John" -> "Smith John". */
export function formatPersonName(pn: string): string {
  const [alphabetic = "", ideographic = "", phonetic = ""] = pn.split("=");
  const join = (group: string, sep: string) =>
    group
      .split("^")
      .map((part) => part.trim())
      .filter(Boolean)
      .join(sep);
  const alpha = join(alphabetic, " ");
  const ideo = join(ideographic, "");
  const phon = join(phonetic, " ");
  const latin = alpha || phon;
  if (ideo && latin) return `${ideo} (${latin})`;
  return ideo || latin;
}

/** DICOM DA "20240131" -> "2024-01-31"; other values are shown as they are. */
export function formatDicomDate(da: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})$/u.exec(da.trim());
  return m ? `${m[1] ?? ""}-${m[2] ?? ""}-${m[3] ?? ""}` : da.trim();
}
