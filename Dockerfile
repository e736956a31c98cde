# The auditgraph worker and CLI as an image: `docker build -t auditgraph .`, then
# `docker run auditgraph` runs the worker (health and metrics on port 9464) and
# `docker run auditgraph verify` (or any other command) runs the CLI.

# Build: the whole workspace (its dev dependencies: TypeScript), compiled, then pruned to what runs.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY . .
# --ignore-scripts: no lifecycle script of a dependency runs at build time (the native
# msgpackr-extract is optional: BullMQ falls back to plain JS); the root's `prepare` is the build below.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npx tsc -b \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf packages/*/src packages/*/test packages/*/tsconfig.json packages/*/dist/.tsbuildinfo

# Runtime: production dependencies, the compiled packages and the graph schema; no compiler, no sources.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    AUDITGRAPH_LEDGER_DIR=/data/ledger \
    AUDITGRAPH_SPOOL_DIR=/data/spool \
    AUDITGRAPH_WORKER_HTTP_PORT=9464
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
# The ledger (and key store) live under /data: mount a volume there. The image's own files stay root's, read-only to the worker.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.AUDITGRAPH_WORKER_HTTP_PORT || 9464) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/packages/cli/bin/auditgraph.js"]
CMD ["worker"]
