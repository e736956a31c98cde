#!/usr/bin/env bash
# Start (or reuse) the local services: Redis, PostgreSQL, then Neo4j. Stop with scripts/services-down.sh
# (it stops only what these scripts started).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$HERE/redis-start.sh"
"$HERE/postgres-start.sh"
"$HERE/neo4j-start.sh"
