import { createPrivateKey, type KeyObject } from "node:crypto";
import {
  cosign,
  cosigner,
  encodeCosignerKey,
  formatNote,
  formatSignatureLines,
  openNote,
  parseCheckpointBody,
  parseNote,
  parseVerifierKey,
  rootOf,
  verifyConsistency,
  type CheckpointBody,
  type Cosigner,
  type NoteVerifier,
} from "@auditgraph/ledger";
import { AuditgraphError } from "@auditgraph/core";
import { parseAddCheckpoint, WitnessResponse } from "./protocol.js";
import { WitnessErrorCodes, type WitnessState } from "./state.js";

/** The logging a witness does: one line per checkpoint cosigned or refused (never the key). */
export interface WitnessLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface WitnessOptions {
  /** The witness's name: the key name of its cosignatures (a schema-less URL, by the spec's advice). */
  name: string;
  /** Its Ed25519 private key (PEM or KeyObject). */
  privateKey: string | KeyObject;
  /** The logs it witnesses: their C2SP verifier keys (`auditgraph vkey`), the key name being the log's origin. */
  logs: string[];
  state: WitnessState;
  /** POSIX seconds; a clock of its own for tests that cosign within one second. */
  now?: () => number;
  log?: WitnessLog;
}

/** RFC 9162 MTH({}): the root a size-0 checkpoint must carry. */
const EMPTY_ROOT = rootOf([]);
const SIZE_TYPE = "text/x.tlog.size";
const silent: WitnessLog = { info: () => undefined, warn: () => undefined };

/**
 * A C2SP tlog-witness: cosigns a log's checkpoint only when it is signed by a key it trusts for
 * that origin and a consistency proof shows it extends the last one it cosigned of that origin,
 * so that a log that shows two parties two histories is caught by whoever compares cosignatures.
 */
export class Witness {
  readonly cosigner: Cosigner;
  private readonly key: KeyObject;
  private readonly logs: NoteVerifier[];
  private readonly state: WitnessState;
  private readonly now: () => number;
  private readonly log: WitnessLog;
  /** Per origin, the request being handled: checking the old size and storing the new must not interleave. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(options: WitnessOptions) {
    try {
      this.key = typeof options.privateKey === "string" ? createPrivateKey(options.privateKey) : options.privateKey;
    } catch {
      throw new AuditgraphError(WitnessErrorCodes.config, "the witness key is not a private key (PEM)");
    }
    this.cosigner = cosigner(options.name, this.key);
    if (options.logs.length === 0) throw new AuditgraphError(WitnessErrorCodes.config, "a witness needs at least one log key to witness");
    this.logs = options.logs.map((vkey) => {
      try {
        return parseVerifierKey(vkey.trim());
      } catch (error) {
        throw new AuditgraphError(WitnessErrorCodes.config, `log key ${JSON.stringify(vkey)}: ${(error as Error).message}`, { cause: error });
      }
    });
    this.state = options.state;
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.log = options.log ?? silent;
  }

  /** The witness's verifier key (cosignature/v1, type 0x04), for those who check its cosignatures. */
  get verifierKey(): string {
    return encodeCosignerKey(this.cosigner);
  }

  /**
   * The log keys trusted for an origin: a key named N stands for origin N and for N/<anything>,
   * as an auditgraph ledger signs each stream's checkpoint (origin `<log origin>/<stream>`)
   * under its log origin; each such origin is still a log of its own to the witness.
   */
  private trustedFor(origin: string): NoteVerifier[] {
    return this.logs.filter((v) => origin === v.name || origin.startsWith(`${v.name}/`));
  }

  /** Handles an `add-checkpoint` body: the protocol's answer, refusals included. */
  async addCheckpoint(body: Buffer): Promise<WitnessResponse> {
    try {
      return await this.add(body);
    } catch (error) {
      if (error instanceof WitnessResponse) return error;
      throw error;
    }
  }

  private async add(body: Buffer): Promise<WitnessResponse> {
    const request = parseAddCheckpoint(body);
    let checkpoint: CheckpointBody;
    try {
      checkpoint = parseCheckpointBody(parseNote(request.note).text);
    } catch (error) {
      throw new WitnessResponse(400, `malformed add-checkpoint request: ${(error as Error).message}\n`);
    }
    const { origin, treeSize } = checkpoint;
    const trusted = this.trustedFor(origin);
    if (trusted.length === 0) throw new WitnessResponse(404, `unknown log origin ${JSON.stringify(origin)}\n`);
    let opened: ReturnType<typeof openNote>;
    try {
      opened = openNote(request.note, trusted);
    } catch (error) {
      this.log.warn({ origin, treeSize, status: 403 }, "checkpoint not signed by a trusted log key");
      throw new WitnessResponse(403, `${(error as Error).message}\n`);
    }
    if (request.oldSize > treeSize) throw new WitnessResponse(400, `old size ${request.oldSize} is above the checkpoint's size ${treeSize}\n`);
    return this.serially(origin, async () => {
      const held = await this.state.get(origin);
      const heldSize = held?.treeSize ?? 0;
      if (request.oldSize !== heldSize) {
        this.log.info({ origin, treeSize, oldSize: request.oldSize, heldSize, status: 409 }, "old size is not the size last cosigned");
        throw new WitnessResponse(409, `${heldSize}\n`, SIZE_TYPE);
      }
      const refuse = (why: string) => {
        // Evidence of a log showing two histories (or of a broken client): worth keeping in the log.
        this.log.warn({ origin, treeSize, oldSize: request.oldSize, status: 422, reason: why, checkpoint: opened.text }, "checkpoint refused");
        return new WitnessResponse(422, `${why}\n`);
      };
      if (treeSize === 0 && !checkpoint.rootHash.equals(EMPTY_ROOT)) throw refuse("a checkpoint of size 0 must have the empty tree's root hash");
      if (request.oldSize === 0) {
        if (request.proof.length > 0) throw refuse("old size 0 takes no consistency proof");
      } else {
        const heldRoot = Buffer.from(held!.rootHash, "base64");
        try {
          verifyConsistency(request.oldSize, treeSize, request.proof, heldRoot, checkpoint.rootHash);
        } catch (error) {
          throw refuse(
            treeSize === heldSize
              ? `split view: a checkpoint of size ${treeSize} with another root hash than the one cosigned (${(error as Error).message})`
              : `the consistency proof from size ${request.oldSize} does not verify: ${(error as Error).message}`,
          );
        }
      }
      const cosignature = cosign(opened.text, { name: this.cosigner.name, privateKey: this.key }, this.now());
      await this.state.put({
        origin,
        treeSize,
        rootHash: checkpoint.rootHash.toString("base64"),
        note: formatNote({ text: opened.text, signatures: [...opened.signatures, cosignature] }),
      });
      this.log.info({ origin, treeSize, oldSize: request.oldSize, status: 200 }, "checkpoint cosigned");
      return new WitnessResponse(200, formatSignatureLines([cosignature]));
    });
  }

  private serially<T>(origin: string, task: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(origin) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.catch(() => undefined);
    this.queues.set(origin, settled);
    void settled.then(() => {
      if (this.queues.get(origin) === settled) this.queues.delete(origin);
    });
    return run;
  }
}
