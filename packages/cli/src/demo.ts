import { randomUUID } from "node:crypto";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AuditgraphError } from "@auditgraph/core";
import { Graph, formatLineage, renderLineageHtml, type Lineage } from "@auditgraph/graph";
import type { VerifyReport } from "@auditgraph/ledger";
import { AuditCallbackHandler, METADATA_KEYS, QueueTransport } from "@auditgraph/langchain";
import { AuditWorker, waitUntilIdle } from "@auditgraph/worker";
import type { Config } from "./config.js";
import { DEMO_IDENTITY, DEMO_QUESTION, demoAgent } from "./demo-agent.js";
import { formatVerify } from "./verify.js";
import { demoKeys, openLedger, publicKeyOf } from "./ledger.js";
import { keyStoreOf } from "./erase.js";
import { claimDemoTenant, projectDemoTenant } from "./demo-handover.js";

export interface DemoResult {
  traceId: string;
  answer: string;
  lineage: Lineage;
  verify: VerifyReport;
  /** The lineage drawn as an HTML page, beside the ledger. */
  reportPath: string;
}

/**
 * The whole product once: an audited agent answers a question, the in-process worker writes
 * the ledger and the graph, and the answer's lineage is read back from Neo4j.
 */
export async function runDemo(given: Config, print: (line: string) => void = console.log): Promise<DemoResult> {
  const config = await demoKeys(given);
  const graph = new Graph(config.neo4j);
  const ledger = await openLedger(config);
  let worker: AuditWorker | undefined;
  let transport: QueueTransport | undefined;
  try {
    await graph.migrate();
    // Payloads sealed per data subject, as the CLI worker does: `auditgraph erase` can then erase the demo user.
    const keyStore = keyStoreOf(config);
    await claimDemoTenant(ledger, graph, DEMO_IDENTITY.user.tenantId, print);
    worker = new AuditWorker({ connection: config.redis, queueName: config.queueName, ledger, graph, keyStore });
    await worker.waitUntilReady();
    transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    // The handler knows the agent; the user comes with each invocation.
    const handler = new AuditCallbackHandler({ agent: DEMO_IDENTITY.agent }, transport);

    const traceId = randomUUID();
    const sessionId = `demo-session-${traceId.slice(0, 8)}`;
    print(`▶ ${DEMO_IDENTITY.agent.name} v${DEMO_IDENTITY.agent.version} answers ${DEMO_IDENTITY.user.id}@${DEMO_IDENTITY.user.tenantId}: "${DEMO_QUESTION}"`);
    const state = await demoAgent().invoke(
      { messages: [{ role: "user", content: DEMO_QUESTION }] },
      {
        runId: traceId,
        callbacks: [handler],
        metadata: {
          [METADATA_KEYS.userId]: DEMO_IDENTITY.user.id,
          [METADATA_KEYS.tenantId]: DEMO_IDENTITY.user.tenantId,
          [METADATA_KEYS.sessionId]: sessionId,
        },
      },
    );
    const answer = state.messages.at(-1)?.text ?? "";
    print(`◀ ${answer}`);

    await awaitAllCallbacks();
    await handler.flush();
    await waitUntilIdle(transport.queue, 60_000, { projection: false });
    await projectDemoTenant(ledger, graph, DEMO_IDENTITY.user.tenantId, keyStore, print);
    print(`✔ recorded: ledger ${config.ledgerDir} (payloads sealed per data subject, keys in ${keyStore.dir}), graph ${config.neo4j.uri}`);

    const lineage = await graph.lineage(traceId);
    if (!lineage) throw new AuditgraphError("AUDITGRAPH_E_DEMO_NO_LINEAGE", `the lineage of trace ${traceId} is not in the graph`);
    print("\nLineage of the final answer (read back from Neo4j):");
    print(formatLineage(lineage));
    const reportPath = join(dirname(config.ledgerDir), `lineage-${traceId}.html`);
    await mkdir(dirname(reportPath), { recursive: true });
    await writeFile(reportPath, renderLineageHtml(lineage));
    print(`  (drawn in ${reportPath})`);

    const verify = await ledger.verify(await publicKeyOf(config));
    print(`\n$ auditgraph verify\n${formatVerify(verify)}`);
    if (!verify.ok) throw new AuditgraphError("AUDITGRAPH_E_DEMO_VERIFY_FAILED", "ledger verification failed");
    return { traceId, answer, lineage, verify, reportPath };
  } finally {
    await transport?.close();
    await worker?.close();
    await graph.close();
    await ledger.close?.();
  }
}
