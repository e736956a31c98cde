import { InvalidArgumentError, type Command } from "commander";
import { OTLP_TOKENS_ENV, newOtlpToken } from "@auditgraph/otel";

/**
 * `auditgraph otlp-token --tenant <id>`: a new random OTLP ingest token for a tenant, and the
 * entry (tenant and the token's SHA-256) to add to AUDITGRAPH_OTLP_TOKENS. The token is printed
 * once, here, and stored nowhere: the worker keeps only its digest.
 */
export function registerOtlpToken(program: Command): void {
  program
    .command("otlp-token")
    .description(`print a new OTLP ingest token for a tenant, and the entry to add to ${OTLP_TOKENS_ENV} (the worker's POST /v1/traces; see docs/otel.md)`)
    .requiredOption("--tenant <id>", "the tenant whose spans the token's exports are recorded for", tenantId)
    .option("--json", "print { tenantId, token, entry } as JSON")
    .action((opts: { tenant: string; json?: boolean }) => {
      const { token, entry } = newOtlpToken(opts.tenant);
      if (opts.json) return console.log(JSON.stringify({ tenantId: opts.tenant, token, entry }, null, 2));
      console.log(`token: ${token}`);
      console.log(`${OTLP_TOKENS_ENV} entry: ${entry}`);
      console.log(`Add the entry to ${OTLP_TOKENS_ENV} (comma-separated) and restart the worker; send the token as "Authorization: Bearer <token>".`);
    });
}

function tenantId(value: string): string {
  if (value.trim() === "" || value.includes(",") || value.length > 256) throw new InvalidArgumentError("must be 1-256 characters without a comma");
  return value;
}
