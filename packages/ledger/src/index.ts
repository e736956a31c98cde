export { SegmentLedger } from "./segment-ledger.js";
export {
  VerifyFailureSchema,
  DeadLetterSchema,
  type Ledger,
  type AppendResult,
  type VerifyFailure,
  type VerifyReport,
  type DeadLetter,
  type TornTailRepair,
} from "./types.js";
