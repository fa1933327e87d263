#!/bin/sh
# Runs the configuration that deploy/docker-compose.yml (`compose`) or the
# StatefulSet in deploy/kubernetes/ (`kubernetes`) gives each of its three
# nodes as three real cairnd processes, started through the image's
# entrypoint (deploy/docker/entrypoint.sh), and checks that they form a
# cluster and fail over:
#
#   1. the CAIRN_* variables of each node come from the files themselves
#      (`docker-compose config`, or the ConfigMap and the pod template's
#      env with $(POD_NAME) expanded, by deploy_env), never retyped here;
#   2. the nodes' DNS names (cairn1.., or cairn-N.cairn-headless.cairn.
#      svc.cluster.local) resolve through a private /etc/hosts bind-mounted
#      in a mount namespace of this test, to 127.0.0.11-13 in a network
#      namespace of its own, so the files' ports (client 7001, HTTP 8001,
#      Raft 9001, the same on every node as in containers) are used
#      unchanged: nothing else listens in that namespace, nothing collides
#      with other tests, and the real /etc/hosts is never touched;
#   3. the only change: CAIRN_DATA_DIR (/data, the volume) becomes a
#      scratch directory per node;
#   4. `cairn status` (seeds: the files' CAIRN_SEEDS) shows three
#      reachable members and one leader; an append succeeds; with the HTTP
#      gateway built, /health and /ready answer 200 on every node and
#      /metrics serves exactly the metrics docs/operations.md lists;
#   5. the preStop hook on the leader: it hands over and exits 0; the node
#      restarts and rejoins;
#   6. SIGKILL the leader: the two others elect a new one, and an append
#      with the next expected version succeeds and reads back;
#   7. SIGTERM the others: each exits 0.
#
#   tests/deploy/run-cluster.sh compose|kubernetes
#
# The environment names the pieces (CMakeLists.txt sets it): CAIRN_SOURCE_DIR,
# CAIRND (this build's cairnd), CAIRN_CLI, DEPLOY_ENV, YAML2JSON,
# CAIRN_TEST_TMP, and CAIRN_DEPLOY_HTTP=1 when cairnd serves HTTP.
# Exit status 0 when every check passed, 1 when one failed, 77 (CTest:
# skipped) when namespaces cannot be made (not root).
set -eu

mode=${1:?usage: run-cluster.sh compose|kubernetes}
src=${CAIRN_SOURCE_DIR:?}
cairnd=${CAIRND:?}
cli=${CAIRN_CLI:?}
deploy_env=${DEPLOY_ENV:?}
yaml2json=${YAML2JSON:?}
entry=$src/deploy/docker/entrypoint.sh
http=${CAIRN_DEPLOY_HTTP:-0}
# Longest wait for a leader (the files keep cairnd's default election
# timeout of 3 s; a loaded machine may need several rounds).
wait_s=60

die() {
	echo "run-cluster: $*" >&2
	exit 1
}

