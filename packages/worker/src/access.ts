import { z } from "zod";
import {
  AccessActionSchema,
  AccessSubjectSchema,
  EventSchema,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  SCHEMA_VERSION,
  ValidationError,
  issuesOf,
  newEventId,
  streamIdFor,
  type EventOf,
  type LedgerRecord,
} from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";

const id = z.string().min(1).max(MAX_ID_LENGTH);
/** What the `access` event keeps of a user agent. */
const MAX_USER_AGENT = 512;
/**
 * What a reader did, as the console (or a script with an API token) tells it: who, what, which
 * ids, from where. Strict: a misspelt key is refused by name, never dropped. The time is not the
 * caller's to give: the event is stamped when it is recorded.
 */
export const AccessInputSchema = z.strictObject({
  tenantId: id,
  actor: z.strictObject({
    id,
    name: z.string().min(1).max(MAX_NAME_LENGTH).optional(),
    via: z.enum(["password", "oidc", "token"]),
  }),
  action: AccessActionSchema,
  subject: AccessSubjectSchema,
  from: z.strictObject({
    ip: z.string().min(1).max(64),
    // The client's header, as long as it likes: cut to what the event keeps, never a reason to refuse the read.
    userAgent: z
      .string()
      .transform((s) => s.slice(0, MAX_USER_AGENT))
      .optional(),
  }),
});
export type AccessInput = z.input<typeof AccessInputSchema>;

/** An access that could not be recorded as given: nothing was appended. The issues name the fields. */
export class AccessInputError extends ValidationError {
  override readonly code = "AUDITGRAPH_E_ACCESS_INVALID";
}

export interface AccessResult {
  event: EventOf<"access">;
  /** Where the ledger put it (the tenant's stream). */
  record: LedgerRecord;
  /** False when the ledger took it but the graph could not (yet): the projection catches up from the ledger. */
  projected: boolean;
  projectionError?: string;
}

/** Without the keys given as undefined (a header that was not sent): the event records what was there. */
const defined = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

function checked<S extends z.ZodType>(schema: S, value: unknown, subject: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new AccessInputError(subject, issuesOf(result.error));
  return result.data;
}

/**
 * Records that someone read or decided something: the `access` event (its own trace: traceId =
 * runId = its event id) is appended to the tenant's ledger stream, then projected. Callers await
 * it before they send the content: once this returns, the read is on record whatever the graph
 * did. A bad input is refused (AccessInputError, the fields named) before anything is appended.
 */
export async function recordAccess(ledger: Pick<Ledger, "append">, graph: Pick<Graph, "project"> | undefined, input: AccessInput): Promise<AccessResult> {
  const access = checked(AccessInputSchema, input, "access");
  const eventId = newEventId();
  const event = checked(
    EventSchema,
    {
      eventId,
      schemaVersion: SCHEMA_VERSION,
      type: "access",
      occurredAt: new Date().toISOString(),
      traceId: eventId,
      runId: eventId,
      parentRunId: null,
      sessionId: null,
      tenantId: access.tenantId,
      payload: { actor: defined(access.actor), action: access.action, subject: defined(access.subject), from: defined(access.from) },
    },
    "access event",
  ) as EventOf<"access">;
  const { records } = await ledger.append(streamIdFor(access.tenantId), [event]);
  const record = records[0]!;
  if (!graph) return { event, record, projected: false };
  try {
    await graph.project([{ ...record, event }]);
    return { event, record, projected: true };
  } catch (error) {
    return { event, record, projected: false, projectionError: (error as Error).message };
  }
}
