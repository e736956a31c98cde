#!/usr/bin/env bash
# Use PostgreSQL on 127.0.0.1:${PGPORT:-5432} when it answers; else start the Debian cluster
# (installing Debian's postgresql package when it is missing). Only the PostgreSQL ledger
# backend and its tests need it.
set -euo pipefail
PORT="${PGPORT:-5432}"
ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p "$PORT"; }
if ready; then
  echo "postgres: using 127.0.0.1:$PORT"
  exit 0
fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "postgres: installing Debian's postgresql package"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql >/dev/null
fi
version="$(ls /etc/postgresql | sort -V | tail -n 1)"
$SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
for _ in $(seq 60); do ready && { echo "postgres: started cluster $version/main on 127.0.0.1:$PORT"; exit 0; }; sleep 1; done
echo "postgres: cluster $version/main did not answer on 127.0.0.1:$PORT" >&2
exit 1
