import type { VerifyReport } from "@auditgraph/ledger";

export function formatVerify(report: VerifyReport): string {
  if (report.ok) {
    const heads = report.streams.map((s) => `  ${s.streamId}: ${s.count} events, head ${s.head}`);
    return [`OK: ${report.count} events in ${report.streams.length} streams`, ...heads].join("\n");
  }
  const f = report.failure;
  return `FAILED: stream ${f.streamId}, position ${f.position}, event ${f.eventId ?? "(unreadable)"}: ${f.reason} (${f.detail})`;
}
