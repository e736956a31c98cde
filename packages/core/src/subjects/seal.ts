import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";
import { z } from "zod";
import { AuditgraphError } from "../errors.js";
import { canonicalJson } from "../hashing.js";
import type { AuditEvent } from "../schema.js";
import { parseWith } from "../validation.js";
import type { DataKey, SubjectKeyStore } from "./key-store.js";
import { SubjectRefSchema, isSystemEvent, subjectRef, type UserEvent } from "./ref.js";
import { envelopeTexts, rememberSealedText } from "./sealed-text.js";

export const SEAL_ALG = "A256GCM";
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * An event as the ledger stores it when payloads are encrypted per data subject: a small clear
 * envelope, enough to order, index and find the event (and its subject, by pseudonym), and the
 * whole event as received, encrypted under the subject's data key. The ledger's hashes and
 * Merkle leaves are taken over this, ciphertext included, so destroying the key changes nothing
 * that `verify` checks.
 */
export const SealedEventSchema = z.object({
  eventId: z.uuidv7(),
  /** The sealed event's own schema version, so a reader knows how to read what it decrypts. */
  schemaVersion: z.number().int().positive(),
  type: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
  traceId: z.string().min(1),
  runId: z.string().min(1),
  parentRunId: z.string().min(1).nullable(),
  subject: SubjectRefSchema,
  sealed: z.object({
    alg: z.literal(SEAL_ALG),
    keyId: z.string().min(1),
    iv: z.base64(),
    /** AES-256-GCM over the canonical JSON of the whole event as received. */
    ciphertext: z.base64(),
    tag: z.base64(),
  }),
});
export type SealedEvent = z.infer<typeof SealedEventSchema>;

export const isSealed = (event: unknown): event is SealedEvent => typeof event === "object" && event !== null && "sealed" in event;

/**
 * Additional authenticated data: the clear envelope and the key id. A ciphertext moved under
 * another event's (or another subject's) envelope does not open.
 */
function aadOf(envelope: Omit<SealedEvent, "sealed">, keyId: string, texts = envelopeTexts(envelope, keyId)): Buffer {
  if (!texts) {
    const { eventId, schemaVersion, type, occurredAt, traceId, runId, parentRunId, subject } = envelope;
    return Buffer.from(canonicalJson({ alg: SEAL_ALG, eventId, keyId, occurredAt, parentRunId, runId, schemaVersion, subject, traceId, type }));
  }
  // canonicalJson of the object above, its keys in sorted order and every value a scalar: that is
  // each member's JSON text in that order, written here without building the object.
  const t = texts;
  return Buffer.from(
    `{"alg":"${SEAL_ALG}","eventId":${t.eventId},"keyId":${t.keyId},"occurredAt":${t.occurredAt},"parentRunId":${t.parentRunId},` +
      `"runId":${t.runId},"schemaVersion":${t.schemaVersion},"subject":${t.subject},"traceId":${t.traceId},"type":${t.type}}`,
  );
}

/**
 * IVs are drawn from a pool of CSPRNG bytes filled 1,024 IVs at a time: `randomBytes(12)` per
 * event costs about as much as the AES-GCM setup itself. Every IV is still 96 fresh random bits,
 * each handed out once (the pool is refilled before any byte of it is used again); IVs are
 * public, so holding future ones in memory gives nothing away.
 */
const ivPool = Buffer.allocUnsafe(IV_BYTES * 1024);
let ivAt = ivPool.length;

/** The offset in `ivPool` of a fresh IV (its bytes valid until the next call). */
function freshIv(): number {
  if (ivAt + IV_BYTES > ivPool.length) {
    randomFillSync(ivPool);
    ivAt = 0;
  }
  const at = ivAt;
  ivAt += IV_BYTES;
  return at;
}

/**
 * Seals an event for its data subject (its user, within its tenant). `event` is the event as
 * received: everything in it, fields this schema does not know included, goes into the
 * ciphertext. A fresh random IV per event; with one key per subject, a key is nowhere near the
 * 2^32 encryptions a random 96-bit IV is good for.
 */
export async function sealEvent(event: UserEvent, store: Pick<SubjectKeyStore, "keyFor">): Promise<SealedEvent> {
  if (isSystemEvent(event as AuditEvent)) throw new TypeError(`event ${event.eventId}: a ${event.type} event is never sealed (it has no data subject)`);
  const subject = subjectRef(event.identity.user.tenantId, event.identity.user.id);
  return sealEventWithKey(event, await store.keyFor(subject), subject);
}

/**
 * `sealEvent` with the subject's key in hand: a caller sealing many events of few subjects asks
 * the store once per subject and seals the rest without waiting. `subject` is
 * `subjectRef(tenantId, userId)` of the event's user, when the caller has it already.
 */
