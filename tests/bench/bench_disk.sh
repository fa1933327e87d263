#!/bin/sh
# Disk use of a 3-node cluster under W1 (docs/benchmarks.md, "Disk use
# under W1"): the Raft log (DIR/raft) and the RocksDB store (DIR/store) of
# every node, sampled while `cairn bench --workload w1` runs at full speed,
# and extrapolated to one hour of W1 at its target rate.
#
# Time is compressed: W1's target is W1_TARGET_RATE appends/s (one 256-byte
# event each), so an hour writes W1_TARGET_RATE x 3600 events. The cluster
# takes them as fast as it can for DURATION_S seconds; when that is shorter
# than what an hour's events need, the figures are for the events written
# and the script extrapolates the store linearly (bytes per event) and the
# Raft log by its bound (it does not grow with the number of events).
#
#   tests/bench/bench_disk.sh            # 300 s, samples every 30 s
#   DURATION_S=3600 SAMPLE_S=60 tests/bench/bench_disk.sh
#
# Environment: CAIRN_BUILD_DIR (default build; needs cairnd and cairn),
# DURATION_S (300), SAMPLE_S (30), WRITERS (64), W1_TARGET_RATE (45000),
# BENCH_DATA (a new directory under /tmp; removed at the end unless
# KEEP=1). Ports 25371-25373 (client), 25381-25383 (HTTP), 25391-25393
# (Raft). Prints one line per sample and a summary; exit status 0, or 1
# when the cluster fails.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CAIRN_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
duration=${DURATION_S:-300}
sample=${SAMPLE_S:-30}
writers=${WRITERS:-64}
target=${W1_TARGET_RATE:-45000}
data=${BENCH_DATA:-$(mktemp -d /tmp/cairn-bench-disk.XXXXXX)}
cli=$build/client/cli/cairn
seeds=127.0.0.1:25371,127.0.0.1:25372,127.0.0.1:25373

for b in "$build/node/cairnd" "$cli"; do
	if [ ! -x "$b" ]; then
		echo "bench_disk: $b is missing (build cairnd and cairn_cli)" >&2
		exit 1
	fi
done

export CAIRN_BUILD_DIR="$build" CAIRN_LOCAL_DATA="$data"
export CAIRN_LOCAL_CLIENT_PORT=25371 CAIRN_LOCAL_HTTP_PORT=25381
export CAIRN_LOCAL_RAFT_PORT=25391 CAIRN_SKIP_SETUP=1 CAIRN_SKIP_BUILD=1

cleanup() {
	"$root/deploy/local/cluster.sh" stop >/dev/null 2>&1 || true
	if [ "${KEEP:-0}" != 1 ]; then
		rm -rf "$data"
	fi
}
trap cleanup EXIT INT TERM

"$root/deploy/local/cluster.sh" start >/dev/null

# Bytes a directory takes on disk (allocated blocks: preallocated Raft
# segments and RocksDB's preallocated WAL count whole).
bytes() {
	du -s -B1 "$1" 2>/dev/null | cut -f1
}

# The largest of the three nodes' @1 directories.
max_of() {
	m=0
	for n in 1 2 3; do
		b=$(bytes "$data/node$n/$1")
		[ "${b:-0}" -gt "$m" ] && m=$b
	done
	echo "$m"
}

# The leader's last position (global log length), from any node's metrics.
events() {
	for n in 1 2 3; do
		v=$(curl -s "http://127.0.0.1:$((25380 + n))/metrics" 2>/dev/null |
			awk '$1 == "cairn_last_position" { print $2 }')
		if [ -n "$v" ]; then
			echo "$v"
			return
		fi
	done
	echo 0
}

# SST bytes of node 1's store (every column family): the compacted data,
# without the WAL.
sst() {
	curl -s "http://127.0.0.1:25381/metrics" 2>/dev/null |
		awk '/^cairn_rocksdb_sst_bytes/ { s += $2 } END { print s + 0 }'
}

echo "bench_disk: W1 with $writers writers for $duration s, samples every" \
	"$sample s; data in $data"
printf '%8s %12s %10s %14s %14s %10s %10s %10s\n' elapsed_s events \
	events/s raft_max_B store_max_B store_B/ev sst_B/ev rss_max_MB
start=$(date +%s)
raft_peak=0
while :; do
	now=$(date +%s)
	left=$((start + duration - now))
	[ "$left" -le 0 ] && break
	run=$sample
	[ "$left" -lt "$run" ] && run=$left
	"$cli" --seeds "$seeds" bench --workload w1 --writers "$writers" \
		--duration-s "$run" >/dev/null
	elapsed=$(($(date +%s) - start))
	ev=$(events)
	raft=$(max_of raft)
	store=$(max_of store)
	[ "$raft" -gt "$raft_peak" ] && raft_peak=$raft
	rss=0
	for n in 1 2 3; do
		pid=$(cat "$data/node$n.pid" 2>/dev/null || echo 0)
		r=$(awk '/^VmRSS/ { print int($2 / 1024) }' \
			"/proc/$pid/status" 2>/dev/null || echo 0)
		[ "${r:-0}" -gt "$rss" ] && rss=$r
	done
	ssts=$(sst)
	printf '%8d %12d %10d %14d %14d %10d %10d %10d\n' "$elapsed" "$ev" \
		$((ev / (elapsed > 0 ? elapsed : 1))) "$raft" "$store" \
		$((store / (ev > 0 ? ev : 1))) $((ssts / (ev > 0 ? ev : 1))) \
		"$rss"
done

ev=$(events)
store=$(max_of store)
ssts=$(sst)
hour=$((target * 3600))
echo
echo "summary: $ev events in $duration s ($((ev / duration)) events/s);" \
	"an hour of W1 at $target/s is $hour events"
echo "  raft/ at most $raft_peak bytes during the run (bounded: does not" \
	"grow with events)"
echo "  store/ $store bytes = $((store / (ev > 0 ? ev : 1))) bytes/event;" \
	"for an hour: $((store * hour / (ev > 0 ? ev : 1) / 1048576)) MiB" \
	"(linear extrapolation x$((hour / (ev > 0 ? ev : 1))))"
echo "  SST files (compacted data, no WAL) $ssts bytes =" \
	"$((ssts / (ev > 0 ? ev : 1))) bytes/event; for an hour:" \
	"$((ssts * hour / (ev > 0 ? ev : 1) / 1048576)) MiB"
