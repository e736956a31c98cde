import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "bench/test/**/*.test.ts"],
    // A ceiling for a hung test, not a measure: CLI-heavy tests on a loaded 2-core machine take several times their quiet time.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: one file per core; integration files keep to their own queues, ids and dirs.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
