#!/usr/bin/env bash
# Compose smoke test (`make compose-smoke`, run by CI): three containers of
# elcache:latest form a cluster; a client in the cluster's network writes
# and reads through one node; one container is killed and the reads still
# succeed; then everything is torn down, volumes included.
#
# Settings: COMPOSE (default docker-compose, or "docker compose"),
# PROJECT (default elcache-smoke), START_TIMEOUT (seconds, default 120).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
COMPOSE=${COMPOSE:-docker-compose}
PROJECT=${PROJECT:-elcache-smoke}
START_TIMEOUT=${START_TIMEOUT:-120}
dc() { $COMPOSE -p "$PROJECT" -f "$here/docker-compose.yml" "$@"; }
say() { echo "smoke: $*"; }

cleanup() {
  if [ "${failed:-0}" = 1 ]; then
    say "node logs (last 30 lines each):"
    dc logs --no-color --tail 30 || true
  fi
  dc down -v --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT

fail() { failed=1; say "FAILED: $*"; exit 1; }

# ctl NODE ARGS...: elcachectl inside NODE's container, talking to NODE.
ctl() { local n=$1; shift; dc exec -T "$n" /elcachectl --addr "$n:7400" --timeout 10s "$@"; }

# retry SECONDS CMD...: run CMD until it succeeds or SECONDS pass.
retry() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 1
  done
}

command -v "${COMPOSE%% *}" >/dev/null || fail "$COMPOSE not found (Debian: apt-get install docker-compose)"
docker info >/dev/null 2>&1 || fail "the Docker daemon does not answer (is it running? are you in the docker group?)"
dc down -v --remove-orphans >/dev/null 2>&1
say "starting 3 nodes"
dc up -d || fail "compose up"

for n in n1 n2 n3; do
  retry "$START_TIMEOUT" ctl "$n" health >/dev/null 2>&1 || fail "$n not serving after ${START_TIMEOUT}s"
done
members=$(ctl n1 members) || fail "members"
echo "$members"
for n in n1 n2 n3; do
  grep -q "$n" <<<"$members" || fail "$n is not a member"
done
say "cluster formed"

for i in 1 2 3 4 5 6 7 8 9 10; do
  ctl n1 put "smoke-$i" "value-$i" || fail "put smoke-$i through n1"
done
for i in 1 2 3 4 5 6 7 8 9 10; do
  got=$(ctl n1 get "smoke-$i" --consistency linearizable) || fail "get smoke-$i through n1"
  [ "$got" = "value-$i" ] || fail "get smoke-$i = '$got', want value-$i"
done
say "10 keys written and read back through n1"

say "killing n3"
dc kill n3 >/dev/null || fail "kill n3"
# Partitions that n3 led elect a new leader within a few seconds.
for i in 1 2 3 4 5 6 7 8 9 10; do
  read_back() { [ "$(ctl n1 get "smoke-$i" --consistency linearizable 2>/dev/null)" = "value-$i" ]; }
  retry 30 read_back || fail "get smoke-$i through n1 after n3 was killed"
done
ctl n1 put after-kill yes || fail "put after n3 was killed"
[ "$(ctl n2 get after-kill)" = yes ] || fail "read of a write made after the kill, through n2"
say "reads and writes succeed with n3 down"
say "ok"
