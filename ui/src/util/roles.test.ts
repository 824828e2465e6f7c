import { describe, expect, it } from "vitest";
import { can, isRole, type Action } from "./roles";

const actions: Action[] = ["send", "receive", "retry", "purge", "move", "declare", "delete"];

describe("role gating", () => {
  it("viewers may do nothing that mutates", () => {
    for (const a of actions) expect(can("viewer", a)).toBe(false);
  });
  it("operators retry, purge and move but do not declare or delete", () => {
    expect(actions.filter((a) => can("operator", a))).toEqual(["send", "receive", "retry", "purge", "move"]);
  });
  it("admins may do everything", () => {
    for (const a of actions) expect(can("admin", a)).toBe(true);
  });
  it("an unknown or missing role may do nothing", () => {
    expect(can(null, "retry")).toBe(false);
    expect(can("root" as never, "retry")).toBe(false);
    expect(isRole("operator")).toBe(true);
    expect(isRole("root")).toBe(false);
  });
});
