#!/usr/bin/env bash
# Starts or stops a local elcache node in the background for `make run`.
# Usage: deploy/local/run.sh start|stop DATA_DIR GRPC_ADDR
set -euo pipefail
cmd=$1 dir=$2 addr=$3
pidfile="$dir/elcache.pid"
log="$dir/elcache.log"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "$cmd" in
start)
  mkdir -p "$dir"
  if running; then
    echo "elcache is already running (pid $(cat "$pidfile"), $addr); make stop stops it"
    exit 0
  fi
  nohup bin/elcache --data-dir "$dir" --grpc-addr "$addr" >>"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 300); do
    if bin/elcachectl --addr "$addr" --timeout 1s health >/dev/null 2>&1; then
      echo "elcache is serving on $addr (pid $(cat "$pidfile"), data in $dir, log in $log)"
      echo "try: bin/elcachectl put k v && bin/elcachectl get k"
      echo "stop it with: make stop"
      exit 0
    fi
    running || { echo "elcache exited; last log lines:"; tail -20 "$log"; exit 1; }
    sleep 0.1
  done
  echo "elcache did not become ready in 30s; see $log"; exit 1
  ;;
stop)
  if ! running; then echo "elcache is not running"; exit 0; fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "elcache stopped"; exit 0; }
    sleep 0.1
  done
  echo "elcache did not stop in 10s (pid $pid)"; exit 1
  ;;
*) echo "usage: $0 start|stop DATA_DIR GRPC_ADDR" >&2; exit 2 ;;
esac
