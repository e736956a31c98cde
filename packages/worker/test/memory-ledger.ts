import { GENESIS_HASH, type LedgerRecord, type StoredEvent } from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";

/** A ledger that keeps what is appended to it, one stream, positions from 0 (append only). */
export function memoryLedger() {
  const records: LedgerRecord[] = [];
  const append = async (streamId: string, events: StoredEvent[]) => {
    const out = events.map((event) => {
      const record = {
        position: records.length,
        streamId,
        recordedAt: new Date().toISOString(),
        prevHash: GENESIS_HASH,
        event,
        hash: GENESIS_HASH,
      } as LedgerRecord;
      records.push(record);
      return record;
    });
    return { records: out, appended: out.length };
  };
  return { ledger: { append } as unknown as Ledger, records };
}
