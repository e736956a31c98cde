import type { Command } from "commander";
import { z } from "zod";
import { parseWith } from "@auditgraph/core";
import { RetentionPolicySchema, readCheckpointFile, type ExpiryReport, type Ledger, type Retention } from "@auditgraph/ledger";
import { loadConfig } from "./config.js";
import { openLedger } from "./ledger.js";
import { configError } from "./errors.js";

/** AUDITGRAPH_RETENTION: the retention policy as JSON, e.g. {"days":365,"eventTypes":{"llm.token":30}}. */
const RetentionEnvSchema = z.object({
  AUDITGRAPH_RETENTION: z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "must be JSON" });
        return z.NEVER;
      }
    })
    .pipe(RetentionPolicySchema),
});

/** The configured ledger's retention, where it keeps one (the segment-file ledger does). */
async function ledgerRetention(): Promise<{ ledger: Ledger; retention: Retention }> {
  const ledger: Ledger = await openLedger({ ...loadConfig(), signingKeyPath: undefined });
  if (ledger.retention) return { ledger, retention: ledger.retention };
  await ledger.close();
  throw configError(
    "AUDITGRAPH_LEDGER_URL: retention and legal holds are kept by the segment-file ledger (AUDITGRAPH_LEDGER_DIR); unset AUDITGRAPH_LEDGER_URL",
  );
}

export function formatExpiry(reports: ExpiryReport[], dryRun: boolean): string {
  const verb = dryRun ? "would expire" : "expired";
  return reports
    .map((r) => {
      const last = r.expired.at(-1);
      const what = last ? `${verb} positions 0..${last.to - 1} (${r.expired.length} segments)` : `nothing ${verb.replace(/^would /, "to ")}`;
      return `${r.streamId}: ${what}; kept from there: ${r.keptBecause}`;
    })
    .join("\n");
}

export function registerRetention(program: Command): void {
  program
    .command("hold")
    .description("place a legal hold: the records of a tenant (or of one user or trace in it) do not expire until it is released")
    .requiredOption("--tenant <id>", "the tenant")
    .option("--user <id>", "only this user's records")
    .option("--trace <id>", "only this trace's records")
    .requiredOption("--reason <text>", "why (a case or matter reference)")
    .option("--by <operator>", "who places it")
    .option("--json", "print the hold as JSON")
    .action(async (opts: { tenant: string; user?: string; trace?: string; reason: string; by?: string; json?: boolean }) => {
      const { retention } = await ledgerRetention();
      const hold = await retention.placeHold({ tenantId: opts.tenant, userId: opts.user, traceId: opts.trace, reason: opts.reason, placedBy: opts.by });
      if (opts.json) return console.log(JSON.stringify(hold, null, 2));
      console.log(
        `legal hold ${hold.id} placed on stream ${hold.streamId}${hold.subject ? ` (subject ${hold.subject})` : ""}${hold.traceId ? ` (trace ${hold.traceId})` : ""}`,
      );
    });

  program
    .command("release-hold")
    .description("release a legal hold (recorded beside it; nothing is edited)")
    .argument("<id>", "the hold's id, as `hold` or `holds` printed it")
    .option("--by <operator>", "who releases it")
    .option("--json", "print the released hold as JSON")
    .action(async (id: string, opts: { by?: string; json?: boolean }) => {
      const hold = await (await ledgerRetention()).retention.releaseHold(id, opts.by);
      if (opts.json) return console.log(JSON.stringify(hold, null, 2));
      console.log(`legal hold ${hold.id} released at ${hold.releasedAt}`);
    });

  program
    .command("holds")
    .description("list legal holds, released ones too")
    .option("--json", "print them as JSON")
    .action(async (opts: { json?: boolean }) => {
      const holds = await (await ledgerRetention()).retention.holds();
      if (opts.json) return console.log(JSON.stringify(holds, null, 2));
      if (holds.length === 0) return console.log("no legal holds");
      for (const h of holds) {
        const scope = [h.streamId, h.subject && `subject ${h.subject}`, h.traceId && `trace ${h.traceId}`].filter(Boolean).join(", ");
        console.log(`${h.id}  ${h.releasedAt ? `released ${h.releasedAt}` : "ACTIVE"}  ${scope}: ${h.reason}`);
      }
    });

  program
    .command("expire")
    .description(
      "remove whole segments past retention (AUDITGRAPH_RETENTION) that no hold keeps and whose checkpoint was exported (AUDITGRAPH_CHECKPOINT_FILE)",
    )
    .option("--dry-run", "say what would be removed, remove nothing")
    .option("--json", "print the report as JSON")
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
      const policy = parseWith(RetentionEnvSchema, process.env, "configuration").AUDITGRAPH_RETENTION;
      const file = loadConfig().checkpointExport.file;
      if (!file) throw configError("AUDITGRAPH_CHECKPOINT_FILE: required by expire: only checkpoints kept outside the ledger let a segment go");
      const { ledger, retention } = await ledgerRetention();
      const reports = await retention.expire({ policy, exported: await readCheckpointFile(file), dryRun: opts.dryRun ?? false }).finally(() => ledger.close());
      console.log(opts.json ? JSON.stringify(reports, null, 2) : formatExpiry(reports, opts.dryRun ?? false));
    });
}
