import type { SealedEvent } from "./seal.js";

/**
 * The canonical JSON of the sealed events this process made, so that the ledger does not write
 * it again for their records. What it saves is the base64: two thirds of a record are
 * ciphertext, and any serialiser (JSON.stringify, safe-stable-stringify) scans every character
 * of it for ones to escape, about 3 µs a record; base64 has none, and these strings came from
 * `toString("base64")`, so they are written as they are. Every other member goes through
 * JSON.stringify, which is its canonical form (strings, finite numbers, null).
 *
 * An event is answered from here only while it still holds exactly what was written (same
 * members, same values): a sealed event changed after it was made (nothing does, but it is a
 * plain object) is written afresh by canonicalJson, never from a stale text.
 */
const made = new WeakMap<object, { text: string; values: unknown[] }>();

/** The envelope's members in canonical (sorted) order; `sealed` sorts between schemaVersion and subject. */
const MEMBERS = ["eventId", "occurredAt", "parentRunId", "runId", "schemaVersion", "sealed", "subject", "traceId", "type"] as const;
const SEALED_MEMBERS = ["alg", "ciphertext", "iv", "keyId", "tag"] as const;

const isCanonicalScalar = (value: unknown) => typeof value === "string" || value === null || (typeof value === "number" && Number.isFinite(value));
const j = JSON.stringify;

/** Called by `sealEvent` on the event it made, its base64 members fresh from `toString("base64")`. */
export function rememberSealedText(event: SealedEvent): void {
  const { eventId, occurredAt, parentRunId, runId, schemaVersion, sealed, subject, traceId, type } = event;
  // The values as `sealedText` compares them: the envelope's in MEMBERS order, the sealed object's own right after it.
  const values: unknown[] = [
    eventId,
    occurredAt,
    parentRunId,
    runId,
    schemaVersion,
    sealed,
    sealed.alg,
    sealed.ciphertext,
    sealed.iv,
    sealed.keyId,
    sealed.tag,
    subject,
    traceId,
    type,
  ];
  // Anything but a string, null or a finite number (an event sealed without validation) is left to canonicalJson.
  if (!values.every((v) => v === sealed || isCanonicalScalar(v))) return;
  const text =
    `{"eventId":${j(eventId)},"occurredAt":${j(occurredAt)},"parentRunId":${j(parentRunId)},"runId":${j(runId)},"schemaVersion":${j(schemaVersion)},` +
    `"sealed":{"alg":${j(sealed.alg)},"ciphertext":"${sealed.ciphertext}","iv":"${sealed.iv}","keyId":${j(sealed.keyId)},"tag":"${sealed.tag}"},` +
    `"subject":${j(subject)},"traceId":${j(traceId)},"type":${j(type)}}`;
  made.set(event, { text, values });
}

/** Whether `object`'s own keys are exactly `count` many (the members checked by value are all there). */
function keyCount(object: object, count: number): boolean {
  let n = 0;
  for (const key in object) if (Object.hasOwn(object, key) && ++n > count) return false;
  return n === count;
}

/** The canonical JSON of `event` if this process sealed it and it is unchanged since; else undefined. */
export function sealedText(event: unknown): string | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const entry = made.get(event);
  if (!entry) return undefined;
  const envelope = event as Record<string, unknown>;
  const sealed = envelope.sealed;
  if (typeof sealed !== "object" || sealed === null || !keyCount(event, MEMBERS.length) || !keyCount(sealed, SEALED_MEMBERS.length)) return undefined;
  // The values in the order `membersText` pushed them: the envelope's, with the sealed object's
  // own right after the sealed object itself.
  const { values } = entry;
  let i = 0;
  for (const key of MEMBERS) {
    if (envelope[key] !== values[i++]) return undefined;
    if (key === "sealed") for (const inner of SEALED_MEMBERS) if ((sealed as Record<string, unknown>)[inner] !== values[i++]) return undefined;
  }
  return entry.text;
}
