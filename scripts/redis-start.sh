#!/usr/bin/env bash
# Make a Redis answer on 127.0.0.1:$REDIS_PORT (default 6379). Reuses one that already answers
# PING; otherwise starts redis-server (installing Debian's package if missing) with its data, pid
# and log in <repo>/.services/redis. Stop with scripts/redis-stop.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${REDIS_PORT:-6379}"
DIR="$ROOT/.services/redis"
PIDFILE="$DIR/redis.pid"
LOG="$DIR/redis.log"

pong() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" == PONG ]]
  else
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "PING\r\n" >&3 && IFS= read -r line <&3 && [[ "$line" == +PONG* ]]' "$PORT" 2>/dev/null
  fi
}

port_open() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$PORT" 2>/dev/null
}

if pong; then
  echo "redis: using 127.0.0.1:$PORT"
  exit 0
fi
if port_open; then
  echo "redis: something listens on 127.0.0.1:$PORT but does not answer PING with PONG (password set?); not starting another" >&2
  exit 1
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis: redis-server not found, installing Debian's redis-server package"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "redis: need root or sudo to install redis-server" >&2; exit 1; }
    SUDO="sudo"
  fi
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
  # The package may have started the system service on the default port.
  if pong; then
    echo "redis: using 127.0.0.1:$PORT"
    exit 0
  fi
fi

mkdir -p "$DIR"
SECONDS=0
redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --appendonly yes \
  --maxmemory-policy noeviction --dir "$DIR" --pidfile "$PIDFILE" --logfile "$LOG"
until pong; do
  if ((SECONDS >= 30)); then
    echo "redis: no PONG on 127.0.0.1:$PORT after 30s; last log lines:" >&2
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.2
done
echo "redis: started on 127.0.0.1:$PORT (pid $(cat "$PIDFILE" 2>/dev/null || echo ?), dir $DIR)"