# ---- outside the namespaces: extract each node's environment ----------
if [ "${RUN_CLUSTER_INSIDE:-0}" != 1 ]; then
	if [ "$(id -u)" -ne 0 ] || ! unshare -n -m true 2>/dev/null; then
		echo "SKIPPED: cannot make network and mount namespaces" \
			"(needs root): the DNS names of the files cannot" \
			"resolve here"
		exit 77
	fi
	tmp=${CAIRN_TEST_TMP:-/tmp}/deploy-$mode.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	case "$mode" in
	compose)
		docker-compose -f "$src/deploy/docker-compose.yml" config \
			>"$tmp/docker-compose.yml" ||
			die "docker-compose config failed"
		"$yaml2json" "$tmp/docker-compose.yml" >"$tmp/files.json"
		for n in 1 2 3; do
			"$deploy_env" compose "$tmp/files.json" "cairn$n" \
				>"$tmp/node$n.env"
		done
		;;
	kubernetes)
		"$yaml2json" "$src"/deploy/kubernetes/*.yaml >"$tmp/files.json"
		for n in 1 2 3; do
			"$deploy_env" kubernetes "$tmp/files.json" \
				$((n - 1)) >"$tmp/node$n.env"
		done
		;;
	*) die "unknown mode '$mode'" ;;
	esac
	for n in 1 2 3; do
		echo "---- node $n: the environment $mode gives it ----"
		cat "$tmp/node$n.env"
	done
	rc=0
	RUN_CLUSTER_INSIDE=1 RUN_CLUSTER_TMP=$tmp unshare -n -m sh "$0" \
		"$mode" || rc=$?
	if [ "$rc" -eq 0 ]; then
		rm -rf "$tmp"
	else
		echo "run-cluster: logs and data kept in $tmp"
	fi
	exit "$rc"
fi

# ---- inside: a private loopback and /etc/hosts --------------------------
tmp=${RUN_CLUSTER_TMP:?}
ip link set lo up || die "cannot bring the loopback up"

# value N VAR: the variable of node N's environment.
value() {
	sed -n "s/^$2=//p" "$tmp/node$1.env"
}

host_of() {
	echo "${1%:*}"
}

{
	echo "127.0.0.1 localhost"
	for n in 1 2 3; do
		echo "127.0.0.1$n $(host_of "$(value "$n" CAIRN_RAFT_ADDRESS)")"
	done
} >"$tmp/hosts"
mount --bind "$tmp/hosts" /etc/hosts || die "cannot mount $tmp/hosts"
echo "---- /etc/hosts in the test's namespace ----"
cat /etc/hosts

passed=0
pids=""
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

fail() {
	echo "FAILED: $*"
	for n in 1 2 3; do
		echo "---- node $n: last 30 lines of its log ----"
		tail -n 30 "$tmp/node$n.log" 2>/dev/null || true
	done
	echo "$passed passed, 1 failed"
	exit 1
}

ok() {
	echo "ok: $*"
	passed=$((passed + 1))
}

start_node() {
	n=$1
	mkdir -p "$tmp/node$n"
	set --
	while IFS= read -r line; do
		case "$line" in
		CAIRN_DATA_DIR=*)
			line="CAIRN_DATA_DIR=$tmp/node$n${line#CAIRN_DATA_DIR=}"
			;;
		esac
		set -- "$@" "$line"
	done <"$tmp/node$n.env"
	env -i PATH="$(dirname "$cairnd"):/usr/bin:/bin:/usr/sbin:/sbin" \
		"$@" sh "$entry" >>"$tmp/node$n.log" 2>&1 &
	eval "pid$n=$!"
	pids="$pids $!"
}

seeds=$(value 1 CAIRN_SEEDS)
[ -n "$seeds" ] || fail "the files give no CAIRN_SEEDS"

status() {
	"$cli" --seeds "$1" --deadline-ms 3000 --json status 2>/dev/null
}

# The id of the member that reports itself leader in `status --json`
# output $1, if any.
leader_in() {
	printf '%s\n' "$1" | tr '{' '\n' | grep '"role":"leader"' |
		sed -n 's/^"id":\([0-9]*\),.*/\1/p' | head -n 1
}

# wait_leader SEEDS MEMBERS NOT: waits until MEMBERS members are reachable
# and one of them, other than NOT, leads; prints its id.
wait_leader() {
	deadline=$(($(date +%s) + wait_s))
	while :; do
		out=$(status "$1") || out=""
		up=$(printf '%s\n' "$out" | grep -o '"reachable":true' |
			wc -l)
		id=$(leader_in "$out")
		if [ "$up" -ge "$2" ] && [ -n "$id" ] && [ "$id" != "$3" ]; then
			echo "$id"
			return 0
		fi
		[ "$(date +%s)" -lt "$deadline" ] || {
			echo "last status: $out" >&2
			return 1
		}
		sleep 0.2
	done
}

for n in 1 2 3; do start_node "$n"; done

leader=$(wait_leader "$seeds" 3 none) ||
	fail "no leader with three reachable members within ${wait_s}s"
"$cli" --seeds "$seeds" status
ok "three nodes formed a cluster; node $leader leads"

for n in 1 2 3; do
	[ "$(value "$n" HOSTNAME)" != "" ] || fail "node $n has no HOSTNAME"
	grep -q "event=listening" "$tmp/node$n.log" ||
		fail "node $n logged no listening event"
done
ok "every node listens on its DNS name"

"$cli" --seeds "$seeds" append deploy-check --type Checked \
	--data '{"n": 1}' --expect no-stream ||
	fail "the first append failed"
ok "an append commits"

