export { AuditWorker, waitUntilIdle, type AuditWorkerOptions } from "./worker.js";
export { processBatch, type BatchOutcome, type ProcessOptions } from "./process.js";
