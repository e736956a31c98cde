import type { Identity } from "@auditgraph/core";
import { AUDIT_REFUSAL_CODES, AuditRefusal } from "./errors.js";

/**
 * Keys read from `config.metadata` of an invocation (LangChain passes metadata down to every
 * child run). They override the handler's defaults for that invocation.
 */
export const METADATA_KEYS = {
  userId: "auditgraph_user_id",
  tenantId: "auditgraph_tenant_id",
  userRoles: "auditgraph_user_roles",
  sessionId: "auditgraph_session_id",
  agentId: "auditgraph_agent_id",
  agentName: "auditgraph_agent_name",
  agentVersion: "auditgraph_agent_version",
  /** The hash (or version id) of the prompt template behind the model call's messages. */
  promptTemplateHash: "auditgraph_prompt_template_hash",
} as const;

const ANONYMOUS: Identity["user"] = { id: "anonymous", tenantId: "default" };

/** A non-empty string, else undefined. */
export const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

const rolesOf = (v: unknown): string[] | undefined =>
  Array.isArray(v)
    ? v.filter((r): r is string => typeof r === "string" && r.length > 0)
    : typeof v === "string" && v
      ? v
          .split(",")
          .map((r) => r.trim())
          .filter(Boolean)
      : undefined;

/** What a run takes from its parent run, if the handler saw one. */
export interface ParentIdentity {
  identity: Identity;
  anonymous: boolean;
  sessionId: string | null;
}

export interface IdentityDefaults {
  user?: Identity["user"] | undefined;
  agent: Identity["agent"];
  sessionId?: string | undefined;
}

export interface ResolvedIdentity {
  identity: Identity;
  /** No user id anywhere: not in the metadata, the parent run or the handler's `user` option. */
  anonymous: boolean;
  sessionId: string | null;
}

/**
 * The identity of a run: its invocation's metadata first, then its parent run's identity, then
 * the handler's defaults.
 */
export function resolveIdentity(
  parent: ParentIdentity | undefined,
  metadata: Record<string, unknown> | undefined,
  defaults: IdentityDefaults,
): ResolvedIdentity {
  const m = metadata ?? {};
  const base = parent?.identity ?? { user: defaults.user ?? ANONYMOUS, agent: defaults.agent };
  const userId = str(m[METADATA_KEYS.userId]);
  const roles = rolesOf(m[METADATA_KEYS.userRoles]) ?? base.user.roles;
  const anonymous = !userId && (parent ? parent.anonymous : !defaults.user);
  const identity: Identity = {
    user: {
      id: userId ?? base.user.id,
      tenantId: str(m[METADATA_KEYS.tenantId]) ?? base.user.tenantId,
      ...(roles?.length ? { roles } : {}),
    },
    agent: {
      id: str(m[METADATA_KEYS.agentId]) ?? base.agent.id,
      name: str(m[METADATA_KEYS.agentName]) ?? base.agent.name,
      version: str(m[METADATA_KEYS.agentVersion]) ?? base.agent.version,
    },
  };
  const sessionId = str(m[METADATA_KEYS.sessionId]) ?? str(m.thread_id) ?? parent?.sessionId ?? defaults.sessionId ?? null;
  return { identity, anonymous, sessionId };
}

/** The strict-mode refusal of a run without a user identity. */
export const identityRequired = (): AuditRefusal =>
  new AuditRefusal(
    AUDIT_REFUSAL_CODES.identityRequired,
    `auditgraph (strict): no user identity for this run; set config.metadata.${METADATA_KEYS.userId} and ${METADATA_KEYS.tenantId} on the invocation, or the handler's \`user\` option`,
  );
