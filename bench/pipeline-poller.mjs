// Child process of bench/pipeline.ts: polls the projection cursors of the run's streams every
// POLL_MS and prints one JSON line {t: Date.now(), c: {streamId: records in the graph}} when
// they move. A process of its own, so its timestamps do not wait for the agents' event loop.
import neo4j from "neo4j-driver";

const streams = JSON.parse(process.env.BENCH_STREAMS ?? "[]");
const pollMs = Number(process.env.BENCH_POLL_MS ?? 100);
const driver = neo4j.driver(process.env.NEO4J_URI, neo4j.auth.basic(process.env.NEO4J_USER, process.env.NEO4J_PASSWORD));
let stop = false;
process.on("SIGTERM", () => (stop = true));
let last = "";
while (!stop) {
  try {
    const { records } = await driver.executeQuery(
      "MATCH (c:ProjectionCursor) WHERE c.streamId IN $streams RETURN c.streamId AS s, c.position AS p",
      { streams },
      { database: process.env.NEO4J_DATABASE, routing: "READ" },
    );
    const t = Date.now();
    const c = {};
    for (const r of records) c[r.get("s")] = Number(r.get("p")) + 1;
    const line = JSON.stringify(c);
    if (line !== last) {
      last = line;
      process.stdout.write(`${JSON.stringify({ t, c })}\n`);
    }
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
  }
  await new Promise((r) => setTimeout(r, pollMs));
}
await driver.close();
