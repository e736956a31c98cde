import type { ManagedTransaction, QueryResult } from "neo4j-driver";
import type { PlainRecord } from "@auditgraph/core";
import { Batch } from "./projection/common.js";
import { ORDER, STEPS } from "./projection/order.js";

// The projection of ledger records into the graph. Its row builders live in ./projection/, one
// module per event family, and its statements in graph-schema/projection/<family>/; the order
// they run in is ORDER (./projection/order.ts), and what each event type projects is PROJECTED_BY there.

/**
 * Statements of one transaction sent without waiting for each answer: the server runs them in the
 * order sent, in the transaction, so each still sees the writes of those before it, but a batch
 * costs one round trip instead of one per statement (a projection batch runs a dozen or more, and
 * on a busy machine each round trip is milliseconds). `flush` waits for all of them and throws
 * the first failure; the ones after it fail too, as the server ignores them once one failed.
 */
export class StatementPipeline {
  private readonly pending: Promise<QueryResult>[] = [];

  constructor(private readonly tx: ManagedTransaction) {}

  run(cypher: string, params: Record<string, unknown>): Promise<QueryResult> {
    const result = Promise.resolve(this.tx.run(cypher, params));
    // Observed here as well, so a failure is never unhandled before `flush` gets to it.
    result.catch(() => undefined);
    this.pending.push(result);
    return result;
  }

  async flush(): Promise<void> {
    const settled = await Promise.allSettled(this.pending.splice(0));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
  }
}

/**
 * Project ledger records into the graph in one write transaction. Every write MERGEs on ids,
 * so projecting the same records again (a redelivered job) changes nothing.
 */
export async function projectRecords(tx: ManagedTransaction, all: PlainRecord[]): Promise<void> {
  const statements = new StatementPipeline(tx);
  try {
    queueProjection(statements, all);
  } catch (error) {
    // What was sent is answered before this returns, even when building a later statement's rows threw.
    await statements.flush().catch(() => undefined);
    throw error;
  }
  await statements.flush();
}

/** The statements that project `all`, queued on `statements` in the order they must run (ORDER). */
export function queueProjection(statements: StatementPipeline, all: PlainRecord[]): void {
  const batch = new Batch(all);
  const run = (cypher: string, rows: readonly unknown[]) => {
    if (rows.length > 0) void statements.run(cypher, { rows });
  };
  for (const name of ORDER) {
    const step = STEPS[name];
    const rows = step.rows(batch);
    if (step.eachRow) for (const row of rows) run(step.cypher, [row]);
    else run(step.cypher, rows);
  }
}
