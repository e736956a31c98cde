#!/usr/bin/env bash
# Stop the Neo4j started by scripts/neo4j-start.sh (only that process, by its pid file).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIDFILE="$ROOT/.services/neo4j/neo4j.pid"
MAIN_CLASS="dev.auditgraph.Neo4jLauncher"
grace="${NEO4J_STOP_TIMEOUT:-60}"

alive() { # $1 = pid: exists and is not a zombie
  [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/stat" ]] && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]]
}

if [[ ! -f "$PIDFILE" ]]; then
  echo "neo4j: nothing to stop (no pid file; not started by neo4j-start.sh)"
  exit 0
fi
pid="$(cat "$PIDFILE" 2>/dev/null || true)"
if ! alive "$pid" || ! grep -qaF "$MAIN_CLASS" "/proc/$pid/cmdline" 2>/dev/null; then
  echo "neo4j: not running (stale pid file removed)"
  rm -f "$PIDFILE"
  exit 0
fi

SECONDS=0
kill -TERM "$pid" 2>/dev/null || true
while alive "$pid" && ((SECONDS < grace)); do sleep 0.5; done
if alive "$pid"; then
  echo "neo4j: still running after ${grace}s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  while alive "$pid"; do sleep 0.2; done
fi
rm -f "$PIDFILE"
echo "neo4j: stopped (pid $pid) after ${SECONDS}s"
