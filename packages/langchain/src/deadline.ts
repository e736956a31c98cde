import { AuditgraphError } from "@auditgraph/core";

export const closing = Symbol("closing");

const cutShort = (what: string) =>
  Object.assign(new AuditgraphError("AUDITGRAPH_E_TRANSPORT_CLOSING", `${what}: cut short, the transport is closing`), { [closing]: true });

/** `promise`, or a rejection after `ms`, or at once when `cut` aborts (the transport is closing). */
export const withTimeout = <T>(promise: Promise<T>, ms: number, what: string, cut?: AbortSignal): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    if (cut?.aborted) return reject(cutShort(what));
    const onCut = () => (clearTimeout(timer), reject(cutShort(what)));
    const timer = setTimeout(
      () => (cut?.removeEventListener("abort", onCut), reject(new AuditgraphError("AUDITGRAPH_E_TIMEOUT", `${what} took longer than ${ms} ms`))),
      ms,
    );
    cut?.addEventListener("abort", onCut, { once: true });
    promise.then(
      (v) => (clearTimeout(timer), cut?.removeEventListener("abort", onCut), resolve(v)),
      (e: unknown) => (clearTimeout(timer), cut?.removeEventListener("abort", onCut), reject(e as Error)),
    );
  });
