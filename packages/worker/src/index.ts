export { AuditWorker, waitUntilIdle, type AuditWorkerOptions } from "./worker.js";
export { processBatch, type BatchOutcome } from "./process.js";
