#!/usr/bin/env bash
# Start a local Neo4j 5.26 Community server (embedded launcher, Bolt only) without Docker.
# Reuses whatever already answers on NEO4J_URI. Otherwise builds scripts/neo4j once with Maven
# (Neo4j comes from Maven Central) and runs it in the background.
#   env: NEO4J_URI (bolt://127.0.0.1:7687), NEO4J_PASSWORD (auditgraph-dev, user neo4j),
#        NEO4J_DATA_DIR (<repo>/.services/neo4j/data), NEO4J_START_TIMEOUT (240 s)
# Logs: .services/neo4j/neo4j.log (launcher), .services/neo4j/logs/debug.log (Neo4j).
# Stop with scripts/neo4j-stop.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="$ROOT/scripts/neo4j"
SERVICE_DIR="$ROOT/.services/neo4j"
LOG="$SERVICE_DIR/neo4j.log"
PIDFILE="$SERVICE_DIR/neo4j.pid"
MAIN_CLASS="dev.auditgraph.Neo4jLauncher"

NEO4J_URI="${NEO4J_URI:-bolt://127.0.0.1:7687}"
hostport="${NEO4J_URI#*://}"
hostport="${hostport%%/*}"
if [[ "$hostport" == *:* ]]; then host="${hostport%:*}" port="${hostport##*:}"; else host="$hostport" port=7687; fi
host="${host:-127.0.0.1}"

port_open() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

alive() { # $1 = pid: exists and is not a zombie
  [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/stat" ]] && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]]
}

our_pid_alive() { # $1 = pid: alive and running our launcher?
  alive "$1" && grep -qaF "$MAIN_CLASS" "/proc/$1/cmdline" 2>/dev/null
}

pid=""
if [[ -f "$PIDFILE" ]]; then
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  our_pid_alive "$pid" || { rm -f "$PIDFILE"; pid=""; }
fi

if [[ -z "$pid" ]] && port_open; then
  echo "neo4j: using $NEO4J_URI"
  exit 0
fi

if [[ -n "$pid" ]] && port_open && grep -q '^neo4j ready' "$LOG" 2>/dev/null; then
  echo "neo4j: using $NEO4J_URI"
  exit 0
fi

SECONDS=0
if [[ -z "$pid" ]]; then

  "$ROOT/scripts/neo4j-build.sh"
  CP_FILE="$MODULE/target/classpath.txt"

  mkdir -p "$SERVICE_DIR"
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.prev"
  export NEO4J_BOLT_ADDRESS="${NEO4J_BOLT_ADDRESS:-$host:$port}"
  export NEO4J_DATA_DIR="${NEO4J_DATA_DIR:-$SERVICE_DIR/data}"
  # CLASSPATH instead of -cp keeps the command line (ps) readable; same effect.
  # shellcheck disable=SC2016  # expanded by the inner bash
  CLASSPATH="$MODULE/target/classes:$(cat "$CP_FILE")" \
    nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
    java -Xmx1g -XX:+ExitOnOutOfMemoryError \
      --add-opens=java.base/java.nio=ALL-UNNAMED \
      --add-opens=java.base/java.io=ALL-UNNAMED \
      --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
      -Dio.netty.tryReflectionSetAccessible=true \
      "$MAIN_CLASS" >"$LOG" 2>&1 </dev/null &
  for _ in $(seq 50); do [[ -s "$PIDFILE" ]] && break; sleep 0.1; done
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  echo "neo4j: starting (pid ${pid:-?}, log $LOG)"
else
  echo "neo4j: already starting (pid $pid), waiting"
fi

# Ready = the launcher printed its ready line (password set) and Bolt answers.
timeout_s="${NEO4J_START_TIMEOUT:-240}"
while :; do
  if ! alive "$pid"; then
    echo "neo4j: process exited during startup; last log lines:" >&2
    tail -n 40 "$LOG" >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  if grep -q '^neo4j ready' "$LOG" 2>/dev/null && port_open; then
    break
  fi
  if ((SECONDS >= timeout_s)); then
    echo "neo4j: not ready after ${timeout_s}s; stopping it. Last log lines:" >&2
    tail -n 40 "$LOG" >&2 || true
    "$ROOT/scripts/neo4j-stop.sh" >&2 || true
    exit 1
  fi
  sleep 1
done
echo "neo4j: ready at $NEO4J_URI after ${SECONDS}s (pid $pid)"
