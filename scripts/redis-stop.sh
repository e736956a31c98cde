#!/usr/bin/env bash
# Stop the Redis started by scripts/redis-start.sh (only that process, by its pid file).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIDFILE="$ROOT/.services/redis/redis.pid"

alive() { # $1 = pid: exists and is not a zombie
  [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/stat" ]] && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]]
}

if [[ ! -f "$PIDFILE" ]]; then
  echo "redis: nothing to stop (no pid file; not started by redis-start.sh)"
  exit 0
fi
pid="$(cat "$PIDFILE" 2>/dev/null || true)"
if ! alive "$pid" || ! grep -qaF redis-server "/proc/$pid/cmdline" 2>/dev/null; then
  echo "redis: not running (stale pid file removed)"
  rm -f "$PIDFILE"
  exit 0
fi

SECONDS=0
kill -TERM "$pid" 2>/dev/null || true # redis flushes the append-only file and exits
while alive "$pid" && ((SECONDS < 30)); do sleep 0.2; done
if alive "$pid"; then
  echo "redis: still running after 30s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  while alive "$pid"; do sleep 0.2; done
fi
rm -f "$PIDFILE"
echo "redis: stopped (pid $pid) after ${SECONDS}s"
