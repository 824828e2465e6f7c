import { describe, expect, it } from "vitest";
import { payloadPreview, payloadText } from "./payload";

describe("payloadText", () => {
  it("pretty-prints JSON payloads", () => {
    expect(payloadText({ payload: { a: 1, b: [true] } })).toEqual({ kind: "json", text: '{\n  "a": 1,\n  "b": [\n    true\n  ]\n}' });
    expect(payloadText({ payload: null })).toEqual({ kind: "empty", text: "" });
  });
  it("decodes base64 text and dumps binary as hex", () => {
    expect(payloadText({ payload: null, payload_base64: btoa("héllo".replace("é", "e")) })).toMatchObject({ kind: "text", text: "hello", bytes: 5 });
    const bin = payloadText({ payload: null, payload_base64: btoa("\u0000\u0001AB") });
    expect(bin.kind).toBe("binary");
    expect(bin.text).toMatch(/^00000000  00 01 41 42 +\.\.AB$/);
  });
  it("previews on one line and clips", () => {
    expect(payloadPreview({ payload: { note: "<script>x</script>" } })).toBe('{"note":"<script>x</script>"}');
    expect(payloadPreview({ payload: "x".repeat(10) }, 4)).toBe('"xxx… (8 more characters)');
  });
});
