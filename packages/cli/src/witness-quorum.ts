import { checkCosignatures, parseCosignerKey, type Cosigner } from "@auditgraph/ledger";
import { usageError } from "./errors.js";

/**
 * The exit code of `verify` and `verify-proof` when everything checked holds but the cosignatures
 * asked for (--witness-key, --witnesses-required) are not all there: a distinct code, as this is
 * no integrity failure (1) and no failure to check (2), and callers may well branch on it.
 */
export const EXIT_WITNESSES = 3;

export const WITNESS_OPTIONS_HELP = {
  key: "require a cosignature by this witness (its verifier key, as `auditgraph witness vkey` prints it; repeat it)",
  required: "how many of the --witness-key witnesses must have cosigned (default: all of them); a cosignature that does not verify counts as missing",
} as const;

export interface WitnessOptions {
  witnessKey?: string[];
  witnessesRequired?: number;
}

/** The witnesses asked for and how many of them must have cosigned. */
export interface WitnessPolicy {
  cosigners: Cosigner[];
  required: number;
}

/** The policy of the flags, undefined when no witness key is given; a bad key or count is a usage error naming the flag. */
export function witnessPolicy(opts: WitnessOptions): WitnessPolicy | undefined {
  const keys = [...new Set(opts.witnessKey ?? [])];
  if (keys.length === 0) {
    if (opts.witnessesRequired !== undefined) throw usageError("--witnesses-required: give the witnesses' keys with --witness-key");
    return undefined;
  }
  const cosigners = keys.map((vkey) => {
    try {
      return parseCosignerKey(vkey);
    } catch (error) {
      throw usageError(`--witness-key ${JSON.stringify(vkey)}: ${(error as Error).message}`);
    }
  });
  const required = opts.witnessesRequired ?? cosigners.length;
  if (required > cosigners.length)
    throw usageError(`--witnesses-required ${required}: only ${cosigners.length} witness key${cosigners.length === 1 ? "" : "s"} given (--witness-key)`);
  return { cosigners, required };
}

export interface Quorum {
  ok: boolean;
  cosignedBy: string[];
  missing: string[];
}

export interface StreamQuorum extends Quorum {
  streamId: string;
  /** The size of the cosigned checkpoint checked (null: the stream has none cosigned). */
  treeSize: number | null;
}

/** Which listed witnesses cosigned a checkpoint note (none when it has no note), and whether enough did. */
export function checkQuorum(note: string | undefined, policy: WitnessPolicy): Quorum {
  if (note === undefined) return { ok: policy.required === 0, cosignedBy: [], missing: policy.cosigners.map((c) => c.name) };
  const { cosignedBy, missing } = checkCosignatures(note, policy.cosigners);
  return { ok: cosignedBy.length >= policy.required, cosignedBy: cosignedBy.map((c) => c.name), missing };
}

export function formatQuorum(q: StreamQuorum, required: number): string {
  const what = q.treeSize === null ? `stream ${q.streamId}: no cosigned checkpoint` : `stream ${q.streamId}, checkpoint of size ${q.treeSize}`;
  const by = q.cosignedBy.length > 0 ? `cosigned by ${q.cosignedBy.join(", ")}` : "cosigned by none";
  const missing = q.missing.length > 0 ? `; missing ${q.missing.join(", ")}` : "";
  return `${q.ok ? "WITNESSED" : "NOT WITNESSED"}: ${what}: ${by}${missing} (${required} required)`;
}
