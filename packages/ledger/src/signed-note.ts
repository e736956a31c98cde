import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { LedgerErrorCodes, ledgerError } from "./errors.js";

/**
 * C2SP signed notes (https://c2sp.org/signed-note) and the tlog-checkpoint body they carry
 * (https://c2sp.org/tlog-checkpoint): the format transparency-log tooling (Go's
 * golang.org/x/mod/sumdb/note, witnesses, monitors) reads, so that our checkpoints can be checked
 * without auditgraph. Ed25519 only (signature type 0x01): the one type our keys have.
 */

/** The signed-note signature type of Ed25519. */
export const ED25519_SIGNATURE_TYPE = 0x01;

const EM_DASH_PREFIX = "\u2014 ";
// The spec asks verifiers to bound the signatures they read (and accept at least 16); Go's reads 100.
const MAX_SIGNATURES = 100;

/** Whether `text` holds an ASCII control character (below U+0020), newline aside when `newlines` are allowed. */
function hasControl(text: string, newlines = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && !(newlines && c === 0x0a)) return true;
  }
  return false;
}

const malformed = (what: string) => ledgerError(LedgerErrorCodes.noteMalformed, `malformed signed note: ${what}`);

/** Key names are non-empty, with no Unicode space and no '+' (the vkey's separator). */
export const isValidKeyName = (name: string): boolean => name.length > 0 && !/[\s+]/u.test(name) && !hasControl(name);

/**
 * Strict standard base64 (RFC 4648 section 4, padded, as the spec and Go write it): a string that
 * decodes and re-encodes to itself. Node's decoder alone skips stray characters.
 */
export function decodeBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, "base64");
  return text !== "" && bytes.toString("base64") === text ? bytes : undefined;
}

/** The 32 raw bytes of an Ed25519 public key (RFC 8032), as the note's key id and vkey encode it. */
export function rawEd25519PublicKey(publicKey: KeyObject): Buffer {
  if (publicKey.asymmetricKeyType !== "ed25519") throw malformed(`a note key must be Ed25519, not ${publicKey.asymmetricKeyType}`);
  const { x } = publicKey.export({ format: "jwk" });
  return Buffer.from(x as string, "base64url");
}

/** The key id: the first 4 bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || 32-byte public key). */
export function noteKeyId(name: string, rawPublicKey: Buffer): number {
  const digest = createHash("sha256")
    .update(name, "utf8")
    .update(Buffer.from([0x0a, ED25519_SIGNATURE_TYPE]))
    .update(rawPublicKey)
    .digest();
  return digest.readUInt32BE(0);
}

/** A note signer: its key name and Ed25519 private key. */
export interface NoteSigner {
  name: string;
  privateKey: KeyObject;
}

/** A note verifier: a key name, its key id and the Ed25519 public key. */
export interface NoteVerifier {
  name: string;
  keyId: number;
  publicKey: KeyObject;
}

/** One signature line: who (name and key id) and the signature bytes (without the key id). */
export interface NoteSignature {
  name: string;
  keyId: number;
  signature: Buffer;
}

export interface Note {
  /** The signed text, its final newline included (the separating blank line is not). */
  text: string;
  signatures: NoteSignature[];
}

/** What `openNote` found: the text, the signatures it verified, and those of keys it does not know. */
export interface OpenedNote extends Note {
  unverified: NoteSignature[];
}

const hex8 = (keyId: number) => keyId.toString(16).padStart(8, "0");

/** The verifier of an Ed25519 public key under a key name. */
export function noteVerifier(name: string, publicKey: KeyObject): NoteVerifier {
  if (!isValidKeyName(name)) throw malformed(`key name ${JSON.stringify(name)} is empty or has a space or '+'`);
  return { name, keyId: noteKeyId(name, rawEd25519PublicKey(publicKey)), publicKey };
}

/** The standard verifier key text: `<name>+<8 hex key id>+<base64(0x01 || 32-byte public key)>`. */
export function encodeVerifierKey(verifier: Pick<NoteVerifier, "name" | "publicKey">): string {
  const raw = rawEd25519PublicKey(verifier.publicKey);
  const key = Buffer.concat([Buffer.from([ED25519_SIGNATURE_TYPE]), raw]).toString("base64");
  return `${verifier.name}+${hex8(noteKeyId(verifier.name, raw))}+${key}`;
}

