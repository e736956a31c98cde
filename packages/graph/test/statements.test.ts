import { describe, expect, it } from "vitest";
import type { ManagedTransaction } from "neo4j-driver";
import { StatementPipeline } from "../src/project.js";

/** A transaction whose statements answer in the order sent, the one named `failing` with an error. */
function fakeTx(failing?: string) {
  const sent: string[] = [];
  const tx = {
    run: (cypher: string) => {
      sent.push(cypher);
      return cypher === failing ? Promise.reject(new Error(`${cypher} failed`)) : Promise.resolve({ records: [], summary: {} });
    },
  } as unknown as ManagedTransaction;
  return { tx, sent };
}

describe("StatementPipeline", () => {
  it("sends every statement before any answer is awaited, in order, and flush waits for them all", async () => {
    const { tx, sent } = fakeTx();
    const statements = new StatementPipeline(tx);
    const first = statements.run("A", {});
    void statements.run("B", {});
    expect(sent).toEqual(["A", "B"]);
    await statements.flush();
    expect(await first).toMatchObject({ records: [] });
  });

  it("throws the first failure from flush, and a failure never goes unhandled", async () => {
    const { tx } = fakeTx("B");
    const statements = new StatementPipeline(tx);
    void statements.run("A", {});
    void statements.run("B", {});
    void statements.run("C", {});
    await expect(statements.flush()).rejects.toThrow("B failed");
    // Flushed: nothing is left pending for a second flush.
    await expect(statements.flush()).resolves.toBeUndefined();
  });
});
