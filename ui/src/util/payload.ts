// Payloads as text. Everything here returns strings that React renders as text nodes;
// nothing from a message is ever interpreted as HTML.

import type { Message } from "../api/types";

export interface PayloadText {
  text: string;
  /** "json", "text" (decoded base64 UTF-8), "binary" (hex dump), "empty". */
  kind: "json" | "text" | "binary" | "empty";
  bytes?: number;
}

export function payloadText(m: Pick<Message, "payload" | "payload_base64">, maxChars = 200_000): PayloadText {
  if (m.payload_base64) {
    const bytes = decodeBase64(m.payload_base64);
    if (!bytes) return { text: m.payload_base64, kind: "binary" };
    const text = decodeUtf8(bytes);
    if (text !== undefined && isPrintable(text)) return { text: clip(text, maxChars), kind: "text", bytes: bytes.length };
    return { text: clip(hexDump(bytes.subarray(0, 4096)), maxChars), kind: "binary", bytes: bytes.length };
  }
  if (m.payload === null || m.payload === undefined) return { text: "", kind: "empty" };
  return { text: clip(JSON.stringify(m.payload, null, 2), maxChars), kind: "json" };
}

/** A one-line preview for lists. */
export function payloadPreview(m: Pick<Message, "payload" | "payload_base64">, maxChars = 160): string {
  if (m.payload_base64) {
    const p = payloadText(m, maxChars * 4);
    return p.kind === "binary" ? `binary, ${p.bytes ?? "?"} bytes` : clip(p.text.replace(/\s+/g, " "), maxChars);
  }
  if (m.payload === null || m.payload === undefined) return "(empty)";
  return clip(JSON.stringify(m.payload), maxChars);
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters)` : s;
}

function decodeBase64(b64: string): Uint8Array | undefined {
  try {
    const bin = atob(b64.replace(/-/g, "+").replace(/_/g, "/"));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function isPrintable(s: string): boolean {
  // Control characters other than tab, newline, carriage return mean binary.
  return !/[\u0000-\u0008\u000e-\u001f]/.test(s);
}

function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = bytes.subarray(i, i + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(row, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${i.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}
