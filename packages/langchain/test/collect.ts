import { isSystemEvent, type AuditEvent, type UserEvent } from "@auditgraph/core";
import type { Transport } from "../src/index.js";

/** A transport that keeps what it is sent: the handler's own behaviour is the unit under test. */
export class Collect implements Transport {
  events: UserEvent[] = [];
  send(event: AuditEvent) {
    // The handler speaks for a user on every event; only an operator's system events (erasure, deployment) name none.
    if (isSystemEvent(event)) throw new Error(`the handler sent a ${event.type} event (${event.eventId})`);
    this.events.push(event);
  }
  async flush() {}
  async close() {}
  of<T extends UserEvent["type"]>(type: T) {
    return this.events.filter((e): e is Extract<UserEvent, { type: T }> => e.type === type);
  }
}
