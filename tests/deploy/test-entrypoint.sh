#!/bin/sh
# Pins what the image's entrypoint (deploy/docker/entrypoint.sh) does: the
# node id from a StatefulSet pod's ordinal when CAIRN_ID is unset, CAIRN_ID
# kept when set, exit 2 for a host name without an ordinal, flags passed on
# to cairnd, a command run in place of cairnd, and the bounded wait for
# the Raft address's host to resolve. A stand-in `cairnd` on PATH prints
# what it was given; a stand-in `getent` answers the name lookups.
#
#   tests/deploy/test-entrypoint.sh ENTRYPOINT SCRATCH_DIR
set -eu

entry=$1
tmp=$2/entrypoint.$$
rm -rf "$tmp"
mkdir -p "$tmp/bin"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/bin/cairnd" <<'STUB'
#!/bin/sh
echo "id=${CAIRN_ID:-} args=$*"
STUB
# And a stand-in `getent`: no DNS lookup leaves the machine.
cat >"$tmp/bin/getent" <<'STUB'
#!/bin/sh
case "$2" in *no-such-host*) exit 2 ;; esac
echo "127.0.0.1 $2"
STUB
chmod +x "$tmp/bin/cairnd" "$tmp/bin/getent"

passed=0
failed=0

# expect NAME WANT_STATUS WANT_OUTPUT VAR=VALUE... -- ARGS...: runs the
# entrypoint with only those variables and checks its status and output.
expect() {
	name=$1 want_rc=$2 want_out=$3
	shift 3
	vars=""
	while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
		vars="$vars $1"
		shift
	done
	[ "$#" -gt 0 ] && shift
	rc=0
	# shellcheck disable=SC2086
	out=$(env -i PATH="$tmp/bin:/usr/bin:/bin" $vars sh "$entry" "$@" \
		2>"$tmp/err") || rc=$?
	if [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want_out" ]; then
		echo "ok: $name"
		passed=$((passed + 1))
	else
		echo "FAILED: $name: exit $rc (want $want_rc), output '$out'" \
			"(want '$want_out'), stderr: $(cat "$tmp/err")"
		failed=$((failed + 1))
	fi
}

expect "pod cairn-0 is node 1" 0 "id=1 args=" HOSTNAME=cairn-0 --
expect "pod cairn-2 is node 3" 0 "id=3 args=" HOSTNAME=cairn-2 --
expect "pod my-db-cairn-11 is node 12" 0 "id=12 args=" \
	HOSTNAME=my-db-cairn-11 --
expect "CAIRN_ID wins over the ordinal" 0 "id=7 args=" CAIRN_ID=7 \
	HOSTNAME=cairn-0 --
expect "compose host name cairn1 with CAIRN_ID" 0 "id=1 args=" CAIRN_ID=1 \
	HOSTNAME=cairn1 --
expect "no ordinal and no CAIRN_ID is a usage error" 2 "" HOSTNAME=cairn1 --
expect "a leading zero is no ordinal" 2 "" HOSTNAME=cairn-01 --
expect "an empty ordinal is no ordinal" 2 "" HOSTNAME=cairn- --
expect "flags go to cairnd" 0 "id=2 args=--log-level debug --join a:7001" \
	HOSTNAME=cairn-1 -- --log-level debug --join a:7001
expect "a bare --join takes CAIRN_SEEDS, without this node" 0 \
	"id=4 args=--log-level debug --join a:7001,b:7001" HOSTNAME=cairn-3 \
	CAIRN_SEEDS=a:7001,b:7001,d:7001 CAIRN_CLIENT_ADDRESS=d:7001 -- \
	--join --log-level debug
expect "a bare --join takes the client addresses of CAIRN_PEERS" 0 \
	"id=4 args=--join h1:7001,h2:7001" HOSTNAME=cairn-3 \
	CAIRN_PEERS=1=h1:9001/h1:7001/h1:8001,2=h2:9001/h2:7001/h2:8001 -- \
	--join
expect "CAIRN_JOIN=1 joins through the StatefulSet's peers" 0 \
	"id=4 args=--join cairn-0.svc.ns:7001,cairn-1.svc.ns:7001,cairn-2.svc.ns:7001" \
	HOSTNAME=cairn-3 CAIRN_JOIN=1 CAIRN_CLIENT_ADDRESS=cairn-3.svc.ns:7001 --
expect "a node outside CAIRN_PEERS joins by itself" 0 \
	"id=3 args=--join h1:7001" HOSTNAME=cairn-2 \
	CAIRN_PEERS=1=h1:9001/h1:7001/h1:8001 --
expect "a node in CAIRN_PEERS bootstraps" 0 "id=1 args=" HOSTNAME=cairn-0 \
	CAIRN_PEERS=1=h1:9001/h1:7001/h1:8001 --
expect "a bare --join without any seeds is a usage error" 2 "" \
	HOSTNAME=cairn-0 -- --join
expect "a command runs instead of cairnd" 0 "hello" HOSTNAME=x -- \
	echo hello
expect "a bad wait is a usage error" 2 "" HOSTNAME=cairn-0 \
	CAIRN_RESOLVE_WAIT_S=soon --
expect "a resolving name starts at once" 0 "id=1 args=" HOSTNAME=cairn-0 \
	CAIRN_RESOLVE_WAIT_S=30 CAIRN_RAFT_ADDRESS=cairn-0.cairn-headless:9001 --

# A name that never resolves: the wait ends at its bound, then cairnd
# starts anyway (and reports the failure itself).
start=$(date +%s)
expect "an unresolvable name waits at most CAIRN_RESOLVE_WAIT_S" 0 \
	"id=1 args=" HOSTNAME=cairn-0 CAIRN_RESOLVE_WAIT_S=2 \
	CAIRN_RAFT_ADDRESS=cairn-no-such-host.invalid:9001 --
took=$(($(date +%s) - start))
if [ "$took" -ge 2 ] && [ "$took" -le 20 ] &&
	grep -q "does not resolve after 2s" "$tmp/err"; then
	echo "ok: the wait took ${took}s and said so"
	passed=$((passed + 1))
else
	echo "FAILED: the wait took ${took}s; stderr: $(cat "$tmp/err")"
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
