import { writtenAsIs } from "../hashing.js";
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

type TextMember = Exclude<(typeof MEMBERS)[number], "sealed">;
/** The envelope's members whose JSON texts `envelopeTexts` makes, beside the key id: all but `sealed`. */
const TEXT_MEMBERS = MEMBERS.filter((m): m is TextMember => m !== "sealed");

/**
 * The JSON texts of a sealed event's clear members and key id, each written once: the AAD and the
 * remembered text are both made from them.
 */
export type EnvelopeTexts = Record<TextMember | "keyId", string>;

/** JSON.stringify of a string, null or finite number (their canonical form); undefined for anything else. */
function scalarText(value: unknown): string | undefined {
  if (typeof value === "string") return writtenAsIs(value) ? `"${value}"` : JSON.stringify(value);
  if (value === null) return "null";
  return typeof value === "number" && Number.isFinite(value) ? JSON.stringify(value) : undefined;
}

/**
 * The envelope's texts, or undefined when a member is anything but a string, null or a finite
 * number (an event sealed without validation): such an event is left to canonicalJson.
 */
export function envelopeTexts(envelope: Omit<SealedEvent, "sealed">, keyId: string): EnvelopeTexts | undefined {
  const keyIdText = scalarText(keyId);
  if (keyIdText === undefined) return undefined;
  const texts = { keyId: keyIdText } as EnvelopeTexts;
  for (const member of TEXT_MEMBERS) {
    const text = scalarText(envelope[member]);
    if (text === undefined) return undefined;
    texts[member] = text;
  }
  return texts;
}

/**
 * Called by `sealEvent` on the event it made, with the texts of its envelope (`envelopeTexts` of
 * that event's members) and its base64 members fresh from `toString("base64")`.
 */
export function rememberSealedText(event: SealedEvent, texts: EnvelopeTexts): void {
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
  const t = texts;
  const text =
    `{"eventId":${t.eventId},"occurredAt":${t.occurredAt},"parentRunId":${t.parentRunId},"runId":${t.runId},"schemaVersion":${t.schemaVersion},` +
    `"sealed":{"alg":"${sealed.alg}","ciphertext":"${sealed.ciphertext}","iv":"${sealed.iv}","keyId":${t.keyId},"tag":"${sealed.tag}"},` +
    `"subject":${t.subject},"traceId":${t.traceId},"type":${t.type}}`;
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
