export interface BackoffOptions {
  /** The wait before the first retry. */
  minMs: number;
  /** No wait is longer than this. */
  maxMs: number;
  /**
   * "full" draws the wait uniformly from [0, step) so that many clients failing together do not
   * retry together; "none" waits exactly the step (for one process retrying its own work).
   */
  jitter?: "full" | "none";
}

/**
 * The wait before retry number `attempt` (1 for the first retry): `minMs` doubled per attempt,
 * capped at `maxMs`. The one backoff formula every retry loop in auditgraph uses.
 */
export function backoffMs(attempt: number, { minMs, maxMs, jitter = "none" }: BackoffOptions, random: () => number = Math.random): number {
  // Cap the exponent so a long outage cannot overflow to Infinity before the cap applies.
  const step = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30));
  return jitter === "full" ? Math.floor(random() * step) : step;
}
