#!/usr/bin/env bash
# Runs a local three-node elcache cluster for `make run` and `make stop`.
#
#   deploy/local/run.sh run    start the nodes, wait until all three serve,
#                              then stay in the foreground; Ctrl-C (SIGINT)
#                              or SIGTERM stops them and exits
#   deploy/local/run.sh stop   stop nodes a killed `run` left behind (pid
#                              files)
#
# Settings come from the environment (the Makefile passes them):
#   DATA_DIR     data root, node i keeps its data and elcache.log in
#                DATA_DIR/ni (default data)
#   HOST         address the nodes listen on (default 127.0.0.1)
#   GRPC_PORT    gRPC port of n1; n2 and n3 take the next ones (default 7400)
#   GOSSIP_PORT  gossip port of n1, likewise (default 7946)
#   RESP_PORT    Redis-protocol (RESP) port of n1, likewise (default 6379:
#                n1..n3 answer redis-cli on 6379, 6380 and 6381)
#   BIN          where elcache and elcachectl are (default bin)
#   START_TIMEOUT  seconds to wait for the cluster to serve (default 120)
#   BACKEND      backing database URL shared by the nodes (default: an
#                SQLite file, DATA_DIR/backing.db; "none" for a pure cache)
#
# Node 1 has --bootstrap-expect 3; nodes 2 and 3 also --join node 1's gossip
# address. A restart reuses the data directories: the nodes rejoin their
# cluster. Each node runs in its own process group, so that a Ctrl-C reaches
# only this script, which then stops the nodes.
set -uo pipefail

DATA_DIR=${DATA_DIR:-data}
HOST=${HOST:-127.0.0.1}
GRPC_PORT=${GRPC_PORT:-7400}
GOSSIP_PORT=${GOSSIP_PORT:-7946}
RESP_PORT=${RESP_PORT:-6379}
BIN=${BIN:-bin}
START_TIMEOUT=${START_TIMEOUT:-120}
BACKEND=${BACKEND:-}
NODES=3
STOP_WAIT=15 # seconds a node gets to stop after SIGTERM
PIDS=()      # PIDS[i] is node i's pid while run watches it

grpc_addr() { echo "$HOST:$((GRPC_PORT + $1 - 1))"; }
gossip_addr() { echo "$HOST:$((GOSSIP_PORT + $1 - 1))"; }
resp_port() { echo "$((RESP_PORT + $1 - 1))"; }
node_dir() { echo "$DATA_DIR/n$1"; }
log_file() { echo "$(node_dir "$1")/elcache.log"; }
pid_file() { echo "$(node_dir "$1")/elcache.pid"; }

say() { echo "run.sh: $*"; }

# node_pid prints node i's pid if its pid file names a live elcache process.
node_pid() {
  local f pid
  f=$(pid_file "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # The pid may have been reused by another program since.
  case "$(ps -p "$pid" -o comm= 2>/dev/null)" in
  *elcache*) echo "$pid" ;;
  *) return 1 ;;
  esac
}

# last_log prints the end of node i's log, from its latest start at most.
last_log() {
  local f from
  f=$(log_file "$1")
  from=$(grep -n '^=== .* run.sh: starting' "$f" 2>/dev/null | tail -n 1 | cut -d: -f1)
  echo "---- last lines of $f ----"
  tail -n +"${from:-1}" "$f" 2>/dev/null | tail -n 20
  echo "----"
}

