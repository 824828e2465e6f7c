import { describe, expect, it } from "vitest";
import { href, parseRoute, type Route } from "./route";

describe("routes", () => {
  const cases: [string, Route][] = [
    ["#/", { page: "overview" }],
    ["", { page: "overview" }],
    ["#/queues", { page: "queues" }],
    ["#/queues/orders", { page: "queue", name: "orders" }],
    ["#/queues/a%20b%2Fc", { page: "queue", name: "a b/c" }],
    ["#/queues/orders/dead-letters", { page: "dead-letters", queue: "orders" }],
    ["#/queues/orders/dead-letters/m-1", { page: "dead-letters", queue: "orders", id: "m-1" }],
    ["#/queues/orders/dead-letters?reason=expired", { page: "dead-letters", queue: "orders", reason: "expired" }],
    ["#/dead-letters", { page: "dead-letters" }],
    ["#/dead-letters/m-2?reason=rejected", { page: "dead-letters", id: "m-2", reason: "rejected" }],
    ["#/flows", { page: "flows" }],
    ["#/flows/corr-9", { page: "flow", id: "corr-9" }],
    ["#/flows/corr-9?span=ab12", { page: "flow", id: "corr-9", span: "ab12" }],
    ["#/messages/m-7", { page: "message", id: "m-7" }],
  ];
  it.each(cases)("parses %s and builds it back", (hash, route) => {
    expect(parseRoute(hash)).toEqual(route);
    expect(parseRoute(href(route))).toEqual(route);
  });
  it("sends unknown paths and bad encodings to not-found", () => {
    expect(parseRoute("#/nope").page).toBe("not-found");
    expect(parseRoute("#/queues/x/y").page).toBe("not-found");
    expect(parseRoute("#/queues/%E0%A4%A").page).toBe("not-found");
  });
  it("drops an unknown reason filter", () => {
    expect(parseRoute("#/dead-letters?reason=bogus")).toEqual({ page: "dead-letters" });
  });
});
