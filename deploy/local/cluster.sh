#!/bin/sh
# A local 3-node Cairn cluster on loopback, for trying Cairn out and for
# the integration test integration_local_cluster.
#
#   deploy/local/cluster.sh start    set up (apt, only what is missing), build
#                                    if the binaries are missing or older
#                                    than the sources, start three cairnd,
#                                    wait until a leader is elected
#   deploy/local/cluster.sh stop     SIGTERM each node, SIGKILL after 15 s
#   deploy/local/cluster.sh status   which nodes run, and `cairn status`
#   deploy/local/cluster.sh --help
#
# Node N (1..3) listens on 127.0.0.1: client port 7000+N, HTTP 8000+N,
# Raft 9000+N; its data is in data/local/nodeN, its log in
# data/local/nodeN.log, its pid in data/local/nodeN.pid. A start after a
# stop keeps the data. The environment may change:
#
#   CAIRN_BUILD_DIR          build directory (default: build)
#   CAIRN_LOCAL_DATA         data, logs and pid files (default: data/local)
#   CAIRN_LOCAL_CLIENT_PORT  node 1's client port; nodes 2, 3 follow (7001)
#   CAIRN_LOCAL_HTTP_PORT    node 1's HTTP port (8001)
#   CAIRN_LOCAL_RAFT_PORT    node 1's Raft port (9001)
#   CAIRN_LOCAL_WAIT_S       longest wait for a leader (30)
#   CAIRN_SKIP_SETUP=1       do not run deploy/setup.sh
#   CAIRN_SKIP_BUILD=1       do not build (the binaries must exist)
#
# cairnd also reads its own CAIRN_* variables (CAIRN_ELECTION_TIMEOUT_MS,
# CAIRN_LOG_LEVEL, ...; see docs), which pass through to every node.
#
# Exit status: 0 on success; 1 on a failure; 2 on a usage error. `status`
# exits 0 when all three nodes run, 3 when none does, 1 otherwise.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CAIRN_BUILD_DIR:-$root/build}
case "$build" in /*) ;; *) build=$(pwd)/$build ;; esac
data=${CAIRN_LOCAL_DATA:-$root/data/local}
case "$data" in /*) ;; *) data=$(pwd)/$data ;; esac
client_port=${CAIRN_LOCAL_CLIENT_PORT:-7001}
http_port=${CAIRN_LOCAL_HTTP_PORT:-8001}
raft_port=${CAIRN_LOCAL_RAFT_PORT:-9001}
wait_s=${CAIRN_LOCAL_WAIT_S:-30}
host=127.0.0.1
nodes="1 2 3"
cairnd=$build/node/cairnd
cli=$build/client/cli/cairn

usage() {
	sed -n '2,/^set -eu$/p' "$0" | sed -e '/^set -eu$/d' -e 's/^# \{0,1\}//'
}

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

for v in "$client_port" "$http_port" "$raft_port" "$wait_s"; do
	case "$v" in
	'' | *[!0-9]*) die "not a number: '$v' (see --help)" ;;
	esac
done

client_address() { echo "$host:$((client_port + $1 - 1))"; }
http_address() { echo "$host:$((http_port + $1 - 1))"; }
raft_address() { echo "$host:$((raft_port + $1 - 1))"; }

peers=""
seeds=""
for n in $nodes; do
	peers="$peers${peers:+,}$n=$(raft_address "$n")/$(client_address "$n")/$(http_address "$n")"
	seeds="$seeds${seeds:+,}$(client_address "$n")"
done

# True when process $1 runs (a zombie, exited but not yet reaped, does
# not).
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	if [ -r "/proc/$1/stat" ]; then
		state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
		[ "$state" != Z ] || return 1
	fi
	return 0
}

# The pid of node $1 if it runs (a stale pid file, or a pid now used by
# another program, does not count).
node_pid() {
	pidfile=$data/node$1.pid
	[ -r "$pidfile" ] || return 1
	pid=$(cat "$pidfile" 2>/dev/null) || return 1
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	alive "$pid" || return 1
	if [ -r "/proc/$pid/cmdline" ]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q cairnd || return 1
	fi
	echo "$pid"
}

running_count() {
	count=0
	for n in $nodes; do
		if node_pid "$n" >/dev/null; then
			count=$((count + 1))
		fi
	done
	echo "$count"
}

print_log_tails() {
	for t in $nodes; do
		log=$data/node$t.log
		echo "---- node $t: last 30 lines of $log ----" >&2
		if [ -r "$log" ]; then
			tail -n 30 "$log" >&2
		else
			echo "(no log)" >&2
		fi
	done
}

# True when a binary is missing or older than any source of the build.
needs_build() {
	for bin in "$cairnd" "$cli"; do
		[ -x "$bin" ] || return 0
		newer=$(find "$root/CMakeLists.txt" "$root/common" "$root/storage" \
			"$root/consensus" "$root/node" "$root/client" \
			\( -name '*.c' -o -name '*.h' -o -name '*.in' \
			-o -name CMakeLists.txt \) -newer "$bin" 2>/dev/null |
			head -n 1)
		[ -z "$newer" ] || return 0
	done
	return 1
}

build_if_needed() {
	if [ "${CAIRN_SKIP_BUILD:-0}" = 1 ]; then
		[ -x "$cairnd" ] || die "$cairnd is missing (CAIRN_SKIP_BUILD=1)"
		[ -x "$cli" ] || die "$cli is missing (CAIRN_SKIP_BUILD=1)"
		return 0
	fi
	needs_build || return 0
	echo "cluster.sh: building in $build" >&2
	jobs=$(nproc 2>/dev/null || echo 2)
	(cd "$root" && cmake -S . -B "$build" >/dev/null &&
		cmake --build "$build" -j"$jobs" >/dev/null) ||
		die "build failed: run cmake --build $build to see why"
	[ -x "$cairnd" ] || die "the build made no $cairnd"
	[ -x "$cli" ] || die "the build made no $cli"
}

start_node() {
	n=$1
	mkdir -p "$data/node$n"
	echo "==== cluster.sh: starting node $n at $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		>>"$data/node$n.log"
	# A session of its own: a Ctrl-C or a closed terminal after start does
	# not reach the node. Without job control the background child is no
	# process group leader, so setsid execs in place and $! is cairnd's.
	launcher=""
	command -v setsid >/dev/null 2>&1 && launcher=setsid
	$launcher "$cairnd" --id "$n" --data-dir "$data/node$n" \
		--raft-address "$(raft_address "$n")" \
		--client-address "$(client_address "$n")" \
		--http-address "$(http_address "$n")" \
		--peers "$peers" </dev/null >>"$data/node$n.log" 2>&1 &
	echo $! >"$data/node$n.pid"
}

# True when a node reports itself leader in `cairn status --json` (one row
# per member, each with the role that member reports).
leader_elected() {
	out=$("$cli" --seeds "$seeds" --json status 2>/dev/null) || return 1
	printf '%s\n' "$out" |
		grep -Eq '"role"[[:space:]]*:[[:space:]]*"leader"'
}

cmd_start() {
	count=$(running_count)
	if [ "$count" -eq 3 ]; then
		echo "cluster.sh: already running (3 nodes; data in $data)"
		return 0
	fi
	if [ "${CAIRN_SKIP_SETUP:-0}" != 1 ]; then
		sh "$root/deploy/setup.sh" || die "deploy/setup.sh failed"
	fi
	build_if_needed
	mkdir -p "$data"
	for n in $nodes; do
		if pid=$(node_pid "$n"); then
			echo "cluster.sh: node $n already runs (pid $pid)"
		else
			start_node "$n"
		fi
	done

	deadline=$(($(date +%s) + wait_s))
	until leader_elected; do
		for dead in $nodes; do
			if ! node_pid "$dead" >/dev/null; then
				print_log_tails
				die "node $dead exited during start (log:" \
					"$data/node$dead.log)"
			fi
		done
		if [ "$(date +%s)" -ge "$deadline" ]; then
			print_log_tails
			die "no leader elected within ${wait_s}s; the nodes still" \
				"run (stop them with: $0 stop)"
		fi
		sleep 0.2
	done

	# The CLI's own default seeds are these nodes on the default ports.
	run_cli=$cli
	case "$cli" in "$root"/*) run_cli=${cli#"$root"/} ;; esac
	if [ "$seeds" != "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003" ]; then
		run_cli="$run_cli --seeds $seeds"
	fi
	echo "cluster.sh: 3 nodes running, leader elected (data in $data)"
	echo "client addresses: $seeds"
	echo "Try, from $root:"
	echo "  $run_cli append order-1 --type OrderPlaced --data '{\"total\": 42}'"
	echo "  $run_cli read order-1 --json"
	echo "  $run_cli status"
}

cmd_stop() {
	pids=""
	for n in $nodes; do
		if pid=$(node_pid "$n"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids="$pids $pid"
		fi
	done
	if [ -z "$pids" ]; then
		echo "cluster.sh: not running"
		for n in $nodes; do rm -f "$data/node$n.pid"; done
		return 0
	fi
	deadline=$(($(date +%s) + 15))
	while :; do
		left=""
		for pid in $pids; do
			if alive "$pid"; then left="$left $pid"; fi
		done
		[ -n "$left" ] || break
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "cluster.sh: still running after 15 s, killing:$left" >&2
			for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
			break
		fi
		sleep 0.2
	done
	for n in $nodes; do rm -f "$data/node$n.pid"; done
	echo "cluster.sh: stopped (data kept in $data)"
}

cmd_status() {
	count=0
	for n in $nodes; do
		if pid=$(node_pid "$n"); then
			echo "node $n: running (pid $pid, client $(client_address "$n"))"
			count=$((count + 1))
		else
			echo "node $n: stopped"
		fi
	done
	if [ "$count" -gt 0 ]; then
		[ -x "$cli" ] || die "$cli is missing"
		"$cli" --seeds "$seeds" status || true
	fi
	[ "$count" -eq 3 ] && return 0
	[ "$count" -eq 0 ] && return 3
	return 1
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status)
	rc=0
	cmd_status || rc=$?
	exit "$rc"
	;;
-h | --help | help) usage ;;
'')
	usage >&2
	exit 2
	;;
*)
	echo "cluster.sh: unknown command '$1' (try --help)" >&2
	exit 2
	;;
esac
