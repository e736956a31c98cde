import type { LedgerRecord, PlainRecord } from "../record.js";
import type { SubjectKeyStore } from "./key-store.js";
import { openEvent, type SealedEvent } from "./seal.js";

/** A stored record opened for a reader: its event in the clear, or marked erased (the sealed record as stored). */
export type OpenedRecord =
  | { erased: false; record: PlainRecord }
  | { erased: true; record: LedgerRecord & { event: SealedEvent }; subject: string; keyId: string };

/**
 * Records as stored, opened for readers that need the events (a graph rebuild, an export): in
 * the same order, each with its event decrypted, or marked erased when its subject's key is
 * gone. The events are as received (in their producer's schema version): upcast them to read
 * them as the current version. Throws on a record whose ciphertext does not authenticate.
 */
export async function openRecords(records: readonly LedgerRecord[], store: Pick<SubjectKeyStore, "byId">): Promise<OpenedRecord[]> {
  // One store lookup per key, not per record: a subject's records share a key.
  const keys = new Map<string, ReturnType<SubjectKeyStore["byId"]>>();
  const cached: Pick<SubjectKeyStore, "byId"> = {
    byId(subject, keyId) {
      const at = `${subject}/${keyId}`;
      let key = keys.get(at);
      if (!key) keys.set(at, (key = store.byId(subject, keyId)));
      return key;
    },
  };
  const out: OpenedRecord[] = [];
  for (const record of records) {
    const opened = await openEvent(record.event, cached);
    out.push(
      opened.erased
        ? { erased: true, record: record as LedgerRecord & { event: SealedEvent }, subject: opened.subject, keyId: opened.keyId }
        : { erased: false, record: { ...record, event: opened.event } },
    );
  }
  return out;
}
