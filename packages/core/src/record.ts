import { z } from "zod";
import { EventSchema } from "./schema.js";
import { SealedEventSchema } from "./subjects/seal.js";
import { sealedText } from "./subjects/sealed-text.js";
import { canonicalJson, sha256Hex, writtenAsIs } from "./hashing.js";

export const GENESIS_HASH = "0".repeat(64);

/**
 * An event as the ledger holds it: as received, or sealed for its data subject (see
 * `subjects/seal.ts`); `openEvent` gives the one inside a sealed event.
 */
export const StoredEventSchema = z.union([EventSchema, SealedEventSchema]);
export type StoredEvent = z.infer<typeof StoredEventSchema>;

/** One line of a stream: the event as received (or sealed), wrapped in the worker's stamp and the chain. */
export const LedgerRecordSchema = z.object({
  position: z.number().int().nonnegative(),
  streamId: z.string().min(1),
  /** Server-side (worker) time: the timestamp that counts. */
  recordedAt: z.iso.datetime({ offset: true }),
  prevHash: z.string().regex(/^[0-9a-f]{64}$/),
  event: StoredEventSchema,
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});

export type LedgerRecord = z.infer<typeof LedgerRecordSchema>;

/**
 * A record with its event in the clear, as the graph projects it: the stored record's place and
 * stamp (its hash is the stored record's, taken over whatever the ledger holds) with the event
 * in hand or opened.
 */
export const PlainRecordSchema = LedgerRecordSchema.extend({ event: EventSchema });
export type PlainRecord = z.infer<typeof PlainRecordSchema>;

/**
 * The canonical JSON of a record without its hash: what the hash is taken over. `event` sorts
 * first, so with a sealed event whose text this process remembers (subjects/sealed-text.ts) the
 * text is that, then the other members (a sorted object: canonicalJson's fast path).
 */
function recordBody(record: Omit<LedgerRecord, "hash">): string {
  const { position, streamId, recordedAt, prevHash, event } = record;
  const eventText = sealedText(event);
  if (eventText === undefined) return canonicalJson({ event, position, prevHash, recordedAt, streamId });
  // The other members as canonicalJson writes them: written here when each is what a record holds
  // (a finite number, strings with nothing to escape), else by canonicalJson.
  if (typeof position === "number" && Number.isFinite(position) && plain(prevHash) && plain(recordedAt) && plain(streamId))
    return `{"event":${eventText},"position":${JSON.stringify(position)},"prevHash":"${prevHash}","recordedAt":"${recordedAt}","streamId":"${streamId}"}`;
  const rest = canonicalJson({ position, prevHash, recordedAt, streamId });
  return rest === "{}" ? `{"event":${eventText}}` : `{"event":${eventText},${rest.slice(1)}`;
}

/** A string JSON.stringify writes as itself in quotes. */
const plain = (value: unknown): value is string => typeof value === "string" && writtenAsIs(value);

/** The hash covers everything in the record but the hash itself. */
export function recordHash(record: Omit<LedgerRecord, "hash">): string {
  return sha256Hex(recordBody(record));
}

export function sealRecord(unsealed: Omit<LedgerRecord, "hash">): LedgerRecord {
  return { ...unsealed, hash: recordHash(unsealed) };
}

/**
 * Seals a record and gives its canonical JSON as UTF-8 bytes, with one canonicalisation and
 * one encoding: the text the hash is taken over, with the `hash` member put in its sorted place.
 * Top-level keys sort as event, hash, position, ...: `hash` goes before the last `,"position":`,
 * which is the top-level one since only top-level members (none of them an object) follow the
 * event; they are ASCII, so their byte length is their string length.
 */
export function sealRecordBytes(unsealed: Omit<LedgerRecord, "hash">): { record: LedgerRecord; bytes: Buffer } {
  const body = recordBody(unsealed);
  // Encoded into a reused buffer, not a fresh one: the body's bytes are only hashed and copied
  // once into the record's, and a fresh buffer of a few KB a record took a new 8 KB pool every
  // other record. UTF-8 takes at most 3 bytes per UTF-16 code unit.
  const encoded = bodyScratch(3 * body.length);
  const length = encoded.write(body, 0, "utf8");
  const bodyBytes = encoded.subarray(0, length);
  const hash = sha256Hex(bodyBytes);
  const at = length - (body.length - body.lastIndexOf(',"position":'));
  const member = `,"hash":"${hash}"`;
  const bytes = Buffer.allocUnsafe(length + member.length);
  bodyBytes.copy(bytes, 0, 0, at);
  bytes.write(member, at, "latin1");
  bodyBytes.copy(bytes, at + member.length, at);
  return { record: { ...unsealed, hash }, bytes };
}

let scratch = Buffer.allocUnsafeSlow(64 * 1024);

/** A reused buffer of at least `length` bytes, valid until the next call (`sealRecordBytes` is synchronous). */
function bodyScratch(length: number): Buffer {
  // A rare huge record gets a buffer of its own: the one kept stays small.
  if (length > MAX_SCRATCH) return Buffer.allocUnsafe(length);
  if (scratch.length < length) scratch = Buffer.allocUnsafeSlow(Math.min(MAX_SCRATCH, Math.max(length, 2 * scratch.length)));
  return scratch;
}

const MAX_SCRATCH = 4 * 1024 * 1024;

/** `sealRecordBytes`, as text. */
export function sealRecordText(unsealed: Omit<LedgerRecord, "hash">): { record: LedgerRecord; json: string } {
  const { record, bytes } = sealRecordBytes(unsealed);
  return { record, json: bytes.toString("utf8") };
}

/**
 * Whether a stored record's text is sealed by its hash: SHA-256 over the text without its
 * `hash` member equals the hash. For the canonical JSON the ledger writes this is exactly
 * `recordHash`; any other text (edited, or re-serialised) fails, so no parse or
 * canonicalisation is needed to check it.
 */
export function textSealed(json: string, hash: string): boolean {
  const member = `,"hash":"${hash}"`;
  const at = json.lastIndexOf(member);
  return at !== -1 && sha256Hex(json.slice(0, at) + json.slice(at + member.length)) === hash;
}