/** Reads a verifier key text; refuses one whose key id does not match its name and key, or of another type. */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const parts = vkey.split("+");
  // A base64 key may itself hold '+': the name and id are the first two fields, the rest is the key.
  const [name = "", id = "", ...rest] = parts;
  const key = decodeBase64(rest.join("+"));
  if (!isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(id) || !key) throw malformed("a verifier key is <name>+<8 hex key id>+<base64 key>");
  if (key[0] !== ED25519_SIGNATURE_TYPE || key.length !== 33) throw malformed("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)");
  const raw = key.subarray(1);
  if (noteKeyId(name, raw) !== Number.parseInt(id, 16)) throw malformed(`the verifier key's id ${id} is not that of its name and key`);
  const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
  return { name, keyId: noteKeyId(name, raw), publicKey };
}

/** No ASCII control character but newline, and nothing UTF-8 cannot encode (a lone surrogate). */
function checkCharacters(message: string): void {
  if (hasControl(message, true)) throw malformed("it holds an ASCII control character other than newline");
  // With the u flag, a surrogate pair is one code point: this matches lone surrogates only.
  if (/[\ud800-\udfff]/u.test(message)) throw malformed("it is not valid UTF-8");
}

/** A note received as bytes must be valid UTF-8: decoded strictly, never with replacement characters. */
function decodeNote(message: string | Uint8Array): string {
  if (typeof message === "string") return message;
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(message);
  } catch {
    throw malformed("it is not valid UTF-8");
  }
}

function checkText(text: string): void {
  if (text === "" || !text.endsWith("\n")) throw malformed("the text must be non-empty and end with a newline");
  checkCharacters(text);
}

/** The note as text: the text, a blank line, then one `— <name> <base64(key id || signature)>` line per signature. */
export function formatNote(note: Note): string {
  checkText(note.text);
  if (note.signatures.length === 0) throw malformed("a note has at least one signature");
  return `${note.text}\n${formatSignatureLines(note.signatures)}`;
}

/** Signature lines alone, each `— <name> <base64(key id || signature)>\n` (what a witness answers with). */
export function formatSignatureLines(signatures: NoteSignature[]): string {
  return signatures
    .map((s) => {
      if (!isValidKeyName(s.name)) throw malformed(`key name ${JSON.stringify(s.name)} is empty or has a space or '+'`);
      const id = Buffer.alloc(4);
      id.writeUInt32BE(s.keyId >>> 0);
      return `${EM_DASH_PREFIX}${s.name} ${Buffer.concat([id, s.signature]).toString("base64")}\n`;
    })
    .join("");
}

/** Reads a block of signature lines (each ending in a newline), as `parseNote` reads a note's. */
export function parseSignatureLines(input: string): NoteSignature[] {
  checkCharacters(input);
  if (input === "" || !input.endsWith("\n")) throw malformed("the signature lines must end with a newline");
  const signatures: NoteSignature[] = [];
  for (const line of input.slice(0, -1).split("\n")) {
    if (!line.startsWith(EM_DASH_PREFIX)) throw malformed("a signature line starts with an em dash (U+2014) and a space");
    const rest = line.slice(EM_DASH_PREFIX.length);
    const space = rest.indexOf(" ");
    const name = space < 0 ? rest : rest.slice(0, space);
    const bytes = space < 0 ? undefined : decodeBase64(rest.slice(space + 1));
    if (!isValidKeyName(name) || !bytes || bytes.length < 5) throw malformed("a signature line is `— <key name> <base64(key id || signature)>`");
    if (signatures.length === MAX_SIGNATURES) throw malformed(`more than ${MAX_SIGNATURES} signatures`);
    signatures.push({ name, keyId: bytes.readUInt32BE(0), signature: bytes.subarray(4) });
  }
  return signatures;
}

