// The inbox's live feed (packages/console/src/live.ts) on the real Redis: one subscription per
// console process, fanned out by tenant; ids only are trusted; closed with the app. The browser
// flow (test/console/inbox.browser.test.ts) shows the worker's notices refreshing the page.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { redisClient } from "@auditgraph/policy";
import { EscalationFeed } from "@auditgraph/console";
import { ESCALATION_CHANGES_CHANNEL } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { eventually, isolatedConfig } from "../helpers.js";

const tag = randomUUID().slice(0, 8);
let config: Config;
let redis: Redis;

beforeAll(async () => {
  config = await isolatedConfig();
  redis = redisClient(config.redis) as Redis;
});

afterAll(() => redis?.disconnect());

describe("the inbox's live feed", () => {
  it("fans a notice out to the listeners of its tenant only, from one subscription, and stops on close", async () => {
    const publisher = redisClient(config.redis);
    // No poll within the test: every call below is a notice.
    const feed = new EscalationFeed({ redis, log: pino({ level: "silent" }), pollMs: 3_600_000 });
    try {
      const heardX: unknown[] = [];
      const heardY: unknown[] = [];
      const x = `feed-x-${tag}`;
      const y = `feed-y-${tag}`;
      feed.listen([x], (change) => heardX.push(change));
      const stopY = feed.listen([y], (change) => heardY.push(change));
      // Subscribed once the first notice of ours comes back; ordered on the channel from here on.
      await eventually(async () => {
        await publisher.publish(ESCALATION_CHANGES_CHANNEL, JSON.stringify({ tenantId: x, escalationId: "warm-up" }));
        return heardX.length > 0 ? true : undefined;
      }, 10_000);
      stopY();
      await publisher.publish(ESCALATION_CHANGES_CHANNEL, JSON.stringify({ tenantId: y, escalationId: "e-y" }));
      await publisher.publish(ESCALATION_CHANGES_CHANNEL, "not a notice");
      await publisher.publish(ESCALATION_CHANGES_CHANNEL, JSON.stringify({ tenantId: x, escalationId: "e-x", extra: "refused" }));
      await publisher.publish(ESCALATION_CHANGES_CHANNEL, JSON.stringify({ tenantId: x, escalationId: "e-x" }));
      const notices = () => heardX.filter((c) => (c as { escalationId: string }).escalationId !== "warm-up");
      await eventually(async () => (notices().length > 0 ? true : undefined), 10_000);
      // The earlier messages came first on the channel: had they been delivered, they would be here.
      expect(notices()).toEqual([{ tenantId: x, escalationId: "e-x" }]);
      // Y listened while X's notices came (none for Y), then stopped before Y's.
      expect(heardY).toEqual([]);
      expect(feed.size).toBe(1);
    } finally {
      await feed.close();
      publisher.disconnect();
    }
    expect(feed.size).toBe(0);
  });
});
