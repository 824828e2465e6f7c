import { describe, expect, it } from "vitest";
import type { DeadLetter } from "../api/types";
import { countReasons, errorShape, groupErrors } from "./group-errors";

const dl = (last_error: string | null, reason: DeadLetter["reason"] = "max_retries"): DeadLetter => ({
  message: { id: "m", queue: "q", payload: null, content_type: "application/json", correlation_id: "c", headers: {}, timestamp_ms: 0, attempts: 1 },
  reason, original_queue: "q", attempts: 1, last_error, dead_lettered_ms: 0, history: [],
});

describe("error grouping", () => {
  it("blanks numbers, ids and quoted values", () => {
    expect(errorShape("card declined for ada (1999 cents)")).toBe("card declined for ada (# cents)");
    expect(errorShape('order 1042: field "sku" missing')).toBe("order #: field <…> missing");
    expect(errorShape("lease 0190b7a2-1c2d-7e3f-8a9b-0c1d2e3f4a5b expired")).toBe("lease <id> expired");
    expect(errorShape(null)).toBe("(no error recorded)");
  });
  it("groups and counts, biggest first", () => {
    const g = groupErrors([dl("timeout after 2000 ms"), dl("timeout after 3000 ms"), dl("card declined for ada (5 cents)", "rejected")]);
    expect(g.map((x) => [x.shape, x.count])).toEqual([["timeout after # ms", 2], ["card declined for ada (# cents)", 1]]);
    expect(g[0].example).toBe("timeout after 2000 ms");
    expect(countReasons([dl("a"), dl("b", "rejected"), dl("c")])).toEqual([["max_retries", 2], ["rejected", 1]]);
  });
});
