import type { VerifyReport } from "@auditgraph/ledger";

export function formatVerify(report: VerifyReport): string {
  if (report.ok) {
    const streams = report.streams.map(
      (s) =>
        `  ${s.streamId}: ${s.count} events, root ${s.root}, ${s.checkpoints} signed checkpoints verified` +
        (s.expired ? `; positions ${s.expired.from}..${s.expired.to - 1} expired by retention` : ""),
    );
    return [`OK: ${report.count} events in ${report.streams.length} streams`, ...streams].join("\n");
  }
  const f = report.failure;
  return `FAILED: stream ${f.streamId}, position ${f.position}, event ${f.eventId ?? "(none)"}: ${f.reason} (${f.detail})`;
}
