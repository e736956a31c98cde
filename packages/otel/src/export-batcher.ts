import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";

/** What became of spans handed to the batcher: each span is counted exactly once, by one of these. */
export interface ExportCounts {
  exported(count: number): void;
  /** Refused by a full queue, or still queued when the close deadline passed. */
  dropped(count: number): void;
  /** Sent, and the exporter gave up on them (a receiver down past its retries, a refusal). */
  failed(count: number, error: Error | undefined): void;
}

export interface SpanBatcherOptions {
  maxQueueSize: number;
  maxBatchSize: number;
  /** How long a span waits for its batch to fill before the batch goes anyway. */
  scheduledDelayMs: number;
}

/**
 * A bounded queue in front of an exporter, like the SDK's BatchSpanProcessor, with the counts the
 * worker reports: one export at a time (the exporter retries inside it, up to its timeout), a
 * batch when `maxBatchSize` spans wait or after `scheduledDelayMs`, and a span over
 * `maxQueueSize` dropped on arrival, never blocking whoever adds it.
 */
export class SpanBatcher {
  private queue: ReadableSpan[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly exporter: SpanExporter,
    private readonly options: SpanBatcherOptions,
    private readonly counts: ExportCounts,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  add(span: ReadableSpan): void {
    if (this.closed || this.queue.length >= this.options.maxQueueSize) {
      this.counts.dropped(1);
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.options.maxBatchSize) this.drain();
    else this.timer ??= setTimeout(() => this.drain(), this.options.scheduledDelayMs).unref();
  }

  /** Starts exporting what is queued, unless an export is under way (it goes on with the rest when done). */
  private drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running ??= this.exportAll().finally(() => {
      this.running = undefined;
      // Spans added during the last export wait their delay like any other.
      if (this.queue.length > 0 && !this.closed) this.timer ??= setTimeout(() => this.drain(), this.options.scheduledDelayMs).unref();
    });
    return this.running;
  }

  private async exportAll(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatchSize);
      const result = await exportOnce(this.exporter, batch);
      if (result.code === ExportResultCode.SUCCESS) this.counts.exported(batch.length);
      else this.counts.failed(batch.length, result.error);
    }
  }

  /**
   * Exports what is queued until `deadlineMs` from now; what is still queued then is dropped, and
   * the exporter is shut down (within what is left of the deadline). Never throws.
   */
  async close(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    const flushed = this.drain();
    this.closed = true;
    const left = () => Math.max(0, deadline - Date.now());
    await within(flushed, left());
    const late = this.queue.splice(0);
    if (late.length) this.counts.dropped(late.length);
    await within(
      this.exporter.shutdown().catch(() => undefined),
      left(),
    );
  }
}

function exportOnce(exporter: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => {
    try {
      exporter.export(spans, resolve);
    } catch (error) {
      resolve({ code: ExportResultCode.FAILED, error: error as Error });
    }
  });
}

/** Waits for `promise`, or `ms`, whichever comes first. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
