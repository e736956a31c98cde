import type { Finding } from "./finding.js";
import type { Hold } from "./definition.js";

export type HoldDecision = "allow" | "deny";

/**
 * Who decides a held call. The escalation-backed decider (a human through the CLI or the API)
 * comes with the worker's escalations; `InMemoryHoldDecider` decides in process, for tests and
 * for embedding a reviewer of one's own.
 */
export interface HoldDecider {
  /**
   * Resolves to the decision. `signal` aborts when the hold stops waiting (its timeout took the
   * rule's default): a decider can withdraw the question then.
   */
  decide(finding: Finding, signal: AbortSignal): Promise<HoldDecision>;
}

export type HoldOutcome =
  | { outcome: "held-allowed"; decision: "allow" }
  | { outcome: "held-denied"; decision: "deny" }
  | { outcome: "held-timeout"; decision: HoldDecision }
  /** The decider failed: no one decided, and a failure is not silence, so the call is refused. */
  | { outcome: "blocked"; decision: "deny"; deciderFailed: true };

/**
 * Waits for `decider` on a held call, at most the rule's timeout, after which the rule's default
 * holds. `deadline` (epoch ms), when given, is when the wait ends instead: the moment already
 * recorded (and told to reviewers) for this hold, so the agent keeps to exactly that.
 */
export async function awaitHold(finding: Finding, hold: Hold, decider: HoldDecider, deadline?: number): Promise<HoldOutcome> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), deadline === undefined ? hold.timeoutMs : Math.max(0, deadline - Date.now()));
  });
  try {
    const decision = await Promise.race([decider.decide(finding, controller.signal), timeout]);
    if (decision === "timeout") return { outcome: "held-timeout", decision: hold.defaultOutcome };
    if (decision === "allow") return { outcome: "held-allowed", decision };
    if (decision === "deny") return { outcome: "held-denied", decision };
    return { outcome: "blocked", decision: "deny", deciderFailed: true };
  } catch {
    return { outcome: "blocked", decision: "deny", deciderFailed: true };
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** A hold waiting in an InMemoryHoldDecider. */
export interface PendingHold {
  readonly finding: Finding;
  allow(): void;
  deny(): void;
}

/** Holds wait here until `allow()`/`deny()` is called on them (or their timeout passes). */
export class InMemoryHoldDecider implements HoldDecider {
  private readonly waiting = new Set<PendingHold>();
  private readonly listeners: Array<(hold: PendingHold) => void> = [];

  /** The holds waiting now, oldest first. */
  get pending(): PendingHold[] {
    return [...this.waiting];
  }

  decide(finding: Finding, signal: AbortSignal): Promise<HoldDecision> {
    return new Promise((resolve) => {
      const settle = (decision: HoldDecision) => {
        if (!this.waiting.delete(hold)) return;
        resolve(decision);
      };
      const hold: PendingHold = { finding, allow: () => settle("allow"), deny: () => settle("deny") };
      this.waiting.add(hold);
      signal.addEventListener("abort", () => this.waiting.delete(hold), { once: true });
      for (const listener of this.listeners.splice(0)) listener(hold);
    });
  }

  /** The next hold to arrive (or the oldest one waiting). */
  next(): Promise<PendingHold> {
    const first = this.waiting.values().next();
    if (!first.done) return Promise.resolve(first.value);
    return new Promise((resolve) => this.listeners.push(resolve));
  }
}
