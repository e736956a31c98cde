import type { Command } from "commander";
import { ONE_SHARD, shardCountOf, shardOfStream, streamIdFor, streamsOfTenant, type EventOf } from "@auditgraph/core";
import { SHARDS_TRACE_ID } from "@auditgraph/worker";
import { loadConfig } from "./config.js";
import { usageError } from "./errors.js";
import { openLedger } from "./ledger.js";

/** What `auditgraph shards --tenant t` reports: the count the ledger records, the configured one, each stream and every change. */
export interface ShardsReport {
  tenantId: string;
  /** The count the tenant's last `shards.changed` says (1 before any). */
  recorded: number;
  /** AUDITGRAPH_SHARDS's count for the tenant, here. */
  configured: number;
  streams: { streamId: string; shard: number; records: number }[];
  changes: { generation: number; from: number; to: number; recordedAt: string; by?: string | undefined }[];
}

export async function shardsReport(tenantId: string): Promise<ShardsReport> {
  const config = loadConfig();
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  try {
    const changes = (await ledger.readTrace(SHARDS_TRACE_ID, { streamId: streamIdFor(tenantId) }))
      .filter((r) => r.event.type === "shards.changed")
      .map((r) => ({ recordedAt: r.recordedAt, ...(r.event as EventOf<"shards.changed">).payload }))
      .sort((a, b) => a.generation - b.generation);
    const streams = [];
    for (const streamId of streamsOfTenant(await ledger.streams(), tenantId))
      streams.push({ streamId, shard: shardOfStream(streamId).shard, records: await ledger.count(streamId) });
    return { tenantId, recorded: changes.at(-1)?.to ?? 1, configured: shardCountOf(config.shards ?? ONE_SHARD, tenantId), streams, changes };
  } finally {
    await ledger.close?.();
  }
}

export function formatShards(r: ShardsReport): string {
  const lines = [`tenant ${r.tenantId}: ${r.recorded} shard${r.recorded === 1 ? "" : "s"} recorded, ${r.configured} configured here (AUDITGRAPH_SHARDS)`];
  if (r.streams.length === 0) lines.push("  no streams yet");
  for (const s of r.streams) lines.push(`  ${s.streamId}  shard ${s.shard}  ${s.records} records`);
  for (const c of r.changes) lines.push(`  change ${c.generation}: ${c.from} -> ${c.to} at ${c.recordedAt}${c.by ? ` by ${c.by}` : ""}`);
  return lines.join("\n");
}

export function registerShards(program: Command): void {
  program
    .command("shards")
    .description(
      "a tenant's shards: the count the ledger records and the configured one, each stream with its records, and every recorded change (see docs/sharding.md)",
    )
    .requiredOption("--tenant <id>", "the tenant")
    .option("--json", "print the report as JSON")
    .action(async (opts: { tenant: string; json?: boolean }) => {
      if (opts.tenant.trim() === "") throw usageError("--tenant: must not be empty");
      const report = await shardsReport(opts.tenant);
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatShards(report));
    });
}