export function sealEventWithKey(event: UserEvent, key: DataKey, subject = subjectRef(event.identity.user.tenantId, event.identity.user.id)): SealedEvent {
  if (isSystemEvent(event as AuditEvent)) throw new TypeError(`event ${event.eventId}: a ${event.type} event is never sealed (it has no data subject)`);
  // Members in canonical (sorted) order, the sealed ones too: should the ledger not find its
  // canonical text remembered (sealed-text.ts), canonicalJson takes its JSON.stringify path.
  const envelope = {
    eventId: event.eventId,
    occurredAt: event.occurredAt,
    parentRunId: event.parentRunId,
    runId: event.runId,
    schemaVersion: event.schemaVersion,
    subject,
    traceId: event.traceId,
    type: event.type,
  };
  const texts = envelopeTexts(envelope, key.keyId);
  const at = freshIv();
  const cipher = createCipheriv("aes-256-gcm", key.secret, ivPool.subarray(at, at + IV_BYTES), { authTagLength: TAG_BYTES });
  cipher.setAAD(aadOf(envelope, key.keyId, texts));
  const ciphertext = cipher.update(canonicalJson(event), "utf8");
  // GCM is a stream mode: final() adds no bytes (it checks and makes the tag), so no concat.
  const rest = cipher.final();
  const sealed: SealedEvent = {
    eventId: envelope.eventId,
    occurredAt: envelope.occurredAt,
    parentRunId: envelope.parentRunId,
    runId: envelope.runId,
    schemaVersion: envelope.schemaVersion,
    sealed: {
      alg: SEAL_ALG,
      ciphertext: (rest.length === 0 ? ciphertext : Buffer.concat([ciphertext, rest])).toString("base64"),
      iv: ivPool.toString("base64", at, at + IV_BYTES),
      keyId: key.keyId,
      tag: cipher.getAuthTag().toString("base64"),
    },
    subject,
    traceId: envelope.traceId,
    type: envelope.type,
  };
  // An envelope with a member that is not a scalar (sealed without validation) is left to canonicalJson.
  if (texts) rememberSealedText(sealed, texts);
  return sealed;
}

/** What a stored event opens to: the event as received, or word that its subject's key is gone. */
export type OpenedEvent = { erased: false; event: AuditEvent } | { erased: true; eventId: string; subject: string; keyId: string };

/**
 * The event a stored one holds. An event stored in the clear (never sealed, or a
 * `subject.erased`) is returned as it is; a sealed one is decrypted, or reported erased when its
 * key is no longer in the store. A ciphertext, tag or envelope that does not authenticate is an
 * error naming the event: that is tampering (or the wrong key store), never an erasure.
 */
export async function openEvent(stored: AuditEvent | SealedEvent, store: Pick<SubjectKeyStore, "byId">): Promise<OpenedEvent> {
  if (!isSealed(stored)) return { erased: false, event: stored };
  const sealed = parseWith(SealedEventSchema, stored, `sealed event ${String((stored as { eventId?: unknown }).eventId)}`);
  const { keyId } = sealed.sealed;
  const key = await store.byId(sealed.subject, keyId);
  if (!key) return { erased: true, eventId: sealed.eventId, subject: sealed.subject, keyId };
  const tag = Buffer.from(sealed.sealed.tag, "base64");
  if (tag.length !== TAG_BYTES)
    throw new AuditgraphError("AUDITGRAPH_E_SEAL_TAG_LENGTH", `event ${sealed.eventId}: sealed.tag must be ${TAG_BYTES} bytes, got ${tag.length}`);
  const decipher = createDecipheriv("aes-256-gcm", key.secret, Buffer.from(sealed.sealed.iv, "base64"), { authTagLength: TAG_BYTES });
  decipher.setAAD(aadOf(sealed, keyId));
  decipher.setAuthTag(tag);
  let plaintext: string;
  try {
    plaintext = Buffer.concat([decipher.update(Buffer.from(sealed.sealed.ciphertext, "base64")), decipher.final()]).toString("utf8");
  } catch {
    throw new AuditgraphError(
      "AUDITGRAPH_E_SEAL_UNAUTHENTIC",
      `event ${sealed.eventId}: sealed.ciphertext does not authenticate under key ${keyId} (tampered with, or another key store's key)`,
    );
  }
  const event = JSON.parse(plaintext) as AuditEvent;
  if (event.eventId !== sealed.eventId)
    throw new AuditgraphError("AUDITGRAPH_E_SEAL_EVENT_MISMATCH", `event ${sealed.eventId}: the sealed event inside has another eventId`);
  return { erased: false, event };
}
