export {
  SubjectRefSchema,
  subjectRef,
  tenantIdOf,
  isErasure,
  isSystemEvent,
  SYSTEM_EVENT_TYPES,
  type UserEvent,
  type SystemEvent,
} from "./ref.js";
export { DataKey, FileKeyStore, DATA_KEY_BYTES, type SubjectKeyStore } from "./key-store.js";
export { SEAL_ALG, SealedEventSchema, isSealed, sealEvent, sealEventWithKey, openEvent, type SealedEvent, type OpenedEvent } from "./seal.js";
export { openRecords, type OpenedRecord } from "./open-records.js";
