import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SseParser", () => {
  it("joins multi-line data and defaults the event name", () => {
    const p = new SseParser();
    expect(p.push("data: a\ndata: b\n\n")).toEqual([{ event: "message", data: "a\nb" }]);
  });

  it("handles CRLF and CR line endings, including a CRLF split across chunks", () => {
    const p = new SseParser();
    expect(p.push("event: feed\r\ndata: 1\r")).toEqual([]);
    expect(p.push("\n\r\n")).toEqual([{ event: "feed", data: "1" }]);
    expect(p.push("data: 2\r\rdata: 3\n\n")).toEqual([
      { event: "message", data: "2" },
      { event: "message", data: "3" },
    ]);
  });

  it("ignores comments, unknown fields and events without data; keeps id and retry", () => {
    const p = new SseParser();
    expect(p.push(": keep-alive\n\nevent: x\n\nfoo: bar\nid: 7\nretry: 2500\ndata:x\n\n")).toEqual([
      { event: "message", data: "x", id: "7", retry: 2500 },
    ]);
  });

  it("waits for the blank line before dispatching", () => {
    const p = new SseParser();
    expect(p.push("event: overview\ndata: {\"a\"")).toEqual([]);
    expect(p.push(":1}\n")).toEqual([]);
    expect(p.push("\n")).toEqual([{ event: "overview", data: '{"a":1}' }]);
  });
});
