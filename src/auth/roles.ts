// Roles and what each may do. Roles are ordered: each one may do everything
// the one below it may (reader < writer < admin).

export const ROLES = ["reader", "writer", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** query: read data and metadata; ingest: write ticks; manage: tokens, specs, cluster. */
export type Action = "query" | "ingest" | "manage";

const RANK: Record<Role, number> = { reader: 0, writer: 1, admin: 2 };
const NEEDS: Record<Action, Role> = { query: "reader", ingest: "writer", manage: "admin" };

export function isRole(s: unknown): s is Role {
  return typeof s === "string" && (ROLES as readonly string[]).includes(s);
}

export function allows(role: Role, action: Action): boolean {
  return RANK[role] >= RANK[NEEDS[action]];
}

/** The least role that may perform `action`. */
export function roleFor(action: Action): Role {
  return NEEDS[action];
}
