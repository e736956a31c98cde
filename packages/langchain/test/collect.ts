import type { AuditEvent, EventOf } from "@auditgraph/core";
import type { Transport } from "../src/index.js";

/** A transport that keeps what it is sent: the handler's own behaviour is the unit under test. */
export class Collect implements Transport {
  events: AuditEvent[] = [];
  send(event: AuditEvent) {
    this.events.push(event);
  }
  async flush() {}
  async close() {}
  of<T extends AuditEvent["type"]>(type: T) {
    return this.events.filter((e): e is EventOf<T> => e.type === type);
  }
}
