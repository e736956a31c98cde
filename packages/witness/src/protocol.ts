import { decodeStrictBase64 } from "@auditgraph/ledger";

/**
 * The tlog-witness `add-checkpoint` request body (https://c2sp.org/tlog-witness): an `old <size>`
 * line, up to 63 consistency proof lines (one base64 hash each), an empty line, then the
 * checkpoint as a signed note. Only the form is read here; the witness checks what it says.
 */
export interface AddCheckpointRequest {
  oldSize: number;
  proof: Buffer[];
  /** The signed checkpoint note, as sent. */
  note: string;
}

/** The most consistency proof lines a client may send (the spec's bound). */
export const MAX_PROOF_LINES = 63;

/** An HTTP answer of the protocol: the status, its body and content type. */
export class WitnessResponse extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly contentType = "text/plain; charset=utf-8",
  ) {
    super(body.trim());
  }
}

const badRequest = (what: string) => new WitnessResponse(400, `malformed add-checkpoint request: ${what}\n`);

/** Decimal, no leading zero but "0", within what a number holds exactly. */
export function parseSize(text: string): number | undefined {
  return /^(0|[1-9][0-9]*)$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
}

/** Reads a request body; throws a 400 WitnessResponse saying what is wrong with its form. */
export function parseAddCheckpoint(body: Buffer): AddCheckpointRequest {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    throw badRequest("the body is not UTF-8");
  }
  const blank = text.indexOf("\n\n");
  if (blank < 0) throw badRequest("no empty line before the checkpoint");
  const [first = "", ...proofLines] = text.slice(0, blank).split("\n");
  const oldSize = first.startsWith("old ") ? parseSize(first.slice(4)) : undefined;
  if (oldSize === undefined) throw badRequest("the first line is `old <size>`, the size decimal with no leading zero");
  if (proofLines.length > MAX_PROOF_LINES) throw badRequest(`more than ${MAX_PROOF_LINES} consistency proof lines`);
  const proof = proofLines.map((line, i) => {
    const hash = decodeStrictBase64(line);
    if (!hash || hash.length !== 32) throw badRequest(`consistency proof line ${i + 1} is not a 32-byte hash in base64`);
    return hash;
  });
  const note = text.slice(blank + 2);
  if (note === "") throw badRequest("no checkpoint after the empty line");
  return { oldSize, proof, note };
}