/** Splits a signed note into its text and signatures, checking its form only (`openNote` verifies). */
export function parseNote(input: string | Uint8Array): Note {
  const message = decodeNote(input);
  checkCharacters(message);
  // The text ends at the last blank line; it may hold blank lines of its own.
  const split = message.lastIndexOf("\n\n");
  if (split < 0) throw malformed("no blank line before the signatures");
  const text = message.slice(0, split + 1);
  return { text, signatures: parseSignatureLines(message.slice(split + 2)) };
}

/** Signs `text` (non-empty, ending in a newline) with each signer: the signed note, as text. */
export function signNote(text: string, ...signers: NoteSigner[]): string {
  checkText(text);
  const signatures = signers.map(({ name, privateKey }) => {
    if (privateKey.asymmetricKeyType !== "ed25519") throw malformed(`a note signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
    const { keyId } = noteVerifier(name, createPublicKey(privateKey));
    return { name, keyId, signature: sign(null, Buffer.from(text, "utf8"), privateKey) };
  });
  return formatNote({ text, signatures });
}

/**
 * Parses a note and verifies it with the known verifiers, as the spec says: signatures of keys
 * not known (name and key id both) are ignored; a known key's signature that does not verify
 * refuses the note; so does a note no known key signed.
 */
export function openNote(message: string | Uint8Array, verifiers: NoteVerifier[]): OpenedNote {
  const note = parseNote(message);
  const body = Buffer.from(note.text, "utf8");
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  for (const s of note.signatures) {
    const known = verifiers.find((v) => v.name === s.name && v.keyId === s.keyId);
    if (!known) {
      unverified.push(s);
      continue;
    }
    if (!verify(null, body, known.publicKey, s.signature))
      throw ledgerError(LedgerErrorCodes.noteUnverified, `the note's signature by ${s.name}+${hex8(s.keyId)} does not verify`);
    verified.push(s);
  }
  if (verified.length === 0) throw ledgerError(LedgerErrorCodes.noteUnverified, "no known key signed the note");
  return { text: note.text, signatures: verified, unverified };
}

/** The tlog-checkpoint note text: origin, tree size, root hash, then any extension lines. */
export interface CheckpointBody {
  origin: string;
  treeSize: number;
  /** The RFC 6962 Merkle root (SHA-256, 32 bytes). */
  rootHash: Buffer;
  extensions: string[];
}

/** `<origin>\n<tree size>\n<base64 root hash>\n`, extension lines after (we write none). */
export function formatCheckpointBody(body: Omit<CheckpointBody, "extensions"> & { extensions?: string[] }): string {
  const { origin, treeSize, rootHash, extensions = [] } = body;
  if (origin === "" || hasControl(origin)) throw malformed("a checkpoint's origin is one non-empty line");
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) throw malformed(`tree size ${treeSize} is not a whole number from 0`);
  if (rootHash.length !== 32) throw malformed("a checkpoint's root hash is 32 bytes");
  if (extensions.some((e) => e === "" || hasControl(e))) throw malformed("extension lines are non-empty single lines");
  return [origin, String(treeSize), rootHash.toString("base64"), ...extensions].map((line) => `${line}\n`).join("");
}

/** Reads a checkpoint note's text (as `parseNote` or `openNote` gave it). */
export function parseCheckpointBody(text: string): CheckpointBody {
  if (!text.endsWith("\n")) throw malformed("a checkpoint's text ends with a newline");
  const [origin = "", size = "", root = "", ...extensions] = text.slice(0, -1).split("\n");
  if (origin === "") throw malformed("a checkpoint's first line is its origin, non-empty");
  // Decimal with no leading zero (but "0" for the empty tree), within what a number holds exactly.
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) throw malformed(`tree size ${JSON.stringify(size)} is not decimal`);
  const rootHash = decodeBase64(root);
  if (!rootHash || rootHash.length !== 32) throw malformed("a checkpoint's third line is its root hash, 32 bytes in base64");
  if (extensions.some((e) => e === "")) throw malformed("a checkpoint's extension lines are non-empty");
  return { origin, treeSize: Number(size), rootHash, extensions };
}
