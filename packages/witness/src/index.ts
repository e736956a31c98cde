export { Witness, type WitnessOptions, type WitnessLog } from "./witness.js";
export { witnessServer, type WitnessServerOptions } from "./server.js";
export { WitnessState, OriginStateSchema, WitnessErrorCodes, originHash, type OriginState } from "./state.js";
export { parseAddCheckpoint, parseSize, WitnessResponse, MAX_PROOF_LINES, type AddCheckpointRequest } from "./protocol.js";
