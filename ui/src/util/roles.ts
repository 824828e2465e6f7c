import type { Role } from "../api/types";

/** What a button does, named after the route it calls (docs/api.md "role" column). */
export type Action = "send" | "receive" | "retry" | "purge" | "move" | "declare" | "delete";

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

const NEEDS: Record<Action, Role> = {
  send: "operator",
  receive: "operator",
  retry: "operator",
  purge: "operator",
  move: "operator",
  declare: "admin",
  delete: "admin",
};

/** Whether a role may do an action. Viewers never see mutation buttons; the server still checks. */
export function can(role: Role | null | undefined, action: Action): boolean {
  if (!role || !(role in RANK)) return false;
  return RANK[role] >= RANK[NEEDS[action]];
}

export function isRole(x: unknown): x is Role {
  return x === "viewer" || x === "operator" || x === "admin";
}
