import type { Logger } from "pino";
import { isSealed, type SubjectKeyStore } from "@auditgraph/core";
import { OtlpSpanExport, type OtlpExportOptions, type RecordedEvent } from "@auditgraph/otel";
import type { WorkerMetrics } from "./metrics.js";
import { current } from "./projection-range.js";
import type { AppendedStream } from "./recorder.js";

/**
 * The worker's side of the OTLP export: told of every append (beside the projection), it hands
 * the newly appended records, in the clear and in the current schema, to `OtlpSpanExport`. Only
 * what the projection may see goes out: a sealed record whose subject's key is gone (a job
 * redelivered after an erasure carries the plaintext again) is left out, as the projection leaves
 * it out. A record the ledger already held (a redelivery) was offered when it was new.
 *
 * Never in the job's way: `offer` returns at once, the key look-ups and the export run in the
 * background, and whatever fails there is counted in the metrics and logged (ids and counts only,
 * never the endpoint's headers or an event's content).
 */
export class WorkerOtlpExport {
  private readonly export: OtlpSpanExport;
  /** Key look-ups for sealed records, one stream's offers after another's, so events go out in ledger order. */
  private chain: Promise<void> = Promise.resolve();
  /** Records waiting on that chain; bounded like the export's own queue. */
  private pending = 0;
  private readonly maxPending: number;

  constructor(
    options: OtlpExportOptions,
    private readonly keyStore: Pick<SubjectKeyStore, "byId"> | undefined,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
  ) {
    let lastError = "";
    this.export = new OtlpSpanExport(options, {
      exported: (n) => {
        metrics.otlpSpansExported.inc(n);
        // Delivered again: the next failure is news.
        lastError = "";
      },
      dropped: (n) => metrics.otlpSpansDropped.inc(n),
      failed: (n, error) => {
        metrics.otlpSpansFailed.inc(n);
        // The exporter's message names a status or a network error, not the headers; logged once per kind of failure, not per batch.
        const message = error?.message ?? "unknown error";
        if (message !== lastError) log.warn({ spans: n, error: message }, "OTLP export: spans not delivered");
        lastError = message;
      },
    });
    this.maxPending = this.export.settings.maxQueueSize;
  }

  /** The records one append added, as the recorder reports them (see `EventRecorder.onAppended`). */
  offer(appended: AppendedStream): void {
    const last = appended.records.reduce((max, r) => Math.max(max, r.position), -1);
    const fresh = appended.records.filter((r) => r.position > last - appended.appended);
    if (fresh.length === 0) return;
    if (this.pending + fresh.length > this.maxPending) {
      this.metrics.otlpSpansDropped.inc(fresh.length);
      return;
    }
    this.pending += fresh.length;
    this.chain = this.chain
      .then(() => this.take(appended, fresh))
      .catch((error: unknown) => {
        this.metrics.otlpSpansFailed.inc(fresh.length);
        this.log.warn({ streamId: appended.streamId, error: (error as Error).message }, "OTLP export: records not exported");
      })
      .finally(() => (this.pending -= fresh.length));
  }

  private async take(appended: AppendedStream, fresh: AppendedStream["records"]): Promise<void> {
    const keys = new Map<string, Promise<unknown>>();
    for (const record of fresh) {
      const event = appended.inHand.get(record.event.eventId);
      if (!event) continue;
      if (isSealed(record.event)) {
        // The projection's rule: a sealed record is read only while its subject's key is in the store.
        const at = `${record.event.subject}/${record.event.sealed.keyId}`;
        if (!keys.has(at)) keys.set(at, this.keyStore ? this.keyStore.byId(record.event.subject, record.event.sealed.keyId) : Promise.resolve(undefined));
        if (!(await keys.get(at))) continue;
      }
      let recorded: RecordedEvent;
      try {
        recorded = { event: current(record, event), streamId: record.streamId, position: record.position, hash: record.hash };
      } catch (error) {
        this.metrics.otlpSpansFailed.inc();
        this.log.warn({ streamId: record.streamId, position: record.position, error: (error as Error).message }, "OTLP export: record not readable");
        continue;
      }
      this.export.add(recorded);
    }
  }

  /** After the last append: the records on their way, the runs still open (marked incomplete), then the queue, within `closeTimeoutMs`. */
  async close(): Promise<void> {
    await this.chain;
    await this.export.close();
  }
}
