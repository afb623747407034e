#!/usr/bin/env bash
# idle-cpu.sh measures what an idle three-node elcache cluster costs: the CPU
# each process uses (as % of one core) and its resident memory.
#
# Usage: cmd/elcache/testdata/idle-cpu.sh BINARY [FLAG...]
#
#   go build -o /tmp/elcache ./cmd/elcache
#   cmd/elcache/testdata/idle-cpu.sh /tmp/elcache
#   cmd/elcache/testdata/idle-cpu.sh /tmp/elcache --raft-commit-timeout 500ms
#
# FLAGs are passed to every node (e.g. Raft timeouts, --partitions).
# Environment: WINDOW (seconds measured, default 30), SETTLE (seconds
# between the last node ready and the first sample, default 10), BASE_PORT
# (default 27100: gRPC on BASE_PORT+1..3, gossip on BASE_PORT+11..13).
#
# It starts the nodes on 127.0.0.1 with data in a temporary directory,
# waits until each logs "node ready", lets leadership moves settle, then
# reads utime+stime from /proc/PID/stat at the start and end of the window
# and VmRSS from /proc/PID/status at the end, and counts the log lines
# written during the window (a settled cluster logs nothing at info).
# KEEP=1 keeps the data directory and logs. Linux only.
set -euo pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
	echo "usage: $0 BINARY [FLAG...]" >&2
	exit 2
fi
bin=$1
shift
window=${WINDOW:-30}
settle=${SETTLE:-10}
base=${BASE_PORT:-27100}
tick=$(getconf CLK_TCK)

dir=$(mktemp -d -t elcache-idle-XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ ${KEEP:-} == 1 ]]; then
		echo "kept $dir" >&2
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

seeds=127.0.0.1:$((base + 11)),127.0.0.1:$((base + 12)),127.0.0.1:$((base + 13))
for i in 1 2 3; do
	"$bin" --node-name "n$i" --data-dir "$dir/n$i" \
		--grpc-addr "127.0.0.1:$((base + i))" --gossip-addr "127.0.0.1:$((base + 10 + i))" \
		--bootstrap-expect 3 --join "$seeds" --log-level info "$@" \
		>"$dir/n$i.log" 2>&1 &
	pids+=($!)
done

deadline=$((SECONDS + 120))
for i in 1 2 3; do
	until grep -q 'msg="node ready"' "$dir/n$i.log"; do
		if ! kill -0 "${pids[i - 1]}" 2>/dev/null; then
			echo "n$i exited:" >&2
			tail -20 "$dir/n$i.log" >&2
			exit 1
		fi
		if ((SECONDS > deadline)); then
			echo "n$i not ready after 120s:" >&2
			tail -20 "$dir/n$i.log" >&2
			exit 1
		fi
		sleep 0.2
	done
done
sleep "$settle"

# cpu_ticks PID prints utime+stime in clock ticks. Field 2 (comm) is in
# parentheses and may hold spaces, so fields are counted after the last ')'.
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	# $1 is field 3 (state): utime and stime are fields 14 and 15.
	awk '{ print $12 + $13 }' <<<"$stat"
}

declare -a before lines
for i in 0 1 2; do
	before[i]=$(cpu_ticks "${pids[i]}")
	lines[i]=$(wc -l <"$dir/n$((i + 1)).log")
done
start=$(date +%s.%N)
sleep "$window"
end=$(date +%s.%N)

echo "flags: ${*:-(defaults)}; window ${window}s"
total_cpu=0
total_rss=0
for i in 0 1 2; do
	after=$(cpu_ticks "${pids[i]}")
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/${pids[i]}/status")
	cpu=$(awk -v d=$((after - before[i])) -v t="$tick" -v s="$start" -v e="$end" \
		'BEGIN { printf "%.1f", 100 * d / t / (e - s) }')
	logged=$(($(wc -l <"$dir/n$((i + 1)).log") - lines[i]))
	printf 'n%d: cpu %5s%% of one core, rss %4d MiB, %d log lines in the window\n' $((i + 1)) "$cpu" $((rss / 1024)) "$logged"
	total_cpu=$(awk -v a="$total_cpu" -v b="$cpu" 'BEGIN { printf "%.1f", a + b }')
	total_rss=$((total_rss + rss))
done
printf 'total: cpu %5s%% of one core, rss %4d MiB\n' "$total_cpu" $((total_rss / 1024))
