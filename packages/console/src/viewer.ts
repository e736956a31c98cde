import { z } from "zod";
import { forbidden, notFound } from "./errors.js";

/** Roles per tenant, each including the ones before it: a reviewer may view, an admin may decide. */
export const ROLES = ["viewer", "reviewer", "admin"] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

export const ViewerSchema = z.object({
  accountId: z.string().min(1),
  email: z.string().min(1),
  name: z.string().min(1),
  /** tenantId -> role. A tenant not listed does not exist for this viewer (404, never 403). */
  roles: z.record(z.string(), RoleSchema),
  /** How this request was authenticated. */
  via: z.enum(["password", "oidc", "token"]),
});
export type Viewer = z.infer<typeof ViewerSchema>;

const rank = (role: Role) => ROLES.indexOf(role);

export const hasRole = (viewer: Viewer, tenantId: string, role: Role): boolean => {
  const held = viewer.roles[tenantId];
  return held !== undefined && rank(held) >= rank(role);
};

/** The tenants a viewer may read. */
export const tenantsOf = (viewer: Viewer): string[] => Object.keys(viewer.roles).sort();

/**
 * Refuses a request on a tenant: 404 when the viewer has no role there (the tenant, and so every id
 * in it, does not exist for them), 403 when the role is too low (nothing is appended then).
 */
export function requireRole(viewer: Viewer, tenantId: string, role: Role, what: string): void {
  if (viewer.roles[tenantId] === undefined) throw notFound(what);
  if (!hasRole(viewer, tenantId, role)) throw forbidden(what);
}
