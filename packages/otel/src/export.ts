import { z } from "zod";
import { OTLPTraceExporter as ProtobufTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { parseWith } from "@auditgraph/core";
import { SpanBatcher, type ExportCounts } from "./export-batcher.js";
import { SpanAssembler, type RecordedEvent } from "./export-spans.js";

export const OTLP_EXPORT_PROTOCOLS = ["http/protobuf", "http/json"] as const;
export const EXPORT_CONTENT = ["full", "metadata"] as const;

/** Where and how recorded events go out as GenAI spans; unknown keys are refused, named. */
export const OtlpExportOptionsSchema = z.strictObject({
  /** The traces endpoint itself (`http://collector:4318/v1/traces`): nothing is appended to it. */
  url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL (the OTLP traces endpoint)" }),
  /** Sent with every request (an Authorization header, say). Secrets: never logged. */
  headers: z.record(z.string().min(1), z.string()).default({}),
  protocol: z.enum(OTLP_EXPORT_PROTOCOLS).default("http/protobuf"),
  /**
   * `full`: messages, tool arguments and results, queries, documents, chain inputs and outputs, as
   * recorded (redaction as recorded). `metadata`: none of them (names, models, tokens, ids, times,
   * statuses only), for a backend that must not hold what an erasure could not reach there.
   */
  content: z.enum(EXPORT_CONTENT).default("full"),
  /** Spans waiting to be sent; past it new ones are dropped (and counted), never waited for. */
  maxQueueSize: z.int().positive().default(2_048),
  maxBatchSize: z.int().positive().default(512),
  /** How long a span waits for its batch to fill. */
  scheduledDelayMs: z.int().nonnegative().default(1_000),
  /** One request's deadline, the exporter's retries (network errors, 429, 502-504) included. */
  timeoutMs: z.int().positive().default(10_000),
  /** Runs started and not ended, held for their end; past it the oldest is dropped. */
  maxOpenRuns: z.int().positive().default(10_000),
  /** Span events (streamed tokens, agent actions, ...) one span keeps. */
  maxEventsPerSpan: z.int().positive().default(128),
  /** On close: how long what is queued (and the runs still open) may take to go out. */
  closeTimeoutMs: z.int().nonnegative().default(10_000),
});
export type OtlpExportOptions = z.input<typeof OtlpExportOptionsSchema>;
export type OtlpExportSettings = z.output<typeof OtlpExportOptionsSchema>;

/** The SDK's OTLP/HTTP exporter for the protocol: it serialises, compresses nothing, and retries within `timeoutMs`. */
export function otlpSpanExporter(settings: Pick<OtlpExportSettings, "url" | "headers" | "protocol" | "timeoutMs">): SpanExporter {
  // No concurrencyLimit of 1: the exporter frees its slot only after calling back, so the batcher's next
  // export (one at a time already) would be refused as concurrent.
  const config = { url: settings.url, headers: { ...settings.headers }, timeoutMillis: settings.timeoutMs };
  return settings.protocol === "http/json" ? new LazyJsonExporter(config) : new ProtobufTraceExporter(config);
}

/**
 * The SDK's OTLP/JSON exporter, loaded on its first export: the default (protobuf) never needs its
 * package, and a deployment without it sees its exports fail and counted, not the worker refuse to start.
 */
class LazyJsonExporter implements SpanExporter {
  private exporter: Promise<SpanExporter> | undefined;

  constructor(private readonly config: ConstructorParameters<typeof ProtobufTraceExporter>[0]) {}

  private load(): Promise<SpanExporter> {
    this.exporter ??= import("@opentelemetry/exporter-trace-otlp-http").then((m) => new m.OTLPTraceExporter(this.config));
    return this.exporter;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.load().then(
      (exporter) => exporter.export(spans, done),
      (error: Error) => done({ code: ExportResultCode.FAILED, error }),
    );
  }

  async shutdown(): Promise<void> {
    const exporter = await this.exporter?.catch(() => undefined);
    await exporter?.shutdown();
  }
}

/**
 * Recorded events out as GenAI spans (see EVENT_SPANS): assembled as they are added, batched and
 * sent in the background. `add` never throws and never waits: whatever goes wrong in an export
 * is counted (`counts`), never passed back to the one who recorded the event.
 */
export class OtlpSpanExport {
  readonly settings: OtlpExportSettings;
  private readonly assembler: SpanAssembler;
  private readonly batcher: SpanBatcher;
  private closing: Promise<void> | undefined;

  constructor(
    options: OtlpExportOptions,
    private readonly counts: ExportCounts,
    exporter?: SpanExporter,
  ) {
    this.settings = parseWith(OtlpExportOptionsSchema, options, "OTLP export options");
    const s = this.settings;
    this.batcher = new SpanBatcher(exporter ?? otlpSpanExporter(s), s, counts);
    this.assembler = new SpanAssembler({
      content: s.content,
      maxOpenRuns: s.maxOpenRuns,
      maxEventsPerSpan: s.maxEventsPerSpan,
      emit: (span) => this.batcher.add(span),
      dropped: (n) => counts.dropped(n),
    });
  }

  /** Runs waiting for their end. */
  get openRuns(): number {
    return this.assembler.openRuns;
  }

  /** Spans waiting to be sent. */
  get queued(): number {
    return this.batcher.queued;
  }

  /** One recorded event, in ledger order within its stream. */
  add(recorded: RecordedEvent): void {
    if (this.closing) {
      this.counts.dropped(1);
      return;
    }
    try {
      this.assembler.add(recorded);
    } catch (error) {
      // An event the mapping cannot read (it was validated on the way in, so a bug): counted, never thrown at the job.
      this.counts.failed(1, error as Error);
    }
  }

  /** Exports the runs still open (`auditgraph.incomplete`) and flushes, within `closeTimeoutMs`. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.assembler.closeAll();
      await this.batcher.close(this.settings.closeTimeoutMs);
    })();
    return this.closing;
  }
}