# stop_nodes sends SIGTERM to every running node, waits up to STOP_WAIT
# seconds for all of them, then kills the rest.
stop_nodes() {
  local i pid pids=() names=() deadline left
  for i in $(seq 1 $NODES); do
    if pid=$(node_pid "$i"); then
      kill -TERM "$pid" 2>/dev/null
      pids+=("$pid")
      names+=("n$i")
    fi
  done
  if [ ${#pids[@]} -eq 0 ]; then
    return 0
  fi
  say "stopping ${names[*]} (SIGTERM, up to ${STOP_WAIT}s)"
  deadline=$((SECONDS + STOP_WAIT))
  while :; do
    left=()
    for i in "${!pids[@]}"; do
      kill -0 "${pids[$i]}" 2>/dev/null && left+=("$i")
    done
    [ ${#left[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      for i in "${left[@]}"; do
        say "${names[$i]} (pid ${pids[$i]}) did not stop in ${STOP_WAIT}s: SIGKILL"
        kill -KILL "${pids[$i]}" 2>/dev/null
      done
      break
    fi
    sleep 0.2
  done
  for i in $(seq 1 $NODES); do
    rm -f "$(pid_file "$i")"
  done
  say "stopped"
}

start_node() {
  local i=$1 args
  mkdir -p "$(node_dir "$i")"
  args=(--node-name "n$i" --data-dir "$(node_dir "$i")"
    --grpc-addr "$(grpc_addr "$i")" --gossip-addr "$(gossip_addr "$i")"
    --resp-addr "$HOST:$(resp_port "$i")" --bootstrap-expect "$NODES")
  if [ "$BACKEND" != none ]; then
    # Redis connections write back (the database gets each key within a
    # flush) so that INCR, APPEND, SET NX and the other read-modify-write
    # commands work: they cannot run write-through (docs/redis.md).
    args+=(--backend "${BACKEND:-sqlite://$(cd "$DATA_DIR" && pwd)/backing.db}" --backend-create-table true
      --resp-write-mode back)
  fi
  if [ "$i" -gt 1 ]; then
    args+=(--join "$(gossip_addr 1)")
  fi
  echo "=== $(date '+%Y-%m-%dT%H:%M:%S') run.sh: starting elcache ${args[*]}" >>"$(log_file "$i")"
  "$BIN/elcache" "${args[@]}" >>"$(log_file "$i")" 2>&1 &
  PIDS[i]=$!
  echo $! >"$(pid_file "$i")"
}

serving() {
  "$BIN/elcachectl" --addr "$(grpc_addr "$1")" --timeout 1s health >/dev/null 2>&1
}

# fail_start reports the nodes that died while starting, stops the others
# and exits 1.
fail_start() {
  local i
  for i in $(seq 1 $NODES); do
    if ! node_pid "$i" >/dev/null; then
      say "n$i exited while starting"
      last_log "$i"
    fi
  done
  stop_nodes
  exit 1
}

on_signal() {
  trap '' INT TERM HUP
  echo
  stop_nodes
  exit 0
}

run() {
  local i up running=() deadline pid
  for i in $(seq 1 $NODES); do
    if pid=$(node_pid "$i"); then running+=("n$i (pid $pid)"); fi
  done
  if [ ${#running[@]} -gt 0 ]; then
    say "a local cluster is already running: ${running[*]}; run 'make stop' first"
    exit 1
  fi
  if [ ! -x "$BIN/elcache" ] || [ ! -x "$BIN/elcachectl" ]; then
    say "$BIN/elcache or $BIN/elcachectl is missing: run make build"
    exit 1
  fi

  trap on_signal INT TERM HUP
  say "starting $NODES nodes (data and logs in $DATA_DIR/n1..n$NODES)"
  # Job control puts each node in its own process group: the terminal's
  # Ctrl-C then reaches this script alone, which stops the nodes once (a
  # node stops at once on a second signal). It is off again for the rest,
  # so that this script's own commands stay in the terminal's group.
  set -m
  for i in $(seq 1 $NODES); do
    start_node "$i"
  done
  set +m

  deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    up=0
    for i in $(seq 1 $NODES); do
      node_pid "$i" >/dev/null || fail_start
      serving "$i" && up=$((up + 1))
    done
    [ $up -eq $NODES ] && break
    if [ $SECONDS -ge $deadline ]; then
      say "the cluster did not serve within ${START_TIMEOUT}s"
      for i in $(seq 1 $NODES); do serving "$i" || last_log "$i"; done
      stop_nodes
      exit 1
    fi
    sleep 0.5 &
    wait $!
  done

  local cli="redis-cli"
  [ "$HOST" = 127.0.0.1 ] || cli="redis-cli -h $HOST"
  echo
  echo "elcache: a $NODES-node cluster is serving"
  for i in $(seq 1 $NODES); do
    printf '  n%s  gRPC %s  Redis %s  gossip %s  log %s\n' "$i" "$(grpc_addr "$i")" "$HOST:$(resp_port "$i")" "$(gossip_addr "$i")" "$(log_file "$i")"
  done
  cat <<EOF

Try, from another shell:
  $BIN/elcachectl --addr $(grpc_addr 1) put k v
  $BIN/elcachectl --addr $(grpc_addr 2) get k
  $BIN/elcachectl --addr $(grpc_addr 1) members
  $BIN/elcachectl --addr $(grpc_addr 1) partitions
(or export ELCACHE_ADDR=$(grpc_addr 1) and drop --addr)
or with any Redis client, on the Redis ports $(resp_port 1)-$(resp_port $NODES):
  $cli -p $(resp_port 1) set k v
  $cli -p $(resp_port 2) get k

Ctrl-C stops the cluster; the data stays in $DATA_DIR for the next make run.
EOF

  # Stay in the foreground; report a node that exits on its own (or is
  # stopped from elsewhere).
  local gone=0 status
  while :; do
    for i in $(seq 1 $NODES); do
      [ -n "${PIDS[$i]}" ] || continue
      if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
        wait "${PIDS[$i]}" 2>/dev/null
        status=$?
        PIDS[i]=""
        gone=$((gone + 1))
        say "n$i exited (status $status)"
        [ $status -eq 0 ] || last_log "$i"
      fi
    done
    if [ $gone -eq $NODES ]; then
      say "every node has exited"
      for i in $(seq 1 $NODES); do rm -f "$(pid_file "$i")"; done
      exit 1
    fi
    sleep 1 &
    wait $!
  done
}

# stop stops the nodes of a `run` that was killed before it could.
stop() {
  local i any=0
  for i in $(seq 1 $NODES); do node_pid "$i" >/dev/null && any=1; done
  if [ $any -eq 0 ]; then
    say "no local node is running"
    for i in $(seq 1 $NODES); do rm -f "$(pid_file "$i")"; done
    return 0
  fi
  stop_nodes
}

case "${1-}" in
run) run ;;
stop) stop ;;
*)
  echo "usage: $0 run|stop (settings in the environment: see the top of this file)" >&2
  exit 2
  ;;
esac
