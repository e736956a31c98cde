import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Package tests are units (no services, no build) except the ones that talk to PostgreSQL and the one
// that kills writer processes; everything under test/ drives the real parts (Redis, Neo4j, PostgreSQL,
// Chromium); the faults break them on purpose.
const NEEDS_SERVICES = ["packages/ledger/test/contract.test.ts", "packages/ledger/test/postgres-ledger.test.ts"];
const PACKAGE_FAULTS = ["packages/ledger/test/crash.test.ts"];

export default defineConfig({
  test: {
    // A ceiling for a hung test, not a measure: CLI-heavy tests on a loaded 2-core machine take several times their quiet time.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: one file per core; integration files keep to their own queues, ids and dirs.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        extends: true,
        // Units import the packages' sources, so `npm run test:unit` needs no build and no services.
        resolve: { alias: [{ find: /^@auditgraph\/([a-z]+)$/, replacement: `${fileURLToPath(new URL("packages", import.meta.url))}/$1/src/index.ts` }] },
        test: { name: "unit", include: ["packages/*/test/**/*.test.ts"], exclude: [...NEEDS_SERVICES, ...PACKAGE_FAULTS] },
      },
      { extends: true, test: { name: "integration", include: ["test/**/*.test.ts", ...NEEDS_SERVICES], exclude: ["test/faults/**"] } },
      { extends: true, test: { name: "faults", include: ["test/faults/**/*.test.ts", ...PACKAGE_FAULTS] } },
      { extends: true, test: { name: "bench", include: ["bench/test/**/*.test.ts"] } },
    ],
  },
});