if [ "$http" = 1 ]; then
	for n in 1 2 3; do
		address=$(value "$n" CAIRN_HTTP_ADDRESS)
		curl -fsS -o /dev/null --max-time 5 "http://$address/health" ||
			fail "node $n: GET /health on $address"
		deadline=$(($(date +%s) + wait_s))
		until curl -fsS -o /dev/null --max-time 5 \
			"http://$address/ready"; do
			[ "$(date +%s)" -lt "$deadline" ] ||
				fail "node $n: /ready not 200 within ${wait_s}s"
			sleep 0.2
		done
	done
	ok "/health and /ready answer 200 on every node"

	# The metrics docs/operations.md tells operators to watch are the
	# ones /metrics serves, no more and no fewer.
	address=$(value 1 CAIRN_HTTP_ADDRESS)
	curl -fsS --max-time 5 "http://$address/metrics" >"$tmp/metrics" ||
		fail "GET /metrics on $address"
	sed -n 's/^# TYPE \(cairn_[a-z0-9_]*\) .*/\1/p' "$tmp/metrics" |
		sort -u >"$tmp/metrics.served"
	sed -n 's/^| `\(cairn_[a-z0-9_]*\)` |.*/\1/p' \
		"$src/docs/operations.md" | sort -u >"$tmp/metrics.documented"
	[ -s "$tmp/metrics.served" ] || fail "/metrics serves no cairn_ metric"
	if ! cmp -s "$tmp/metrics.served" "$tmp/metrics.documented"; then
		echo "served (<) versus docs/operations.md (>):"
		diff "$tmp/metrics.served" "$tmp/metrics.documented" || true
		fail "docs/operations.md does not list the metrics /metrics serves"
	fi
	ok "/metrics serves the $(wc -l <"$tmp/metrics.served") metrics docs/operations.md lists"
fi

# The StatefulSet's preStop hook on the leader: it hands leadership over
# (cairnd's SIGTERM path) and returns once cairnd has exited 0; the two
# others have a new leader at once. Then the node comes back.
eval "victim=\$pid$leader"
CAIRN_PRESTOP_PID=$victim CAIRN_PRESTOP_WAIT_S=30 \
	sh "$src/deploy/docker/prestop.sh" ||
	fail "the preStop hook failed on node $leader"
rc=0
wait "$victim" || rc=$?
[ "$rc" -eq 0 ] || fail "node $leader exited $rc after the preStop hook"
pids=$(echo "$pids" | sed "s/ $victim\$//; s/ $victim / /")
grep -q "event=leadership_transfer " "$tmp/node$leader.log" ||
	fail "node $leader did not transfer leadership on its way out"
rest=""
for n in 1 2 3; do
	[ "$n" = "$leader" ] && continue
	rest="$rest${rest:+,}$(value "$n" CAIRN_CLIENT_ADDRESS)"
done
new=$(wait_leader "$rest" 2 "$leader") ||
	fail "no new leader after the preStop hook on node $leader"
ok "the preStop hook on leader node $leader handed over to node $new"
start_node "$leader"
leader=$(wait_leader "$seeds" 3 none) ||
	fail "node $leader did not rejoin"

eval "victim=\$pid$leader"
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
pids=$(echo "$pids" | sed "s/ $victim\$//; s/ $victim / /")
echo "killed node $leader (pid $victim) with SIGKILL"

rest=""
for n in 1 2 3; do
	[ "$n" = "$leader" ] && continue
	rest="$rest${rest:+,}$(value "$n" CAIRN_CLIENT_ADDRESS)"
done
new=$(wait_leader "$rest" 2 "$leader") ||
	fail "no new leader within ${wait_s}s of killing node $leader"
"$cli" --seeds "$rest" status || true
ok "node $new leads after node $leader was killed"

"$cli" --seeds "$rest" append deploy-check --type Checked \
	--data '{"n": 2}' --expect 1 ||
	fail "the append after the failover failed"
count=$("$cli" --seeds "$rest" --json read deploy-check | grep -c '"type"')
[ "$count" -eq 2 ] || fail "read back $count events, want 2"
ok "appends go on after the failover; both events read back"

for n in 1 2 3; do
	[ "$n" = "$leader" ] && continue
	eval "p=\$pid$n"
	kill -TERM "$p"
	rc=0
	wait "$p" || rc=$?
	[ "$rc" -eq 0 ] || fail "node $n exited $rc after SIGTERM, want 0"
done
pids=""
ok "the other nodes exit 0 on SIGTERM"

echo "$passed passed, 0 failed"
