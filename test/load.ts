import { join } from "node:path";
import { HumanMessage } from "@langchain/core/messages";
import { AuditCallbackHandler, QueueTransport, tapTransport, type QueueTransportOptions } from "@auditgraph/langchain";
import { DEMO_IDENTITY, DEMO_QUESTION, demoAgent, type Config } from "@auditgraph/cli";

export interface AgentLoad {
  /** Every event captured so far: event id to trace id. */
  captured: Map<string, string>;
  transport: QueueTransport;
  runs(): number;
  /** Starts no more runs until `resume`; resolves once the runs under way have finished and are flushed. */
  pause(): Promise<void>;
  resume(): void;
  /** Lets the runs under way finish, starts no more, and flushes (to Redis, or the spool). */
  stop(): Promise<void>;
}

/**
 * Real demo agents (createAgent, the fake model, real tools) running back to back under the
 * audit handler, on the config's queue, for one tenant: the sustained load of the fault tests.
 */
export function startAgentLoad(
  config: Config,
  {
    tenantId,
    agents = 2,
    pauseMs = 50,
    spoolDir = join(config.spoolDir, "load"),
    logger,
  }: { tenantId: string; agents?: number; pauseMs?: number; spoolDir?: string; logger?: QueueTransportOptions["logger"] },
): AgentLoad {
  const transport = new QueueTransport({
    connection: config.redis,
    queueName: config.queueName,
    spoolDir,
    maxBuffered: 100_000,
    retryMs: 200,
    ...(logger ? { logger } : {}),
  });
  const captured = new Map<string, string>();
  const handler = new AuditCallbackHandler(
    { agent: DEMO_IDENTITY.agent, user: DEMO_IDENTITY.user },
    tapTransport(transport, (e) => captured.set(e.eventId, e.traceId)),
  );
  let stopping = false;
  let runs = 0;
  let paused: { until: Promise<void>; resume: () => void } | undefined;
  /** Agents waiting on `paused`. */
  let idle = 0;
  const loop = async (i: number) => {
    while (!stopping) {
      if (paused) {
        idle += 1;
        await paused.until;
        idle -= 1;
        continue;
      }
      await demoAgent().invoke(
        { messages: [new HumanMessage(DEMO_QUESTION)] },
        { callbacks: [handler], metadata: { auditgraph_user_id: `user-${i}`, auditgraph_tenant_id: tenantId, auditgraph_session_id: `s-${i}` } },
      );
      runs += 1;
      // Paced: the fake model never waits, and a worker in this process must get its turns too.
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const loops = Promise.all(Array.from({ length: agents }, (_, i) => loop(i)));
  return {
    captured,
    transport,
    runs: () => runs,
    async pause() {
      let resume: () => void = () => {};
      paused = { until: new Promise<void>((r) => (resume = r)), resume };
      while (idle < agents) await new Promise((r) => setTimeout(r, 10));
      await transport.flush();
    },
    resume() {
      paused?.resume();
      paused = undefined;
    },
    async stop() {
      stopping = true;
      paused?.resume();
      await loops;
      await transport.close();
    },
  };
}
