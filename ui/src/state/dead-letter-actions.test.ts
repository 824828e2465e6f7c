import { describe, expect, it } from "vitest";
import { actionVerb, confirmText, type PendingAction } from "./dead-letter-actions";

const pending = (p: Partial<PendingAction>): PendingAction => ({
  action: { kind: "retry" }, groups: [{ queue: "orders", selection: {} }], describe: "all dead letters", count: 3, ...p,
});

describe("dead-letter confirmations state the count", () => {
  it("for retry, purge and move", () => {
    expect(confirmText(pending({}))).toBe("Send 3 dead letters of orders back to their original queue.");
    expect(confirmText(pending({ count: 1 }))).toBe("Send 1 dead letter of orders back to its original queue.");
    expect(confirmText(pending({ action: { kind: "purge" }, count: 1200 }))).toBe("Delete 1,200 dead letters of orders for good. This cannot be undone.");
    expect(confirmText(pending({ action: { kind: "move", to: "orders.parking" }, groups: [{ queue: "a", selection: {} }, { queue: "b", selection: {} }] })))
      .toBe("Move 3 dead letters of a, b to queue orders.parking.");
    expect([actionVerb({ kind: "retry" }), actionVerb({ kind: "purge" }), actionVerb({ kind: "move", to: "x" })]).toEqual(["Retry", "Purge", "Move"]);
  });
});
