import { describe, expect, it } from "vitest";
import { BATCH_JOB_NAME } from "@auditgraph/core";
import { waitUntilIdle } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { isolatedConfig, sampleTrace, startPipeline, runCli, cliEnvOf } from "./helpers.js";

const cli = (config: Config, ...args: string[]) => runCli(cliEnvOf(config), ...args);

describe("auditgraph dead-letters", () => {
  it("lists, shows and replays dead letters; a replay is recorded, and what is still bad is dead-lettered again", async () => {
    const config = await isolatedConfig();
    const p = await startPipeline(config);
    try {
      const [good, bad, other] = sampleTrace();
      const broken = { ...bad!, identity: { ...bad!.identity, user: { tenantId: bad!.identity.user.tenantId } } };
      const job = await p.queue.add(BATCH_JOB_NAME, { events: [good, broken] });
      await waitUntilIdle(p.queue);
      // An event an earlier worker release refused, written as that worker would have: valid to this one.
      await p.ledger.deadLetter({
        id: "old-7#2",
        recordedAt: new Date().toISOString(),
        jobId: "old-7",
        reason: "invalid event 2: schemaVersion: too new",
        input: other,
      });

      const list = await cli(config, "dead-letters", "list", "--json");
      expect(list.code).toBe(0);
      const rows = JSON.parse(list.stdout) as { id: string; reason: string; replays: unknown[]; input?: unknown }[];
      expect(rows.map((r) => r.id)).toEqual([`${job.id}#1`, "old-7#2"]);
      expect(rows[0]!.reason).toMatch(/event 1: identity\.user\.id/);
      expect(rows.every((r) => r.input === undefined && r.replays.length === 0)).toBe(true);
      expect((await cli(config, "dead-letters", "list")).stdout).toContain("identity.user.id");

      const show = await cli(config, "dead-letters", "show", `${job.id}#1`, "--json");
      expect(JSON.parse(show.stdout)).toMatchObject({ id: `${job.id}#1`, input: broken });
      const missing = await cli(config, "dead-letters", "show", "nope");
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/no dead letter with id "nope"/);

      const replay = await cli(config, "dead-letters", "replay", "--all", "--by", "ops-1");
      expect(replay.code).toBe(0);
      await waitUntilIdle(p.queue);
      // The fixed one is in the ledger now; the still-broken one is dead-lettered again, by its new job.
      expect((await p.ledger.readEvent(other!.eventId))?.event).toEqual(other);
      const after = JSON.parse((await cli(config, "dead-letters", "list", "--json")).stdout) as {
        id: string;
        reason: string;
        replays: { jobId: string; by: string }[];
      }[];
      const first = after.find((r) => r.id === `${job.id}#1`)!;
      expect(first.replays).toHaveLength(1);
      expect(first.replays[0]!.by).toBe("ops-1");
      const again = after.find((r) => r.id === `${first.replays[0]!.jobId}#0`)!;
      expect(again.reason).toMatch(/event 0: identity\.user\.id/);
      expect(after.find((r) => r.id === "old-7#2")!.replays).toHaveLength(1);
      // The originals are kept as they were: nothing is edited.
      expect((await p.ledger.readDeadLetters()).find((d) => d.id === `${job.id}#1`)).toMatchObject({ input: broken });

      // --all takes only those never replayed: now just the one the replay added.
      const second = await cli(config, "dead-letters", "replay", "--all");
      expect(second.stdout.trim().split("\n")).toHaveLength(1);
      expect(second.stdout).toContain(`replayed ${again.id}`);
      const refuse = await cli(config, "dead-letters", "replay");
      expect(refuse.code).toBe(2); // a usage error
      expect(refuse.stderr).toMatch(/give dead letter ids, or --all/);
    } finally {
      await p.stop();
    }
  }, 180_000); // eight CLI runs, each a few seconds of start-up on a busy machine
});
