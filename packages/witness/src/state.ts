import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { AuditgraphError, lockDir, parseWith, sha256Hex } from "@auditgraph/core";

/** What the witness keeps of a log (one origin): the latest checkpoint it cosigned. */
export const OriginStateSchema = z.object({
  origin: z.string().min(1),
  treeSize: z.number().int().nonnegative(),
  /** The checkpoint's root hash, base64 as on its third line. */
  rootHash: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  /** The checkpoint note as cosigned: the log's signatures the witness verified, then its own cosignature. */
  note: z.string().min(1),
});
export type OriginState = z.infer<typeof OriginStateSchema>;

export const WitnessErrorCodes = {
  /** A witness state file cannot be read as the state of the origin it is named for (edited or damaged). */
  state: "AUDITGRAPH_E_WITNESS_STATE",
  /** The witness's configuration (its key, name or the log keys it trusts) is not usable. */
  config: "AUDITGRAPH_E_WITNESS_CONFIG",
} as const;

/** The origin hash the spec names a log's monitoring path by: SHA-256 of the origin, lowercase hex. */
export const originHash = (origin: string): string => sha256Hex(origin);

/**
 * The witness's state directory: one JSON file per origin under `origins/`, each replaced whole
 * (written aside, fsynced, renamed, the directory fsynced) so a crash leaves the old state or the
 * new, never half of one. The directory is locked for as long as it is open: two witnesses on one
 * state would each check an old size the other may be moving, and could cosign a rollback.
 */
export class WitnessState {
  private constructor(
    readonly dir: string,
    private readonly release: () => Promise<void>,
  ) {}

  /** Opens (making it if need be) and locks a state directory; refused if another live process holds it. */
  static async open(dir: string, onLost: (error: Error) => void = () => undefined): Promise<WitnessState> {
    await mkdir(join(dir, "origins"), { recursive: true });
    const release = await lockDir(dir, { name: "witness", onCompromised: onLost });
    return new WitnessState(dir, release);
  }

  private file(origin: string): string {
    return join(this.dir, "origins", `${originHash(origin)}.json`);
  }

  /** The origin's latest cosigned checkpoint, or undefined when it never cosigned one. */
  async get(origin: string): Promise<OriginState | undefined> {
    return this.getByHash(originHash(origin), origin);
  }

  /** The same, by origin hash (the monitoring path names logs so). */
  async getByHash(hash: string, origin?: string): Promise<OriginState | undefined> {
    if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
    const path = join(this.dir, "origins", `${hash}.json`);
    const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (text === undefined) return undefined;
    let state: OriginState;
    try {
      state = parseWith(OriginStateSchema, JSON.parse(text), `witness state ${path}`);
    } catch (error) {
      throw new AuditgraphError(WitnessErrorCodes.state, `witness state ${path} is damaged: ${(error as Error).message}`, { cause: error });
    }
    // A file copied under another origin's name would let one log's state stand for another's.
    if (originHash(state.origin) !== hash || (origin !== undefined && state.origin !== origin))
      throw new AuditgraphError(WitnessErrorCodes.state, `witness state ${path} is of origin ${JSON.stringify(state.origin)}, not of the one it is named for`);
    return state;
  }

  /** Replaces the origin's state, durably, before the caller answers. */
  async put(state: OriginState): Promise<void> {
    const path = this.file(state.origin);
    const temp = `${path}.${process.pid}.tmp`;
    const handle = await open(temp, "w", 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(state)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    const dir = await open(join(this.dir, "origins"), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async close(): Promise<void> {
    await this.release();
  }
}
