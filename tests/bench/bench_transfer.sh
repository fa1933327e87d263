#!/usr/bin/env bash
# bench_transfer.sh: measures a state transfer (docs/state-transfer.md) on
# this machine, for docs/benchmarks.md ("State transfer"). Not run by
# ctest: it writes a store of several GB.
#
#   tests/bench/bench_transfer.sh BUILD_DIR [STORE_MB]
#
# Starts a 3-node cluster on loopback (ports 24660-24689, apart from the
# blocks of test_transfer.c), fills it with STORE_MB (default 2200) of
# incompressible 64 KiB events
# (bench_transfer_load.c, built here against BUILD_DIR's libcairn), stops
# one follower, deletes its store directory (its Raft directory stays) and
# starts it again: it restarts into a state transfer. The nodes run with
# --snapshot-threshold 16 --snapshot-trailing 64 (THRESHOLD, TRAILING
# override): libraft holds the retained log in memory, up to 80 entries of
# 1 MiB here, which would otherwise dominate every node's RSS (the 512 MiB
# log budget, consensus.md). Samples VmRSS of the
# three processes every 100 ms and reports: the copy's size and MB/s (from
# the receiver's state_transfer_fetched line), the peak RSS of the sender
# and the receiver during the transfer, and the time until the wiped node
# is back and caught up (its last position equals the leader's).
# Everything lives under BUILD_DIR/tmp/bench-transfer-PID, removed at the
# end unless KEEP=1.
set -euo pipefail

build=${1:?usage: bench_transfer.sh BUILD_DIR [STORE_MB]}
store_mb=${2:-2200}
build=$(cd "$build" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
cairnd=$build/node/cairnd
cli=$build/client/cli/cairn
root=$build/tmp/bench-transfer-$$
base=24660
mkdir -p "$root"

peers=""
for k in 1 2 3; do
	peers+="${peers:+,}$k=127.0.0.1:$((base + 10 + k))/127.0.0.1:$((base + k))/127.0.0.1:$((base + 20 + k))"
done
seeds="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
declare -A pid

start_node() {
	local k=$1
	"$cairnd" --id "$k" --data-dir "$root/node$k" \
		--raft-address "127.0.0.1:$((base + 10 + k))" \
		--client-address "127.0.0.1:$((base + k))" \
		--http-address "127.0.0.1:$((base + 20 + k))" \
		--peers "$peers" --election-timeout-ms 2000 \
		--heartbeat-timeout-ms 200 \
		--snapshot-threshold "${THRESHOLD:-16}" \
		--snapshot-trailing "${TRAILING:-64}" \
		>>"$root/node$k.log" 2>&1 &
	pid[$k]=$!
}

cleanup() {
	for k in 1 2 3; do
		if [ -n "${pid[$k]:-}" ]; then
			kill "${pid[$k]}" 2>/dev/null || true
		fi
	done
	wait 2>/dev/null || true
	if [ "${KEEP:-0}" != 1 ]; then
		rm -rf "$root"
	fi
}
trap cleanup EXIT

status_json() { "$cli" --seeds "$seeds" --json status 2>/dev/null || true; }

wait_leader() {
	local deadline=$((SECONDS + 60)) l
	while [ $SECONDS -lt $deadline ]; do
		l=$(status_json | jq -r '[.[] | select(.role == "leader")][0].id // empty' 2>/dev/null || true)
		if [ -n "$l" ]; then
			echo "$l"
			return 0
		fi
		sleep 0.2
	done
	echo "no leader" >&2
	return 1
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
cc -O2 -o "$root/load" "$src/tests/bench/bench_transfer_load.c" \
	-I"$src/client" -L"$build/client/lib" -Wl,-rpath,"$build/client/lib" \
	-lcairn -lpthread

for k in 1 2 3; do start_node "$k"; done
leader=$(wait_leader)
echo "leader: node $leader; loading $store_mb MB"
"$root/load" "$seeds" "$store_mb"
sleep 2
follower=$(( leader % 3 + 1 ))
sender=$(( follower % 3 + 1 ))
[ "$sender" = "$leader" ] && sender=$(( sender % 3 + 1 ))
echo "store sizes (du): $(du -sh "$root"/node*/store | tr '\n' ' ')"
echo "wiping node $follower's store; node $sender should send (followers first)"
kill -TERM "${pid[$follower]}"
wait "${pid[$follower]}" || true
rm -rf "$root/node$follower/store"

declare -A peak base xfer
for k in 1 2 3; do
	peak[$k]=0
	xfer[$k]=0
	base[$k]=$(rss_kb "${pid[$k]}")
done
t0=$(date +%s.%N)
start_node "$follower"
done_at=""
caught_at=""
deadline=$((SECONDS + 1800))
while [ $SECONDS -lt $deadline ]; do
	for k in 1 2 3; do
		r=$(rss_kb "${pid[$k]}")
		[ "${r:-0}" -gt "${peak[$k]}" ] && peak[$k]=$r
		if [ -z "$done_at" ] && [ "${r:-0}" -gt "${xfer[$k]}" ]; then
			xfer[$k]=$r
		fi
	done
	if [ -z "$done_at" ] && grep -q "event=state_transfer_done" "$root/node$follower.log"; then
		done_at=$(date +%s.%N)
		hwm_sender=$(awk '/^VmHWM/ {print $2}' "/proc/${pid[$sender]}/status")
	fi
	if [ -n "$done_at" ]; then
		st=$(status_json)
		lp=$(echo "$st" | jq -r "[.[] | select(.id == $leader)][0].last_position // 0")
		fp=$(echo "$st" | jq -r "[.[] | select(.id == $follower)][0].last_position // -1")
		if [ "$lp" = "$fp" ] && [ "$lp" != 0 ]; then
			caught_at=$(date +%s.%N)
			break
		fi
	fi
	sleep 0.1
done
[ -n "$caught_at" ] || { echo "the wiped node did not catch up" >&2; exit 1; }

grep "event=state_transfer_fetched" "$root/node$follower.log" | tail -1
echo "transfer done after $(echo "$done_at - $t0" | bc) s; back and caught up after $(echo "$caught_at - $t0" | bc) s"
for k in 1 2 3; do
	role=other
	[ "$k" = "$follower" ] && role=receiver
	[ "$k" = "$sender" ] && role=sender
	[ "$k" = "$leader" ] && role=leader
	echo "node $k ($role): VmRSS before $((base[$k] / 1024)) MiB," \
		"peak during the transfer $((xfer[$k] / 1024)) MiB," \
		"peak until caught up $((peak[$k] / 1024)) MiB"
done
echo "sender VmHWM (whole life, load included): $((hwm_sender / 1024)) MiB"
