import { z } from "zod";
import {
  AuditgraphError,
  EventSchema,
  FileKeyStore,
  SCHEMA_VERSION,
  newEventId,
  parseWith,
  streamIdFor,
  streamsOfTenant,
  subjectRef,
  type EventOf,
} from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { StreamProjector } from "@auditgraph/worker";
import { keyStoreDirOf, type Config } from "./config.js";
import { openLedger } from "./ledger.js";

/** Keyed by the options' flags, so that an error names the flag to fix. */
export const EraseArgsSchema = z.object({
  "--user": z.string().trim().min(1, "must be a non-empty user id"),
  "--tenant": z.string().trim().min(1, "must be a non-empty tenant id"),
  "--reason": z.string().trim().min(1, "must not be empty when given").optional(),
  "--by": z.string().trim().min(1, "must not be empty when given").optional(),
});

export interface EraseResult {
  subject: string;
  keyId: string;
  eventId: string;
  streamId: string;
  position: number;
}

/** The key store of a config: the data subjects' keys, one file each (a KMS-backed store fits the same interface). */
export const keyStoreOf = (config: Config) => new FileKeyStore(keyStoreDirOf(config));

/**
 * Erases one data subject (a user of a tenant). In this order, so that a failure part way can be
 * mended by running it again: the subject must have a key; the PII-free `subject.erased` event is
 * appended to the tenant's ledger stream (the erasure is on record before anything is lost); the
 * graph drops the subject's plaintext; then the key is destroyed, and with it every payload sealed
 * for the subject. Events recorded for the subject while this runs may escape it: erase a user
 * once their sessions are over.
 */
export async function eraseSubject(
  config: Config,
  given: { user?: string; tenant?: string; reason?: string; by?: string },
  print: (line: string) => void = console.log,
): Promise<EraseResult> {
  const args = parseWith(EraseArgsSchema, { "--user": given.user, "--tenant": given.tenant, "--reason": given.reason, "--by": given.by }, "erase arguments");
  const user = args["--user"];
  const tenantId = args["--tenant"];
  const store = keyStoreOf(config);
  const subject = subjectRef(tenantId, user);
  const key = await store.current(subject);
  if (!key)
    throw new AuditgraphError(
      "AUDITGRAPH_E_NO_DATA_KEY",
      `--user ${JSON.stringify(user)} of --tenant ${JSON.stringify(tenantId)} has no data key in ${store.dir}: nothing to erase (none of its events were sealed, or it was erased already)`,
    );

  const now = new Date().toISOString();
  const eventId = newEventId();
  const event: EventOf<"subject.erased"> = parseWith(
    EventSchema,
    {
      eventId,
      schemaVersion: SCHEMA_VERSION,
      type: "subject.erased",
      occurredAt: now,
      // An erasure is a run of its own: no agent trace asked for it.
      traceId: eventId,
      runId: eventId,
      parentRunId: null,
      sessionId: null,
      tenantId,
      subject,
      payload: {
        keyId: key.keyId,
        erasedAt: now,
        ...(args["--reason"] ? { reason: args["--reason"] } : {}),
        ...(args["--by"] ? { requestedBy: args["--by"] } : {}),
      },
    },
    "subject.erased event",
  ) as EventOf<"subject.erased">;

  const streamId = streamIdFor(tenantId);
  const ledger = await openLedger(config);
  const graph = new Graph(config.neo4j);
  let record: Awaited<ReturnType<typeof ledger.append>>["records"][number];
  try {
    record = await ledger.append(streamId, [event]).then((result) => result.records[0]!);
    try {
      await graph.migrate();
      // The stream is projected from its cursor through the erasure while the key still opens what
      // comes before it: a worker whose projection lags behind projects only past the cursor, so
      // the plaintext it holds of the subject cannot come back after the erasure.
      const projector = new StreamProjector({ ledger, graph, keyStore: store });
      // The tenant's other streams (its shards) hold the subject's records too: projected to their
      // end first, while the key opens them, so that the erasure drops their plaintext as well.
      for (const shard of streamsOfTenant(await ledger.streams(), tenantId)) if (shard !== streamId) await projector.catchUp(shard);
      await projector.catchUp(streamId, record.position);
    } catch (error) {
      throw new AuditgraphError(
        "AUDITGRAPH_E_ERASURE_NOT_PROJECTED",
        `the erasure is recorded (event ${eventId}, stream ${streamId}) but the graph could not drop the subject's plaintext: ${(error as Error).message}. The key was NOT destroyed: run the same command again once Neo4j is reachable`,
      );
    }
  } finally {
    await graph.close();
    await ledger.close?.();
  }

  const destroyed = await store.destroy(subject);
  print(`erased --user ${JSON.stringify(user)} of --tenant ${JSON.stringify(tenantId)}: subject ${subject}`);
  print(`  data key ${destroyed ?? key.keyId} destroyed (key store ${store.dir}): the subject's sealed payloads can no longer be read`);
  print(`  subject.erased event ${eventId} appended to stream ${streamId} at position ${record.position}`);
  print(`  graph: the subject's prompts, outputs, tool inputs/outputs and reasoning text dropped; its User node holds the subject ref`);
  return { subject, keyId: key.keyId, eventId, streamId, position: record.position };
}
