import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "bench/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: one file per core; integration files keep to their own queues, ids and dirs.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
