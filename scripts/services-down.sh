#!/usr/bin/env bash
# Stop the services that scripts/services-up.sh started (leaves ones it only reused alone).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rc=0
"$HERE/neo4j-stop.sh" || rc=1
"$HERE/redis-stop.sh" || rc=1
exit "$rc"
