import type { AuditEvent } from "@auditgraph/core";

// What the handler needs of a transport, apart from the BullMQ one (transport.ts): the handler,
// the inline gate and the replay's tee depend on this contract only.

/** Where the handler hands events. `send` must return at once: it runs on the agent's path. */
export interface Transport {
  send(event: AuditEvent): void;
  /**
   * Escalation-first: `event`, already sent, turned out to need a human (see the handler's
   * `escalateAt`): send it now, ahead of ordinary events, instead of after the linger. Must
   * return at once, like `send`. Optional: a transport without it sends the event as usual.
   */
  expedite?(event: AuditEvent): void;
  /** Resolves when every event sent so far is in Redis or in the spool on disk. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `inner`, with `onSend` told of each event before it: a way to count, sample or record what a
 * real transport is given (benchmarks and fault tests do), without a second transport.
 */
export function tapTransport(inner: Transport, onSend: (event: AuditEvent) => void): Transport {
  return {
    send(event) {
      onSend(event);
      inner.send(event);
    },
    expedite: (event) => inner.expedite?.(event),
    flush: () => inner.flush(),
    close: () => inner.close(),
  };
}
